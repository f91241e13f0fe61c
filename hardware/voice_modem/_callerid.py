"""Caller ID as voice modems report it after ``AT+VCID=1`` (formatted) or ``AT+VCID=2`` (raw).

Formatted: the modem decodes the Bellcore/ETSI FSK burst between the first and second ring and sends
lines ``DATE = MMDD``, ``TIME = HHMM``, ``NMBR = 5551234`` (or ``O`` out of area, ``P`` private),
``NAME = ...``. Unformatted: one ``MESG = <hex>`` line holding the burst itself, SDMF (type 0x04:
``MMDDHHMM`` + number) or MDMF (type 0x80: parameters 0x01 date/time, 0x02 number, 0x04 reason the
number is absent, 0x07 name, 0x08 reason the name is absent), each with a checksum that makes the
byte sum 0 mod 256. A burst that fails its checksum or its lengths is a :class:`CallerIdError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from engine import RemoteProtocolError

__all__ = ["CallerId", "CallerIdCollector", "CallerIdError", "decode_burst", "encode_mdmf", "encode_sdmf"]

_ABSENT = {"O": "unavailable", "P": "private"}
_FIELD = re.compile(r"^(DATE|TIME|NMBR|NAME|MESG|DDN_NMBR)\s*=\s*(.*)$", re.IGNORECASE)


class CallerIdError(RemoteProtocolError):
    """The caller-ID data the modem reported is malformed."""


@dataclass(frozen=True)
class CallerId:
    number: str = ""
    name: str = ""
    #: "MMDDHHMM" as sent by the exchange (no year), or "".
    when: str = ""
    #: Why the number is missing: "private", "unavailable", or "".
    number_absent: str = ""
    name_absent: str = ""


def _printable(raw: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in raw)


def decode_burst(burst: bytes) -> CallerId:
    """Decode an SDMF or MDMF message (including its checksum byte)."""
    if len(burst) < 3:
        raise CallerIdError("caller-ID burst too short")
    kind, length = burst[0], burst[1]
    if len(burst) != length + 3:
        raise CallerIdError(f"caller-ID length byte says {length}, burst carries {len(burst) - 3}")
    if sum(burst) % 256:
        raise CallerIdError("caller-ID checksum mismatch")
    body = burst[2:-1]
    if kind == 0x04:
        if len(body) < 8:
            raise CallerIdError("SDMF without date and time")
        when, number = _printable(body[:8]), _printable(body[8:])
        if number in _ABSENT:
            return CallerId(when=when, number_absent=_ABSENT[number])
        return CallerId(number=number, when=when)
    if kind != 0x80:
        raise CallerIdError(f"unknown caller-ID message type 0x{kind:02x}")
    cid = CallerId()
    index = 0
    while index < len(body):
        if index + 2 > len(body):
            raise CallerIdError("MDMF parameter header cut short")
        ptype, plen = body[index], body[index + 1]
        value = body[index + 2 : index + 2 + plen]
        if len(value) != plen:
            raise CallerIdError("MDMF parameter runs past the message")
        text = _printable(value)
        if ptype == 0x01:
            cid = replace(cid, when=text)
        elif ptype in (0x02, 0x03):
            cid = replace(cid, number=text)
        elif ptype == 0x04:
            cid = replace(cid, number_absent=_ABSENT.get(text, text))
        elif ptype == 0x07:
            cid = replace(cid, name=text)
        elif ptype == 0x08:
            cid = replace(cid, name_absent=_ABSENT.get(text, text))
        index += 2 + plen
    return cid


def _with_checksum(message: bytes) -> bytes:
    return message + bytes([(-sum(message)) % 256])


def encode_sdmf(number: str, when: str = "01010000") -> bytes:
    body = when.encode("ascii") + number.encode("ascii")
    return _with_checksum(bytes([0x04, len(body)]) + body)


def encode_mdmf(number: str = "", name: str = "", when: str = "01010000", number_absent: str = "") -> bytes:
    params = bytearray()
    for ptype, value in ((0x01, when), (0x02, number), (0x07, name)):
        if value:
            raw = value.encode("ascii")
            params += bytes([ptype, len(raw)]) + raw
    if number_absent:
        params += bytes([0x04, 1]) + {"private": b"P"}.get(number_absent, b"O")
    return _with_checksum(bytes([0x80, len(params)]) + bytes(params))


class CallerIdCollector:
    """Gathers the caller-ID lines of one call; :meth:`take` hands them over and starts afresh."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}
        self.errors = 0

    @staticmethod
    def is_caller_id_line(line: str) -> bool:
        return _FIELD.match(line) is not None

    def feed(self, line: str) -> None:
        match = _FIELD.match(line)
        if not match:
            return
        key, value = match.group(1).upper(), match.group(2).strip()
        if key == "MESG":
            try:
                cid = decode_burst(bytes.fromhex(value))
            except (ValueError, CallerIdError):
                self.errors += 1
                return
            self._fields.update({k: v for k, v in vars(cid).items() if v})
            return
        self._fields[key] = value[:64]

    def take(self) -> CallerId | None:
        if not self._fields:
            return None
        fields, self._fields = self._fields, {}
        number = fields.get("number") or fields.get("NMBR") or fields.get("DDN_NMBR", "")
        absent = fields.get("number_absent", "")
        if number in _ABSENT:
            number, absent = "", _ABSENT[number]
        name = fields.get("name") or fields.get("NAME", "")
        name_absent = fields.get("name_absent", "")
        if name in _ABSENT:
            name, name_absent = "", _ABSENT[name]
        when = fields.get("when") or (fields.get("DATE", "") + fields.get("TIME", ""))
        return CallerId(number=number, name=name, when=when, number_absent=absent, name_absent=name_absent)
