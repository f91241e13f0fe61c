"""SMS in PDU mode (3GPP TS 23.040 §9.2, 27.005 §3): SMS-SUBMIT encode, SMS-DELIVER, SMS-SUBMIT and
SMS-STATUS-REPORT decode, GSM 7-bit (with extension table) and UCS-2, concatenation via UDH.

Every PDU the modem hands us is hostile: :func:`decode_pdu` either returns a message or raises
:class:`PduError` (a :class:`engine.RemoteProtocolError`), never anything else.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from engine import LocalProtocolError, RemoteProtocolError

from ._gsm7 import decode_gsm7, encode_gsm7, gsm7_length, is_gsm7, pack_septets, unpack_septets

__all__ = [
    "Assembled",
    "ConcatInfo",
    "Deliver",
    "InvalidNumber",
    "PduError",
    "Reassembler",
    "StatusReport",
    "Submit",
    "check_number",
    "decode_pdu",
    "encode_deliver",
    "encode_status_report",
    "encode_submit",
    "split_text",
]

MTI_DELIVER, MTI_SUBMIT, MTI_STATUS_REPORT = 0, 1, 2


class PduError(RemoteProtocolError):
    """A PDU that does not decode (truncated, bad lengths, unsupported coding)."""


class InvalidNumber(LocalProtocolError, ValueError):
    """A destination number we refuse to put in an AT command or a PDU."""


def check_number(number: str) -> str:
    digits = number.removeprefix("+")
    if not (1 <= len(digits) <= 20) or not digits.isdigit() or not digits.isascii():
        raise InvalidNumber(f"invalid phone number {number!r}: digits with an optional leading '+' only")
    return number


@dataclass(frozen=True)
class ConcatInfo:
    reference: int
    total: int
    sequence: int


@dataclass(frozen=True)
class Deliver:
    """A received SMS (one part of it, when ``concat`` is set)."""

    sender: str
    text: str
    timestamp: _dt.datetime | None
    smsc: str = ""
    concat: ConcatInfo | None = None
    status_report_indication: bool = False
    dcs: int = 0
    pid: int = 0


@dataclass(frozen=True)
class Submit:
    """An SMS we send (decoded: what the emulator sees)."""

    recipient: str
    text: str
    reference: int
    concat: ConcatInfo | None = None
    status_report_request: bool = False
    smsc: str = ""


@dataclass(frozen=True)
class StatusReport:
    """A delivery report (``+CDS``): ``status`` 0x00-0x1F delivered, 0x20-0x3F still trying, 0x40+ failed."""

    reference: int
    recipient: str
    status: int
    timestamp: _dt.datetime | None
    discharge_time: _dt.datetime | None

    @property
    def delivered(self) -> bool:
        return self.status < 0x20

    @property
    def failed(self) -> bool:
        return self.status >= 0x40


# ------------------------------------------------------------------------------------------ fields
class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int, what: str) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise PduError(
                f"PDU ends inside the {what} (needs {count} octets at {self.pos}, has {len(self.data)})"
            )
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]


def _bcd_decode(raw: bytes) -> str:
    digits = []
    for octet in raw:
        for nibble in (octet & 0x0F, octet >> 4):
            if nibble == 0x0F:
                continue
            digits.append("0123456789*#abc"[nibble])
    return "".join(digits)


def _bcd_encode(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1], 16) << 4 | int(digits[i], 16) for i in range(0, len(digits), 2))


def _read_address(reader: _Reader, what: str) -> str:
    length = reader.byte(what)  # semi-octets of the number
    if length > 40:
        raise PduError(f"{what} length {length} is too long")
    kind = reader.byte(what)
    raw = reader.take((length + 1) // 2, what)
    ton = (kind >> 4) & 0x07
    if ton == 0x05:  # alphanumeric, GSM 7-bit packed
        return decode_gsm7(unpack_septets(raw, (length * 4) // 7))
    number = _bcd_decode(raw)[:length]
    return ("+" + number) if ton == 0x01 else number


def _encode_address(number: str) -> bytes:
    check_number(number)
    international = number.startswith("+")
    digits = number.lstrip("+")
    return bytes([len(digits), 0x91 if international else 0x81]) + _bcd_encode(digits)


def _read_smsc(reader: _Reader) -> str:
    length = reader.byte("SMSC address")
    if length == 0:
        return ""
    raw = reader.take(length, "SMSC address")
    number = _bcd_decode(raw[1:])
    return ("+" + number) if (raw[0] >> 4) & 0x07 == 0x01 else number


def _swapped(octet: int) -> int:
    low, high = octet & 0x0F, octet >> 4
    if low > 9 or high > 9:
        raise PduError(f"timestamp octet {octet:02x} is not BCD")
    return low * 10 + high


def _read_timestamp(reader: _Reader, what: str) -> _dt.datetime | None:
    raw = reader.take(7, what)
    try:
        year, month, day, hour, minute, second = (_swapped(b) for b in raw[:6])
        tz = raw[6]
        quarters = (tz & 0x07) * 10 + (tz >> 4)
        if quarters > 79:
            raise PduError("time zone out of range")
        offset = _dt.timedelta(minutes=15 * quarters) * (-1 if tz & 0x08 else 1)
        return _dt.datetime(
            (1900 if year >= 80 else 2000) + year,
            month,
            day,
            hour,
            minute,
            second,
            tzinfo=_dt.timezone(offset),
        )
    except (PduError, ValueError):
        return None  # a bad clock on the SMSC is no reason to lose the message


def _alphabet(dcs: int) -> str:
    if dcs & 0x80 == 0:  # general data coding (and the automatic-deletion group)
        if dcs & 0x20:
            raise PduError("compressed SMS text is not supported")
        return ("gsm7", "8bit", "ucs2", "reserved")[(dcs >> 2) & 0x03]
    group = dcs & 0xF0
    if group in (0xC0, 0xD0):
        return "gsm7"
    if group == 0xE0:
        return "ucs2"
    if group == 0xF0:
        return "8bit" if dcs & 0x04 else "gsm7"
    raise PduError(f"reserved data coding scheme 0x{dcs:02x}")


def _read_user_data(reader: _Reader, dcs: int, udhi: bool) -> tuple[str, ConcatInfo | None]:
    udl = reader.byte("user data length")
    alphabet = _alphabet(dcs)
    if alphabet == "reserved":
        alphabet = "8bit"
    size = (udl * 7 + 7) // 8 if alphabet == "gsm7" else udl
    if size > 140:
        raise PduError(f"user data length {udl} exceeds 140 octets")
    ud = reader.take(size, "user data")
    header_octets = 0
    concat = None
    if udhi:
        if not ud:
            raise PduError("UDHI set but no user data header")
        header_octets = ud[0] + 1
        if header_octets > len(ud):
            raise PduError("user data header runs past the user data")
        concat = _parse_udh(ud[1:header_octets])
    if alphabet == "gsm7":
        header_septets = (header_octets * 8 + 6) // 7
        fill = header_septets * 7 - header_octets * 8
        count = udl - header_septets
        if count < 0:
            raise PduError("user data header longer than the user data")
        try:
            septets = unpack_septets(ud[header_octets:], count, fill)
        except ValueError as exc:
            raise PduError(str(exc)) from None
        return decode_gsm7(septets), concat
    body = ud[header_octets:]
    if alphabet == "ucs2":
        if len(body) % 2:
            body = body[:-1]
        return body.decode("utf-16-be", errors="replace"), concat
    return body.decode("latin-1"), concat


def _parse_udh(header: bytes) -> ConcatInfo | None:
    index = 0
    concat = None
    while index + 2 <= len(header):
        iei, length = header[index], header[index + 1]
        value = header[index + 2 : index + 2 + length]
        if len(value) != length:
            raise PduError("user data header element runs past the header")
        if iei == 0x00 and length == 3:
            concat = ConcatInfo(value[0], value[1], value[2])
        elif iei == 0x08 and length == 4:
            concat = ConcatInfo(value[0] << 8 | value[1], value[2], value[3])
        index += 2 + length
    if concat is not None and (concat.total == 0 or concat.sequence == 0 or concat.sequence > concat.total):
        return None  # TS 23.040: ignore a concatenation element with impossible values
    return concat


# ------------------------------------------------------------------------------------------ decode
def decode_pdu(
    pdu: str | bytes, *, with_smsc: bool = True, outgoing: bool = False
) -> Deliver | Submit | StatusReport:
    """Decode a PDU as ``+CMGR``/``+CMT``/``+CDS`` show it (hex, SMSC first unless ``with_smsc=False``).

    ``outgoing``: the PDU is one we (or a host) sent, so MTI 01 is SMS-SUBMIT (MTI values depend on
    direction, TS 23.040 §9.2.3.1).
    """
    try:
        raw = bytes.fromhex(pdu) if isinstance(pdu, str) else bytes(pdu)
    except ValueError:
        raise PduError("PDU is not hexadecimal") from None
    if len(raw) > 200:
        raise PduError("PDU longer than any SMS")
    reader = _Reader(raw)
    smsc = _read_smsc(reader) if with_smsc else ""
    first = reader.byte("first octet")
    mti = first & 0x03
    udhi = bool(first & 0x40)
    if outgoing and mti == MTI_SUBMIT:
        reference = reader.byte("message reference")
        recipient = _read_address(reader, "destination address")
        reader.byte("protocol identifier")
        dcs = reader.byte("data coding scheme")
        vpf = (first >> 3) & 0x03
        if vpf == 0x02:
            reader.take(1, "validity period")
        elif vpf in (0x01, 0x03):
            reader.take(7, "validity period")
        text, concat = _read_user_data(reader, dcs, udhi)
        return Submit(recipient, text, reference, concat, bool(first & 0x20), smsc)
    if mti == MTI_DELIVER:
        sender = _read_address(reader, "originating address")
        pid = reader.byte("protocol identifier")
        dcs = reader.byte("data coding scheme")
        timestamp = _read_timestamp(reader, "service centre time stamp")
        text, concat = _read_user_data(reader, dcs, udhi)
        return Deliver(sender, text, timestamp, smsc, concat, bool(first & 0x20), dcs, pid)
    if mti == MTI_STATUS_REPORT:
        reference = reader.byte("message reference")
        recipient = _read_address(reader, "recipient address")
        timestamp = _read_timestamp(reader, "service centre time stamp")
        discharge = _read_timestamp(reader, "discharge time")
        status = reader.byte("status")
        return StatusReport(reference, recipient, status, timestamp, discharge)
    raise PduError(f"unexpected message type {mti} in a received PDU")


# ------------------------------------------------------------------------------------------ encode
@dataclass
class _Part:
    text: str
    concat: ConcatInfo | None = None


def split_text(text: str, reference: int = 0) -> tuple[str, list[_Part]]:
    """Choose the alphabet and cut ``text`` into parts (153 septets / 67 UCS-2 units with a UDH),
    never splitting an escape pair or a surrogate pair."""
    if is_gsm7(text):
        cost = [gsm7_length(ch) for ch in text]
        if sum(cost) <= 160:
            return "gsm7", [_Part(text)]
        limit, alphabet = 153, "gsm7"
    else:
        cost = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        if sum(cost) <= 70:
            return "ucs2", [_Part(text)]
        limit, alphabet = 67, "ucs2"
    chunks: list[str] = []
    current, used = [], 0
    for ch, size in zip(text, cost):
        if used + size > limit:
            chunks.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += size
    if current:
        chunks.append("".join(current))
    if len(chunks) > 255:
        raise LocalProtocolError(f"message too long: {len(chunks)} parts (at most 255)")
    total = len(chunks)
    return alphabet, [
        _Part(chunk, ConcatInfo(reference & 0xFF, total, i + 1)) for i, chunk in enumerate(chunks)
    ]


def encode_submit(
    recipient: str,
    text: str,
    *,
    reference: int = 0,
    concat_reference: int = 0,
    status_report: bool = False,
    validity: int | None = 0xAA,
) -> list[tuple[str, int]]:
    """SMS-SUBMIT PDUs for ``text`` to ``recipient``, as ``(hex, tpdu_length)`` pairs for ``AT+CMGS``.

    The hex starts with ``00`` (use the SIM's SMSC); ``tpdu_length`` excludes that octet, as
    ``AT+CMGS=<length>`` wants. ``validity`` is a relative validity-period octet (0xAA = 4 days).
    """
    address = _encode_address(recipient)
    alphabet, parts = split_text(text, concat_reference)
    out = []
    for part in parts:
        first = 0x01 | (0x10 if validity is not None else 0) | (0x20 if status_report else 0)
        header = b""
        if part.concat is not None:
            first |= 0x40
            header = bytes([5, 0x00, 3, part.concat.reference, part.concat.total, part.concat.sequence])
        tpdu = (
            bytearray([first, reference & 0xFF])
            + address
            + bytes([0x00, 0x00 if alphabet == "gsm7" else 0x08])
        )
        if validity is not None:
            tpdu.append(validity & 0xFF)
        if alphabet == "gsm7":
            septets = encode_gsm7(part.text)
            header_septets = (len(header) * 8 + 6) // 7
            fill = header_septets * 7 - len(header) * 8
            tpdu.append(header_septets + len(septets))
            tpdu += header + pack_septets(septets, fill)
        else:
            body = part.text.encode("utf-16-be")
            tpdu.append(len(header) + len(body))
            tpdu += header + body
        out.append(("00" + tpdu.hex().upper(), len(tpdu)))
    return out


# ------------------------------------------------------------------------------------------ deliver (emulators)
def _encode_timestamp(when: _dt.datetime) -> bytes:
    def swap(value: int) -> int:
        return (value % 10) << 4 | (value // 10)

    offset = when.utcoffset() or _dt.timedelta(0)
    quarters = int(abs(offset.total_seconds()) // 900)
    tz = swap(quarters) | (0x08 if offset.total_seconds() < 0 else 0)
    return bytes(
        [
            swap(when.year % 100),
            swap(when.month),
            swap(when.day),
            swap(when.hour),
            swap(when.minute),
            swap(when.second),
            tz,
        ]
    )


def encode_deliver(
    sender: str, text: str, when: _dt.datetime, *, smsc: str = "+34600000000", concat_reference: int = 0
) -> list[str]:
    """SMS-DELIVER PDUs as a network would send them (the emulator uses this)."""
    alphabet, parts = split_text(text, concat_reference)
    smsc_field = _encode_address(smsc)
    smsc_bytes = bytes([len(smsc_field) - 1]) + smsc_field[1:]
    out = []
    for part in parts:
        first = 0x04 | (0x40 if part.concat else 0)
        header = b""
        if part.concat is not None:
            header = bytes([5, 0x00, 3, part.concat.reference, part.concat.total, part.concat.sequence])
        tpdu = (
            bytearray([first]) + _encode_address(sender) + bytes([0x00, 0x00 if alphabet == "gsm7" else 0x08])
        )
        tpdu += _encode_timestamp(when)
        if alphabet == "gsm7":
            septets = encode_gsm7(part.text)
            header_septets = (len(header) * 8 + 6) // 7
            fill = header_septets * 7 - len(header) * 8
            tpdu.append(header_septets + len(septets))
            tpdu += header + pack_septets(septets, fill)
        else:
            body = part.text.encode("utf-16-be")
            tpdu.append(len(header) + len(body))
            tpdu += header + body
        out.append((smsc_bytes + bytes(tpdu)).hex().upper())
    return out


def encode_status_report(reference: int, recipient: str, status: int, when: _dt.datetime) -> tuple[str, int]:
    tpdu = (
        bytes([0x06, reference & 0xFF])
        + _encode_address(recipient)
        + _encode_timestamp(when) * 2
        + bytes([status])
    )
    return "00" + tpdu.hex().upper(), len(tpdu)


# ------------------------------------------------------------------------------------------ reassembly
@dataclass
class _Pending:
    first_seen: float
    parts: dict[int, Deliver] = field(default_factory=dict)
    keys: dict[int, object] = field(default_factory=dict)
    extra_keys: list[object] = field(default_factory=list)


@dataclass(frozen=True)
class Assembled:
    sender: str
    text: str
    timestamp: _dt.datetime | None
    #: Whatever identified the parts where they are stored (SIM indexes), to delete them once stored.
    keys: tuple[object, ...]
    #: True when parts never came and the message is delivered as what arrived.
    incomplete: bool = False


class Reassembler:
    """Joins concatenated parts (sans-IO): out of order, duplicates ignored, gaps flushed after
    ``give_up_after`` seconds as an incomplete message rather than lost."""

    def __init__(self, give_up_after: float = 24 * 3600.0) -> None:
        self.give_up_after = give_up_after
        self._pending: dict[tuple[str, int, int], _Pending] = {}
        self.duplicates = 0

    def add(self, part: Deliver, key: object, now: float) -> Assembled | None:
        if part.concat is None:
            return Assembled(part.sender, part.text, part.timestamp, (key,))
        ident = (part.sender, part.concat.reference, part.concat.total)
        pending = self._pending.setdefault(ident, _Pending(now))
        if part.concat.sequence in pending.parts:
            self.duplicates += 1
            if key != pending.keys[part.concat.sequence] and key not in pending.extra_keys:
                pending.extra_keys.append(key)  # a second stored copy: delete it with the rest
            return None
        pending.parts[part.concat.sequence] = part
        pending.keys[part.concat.sequence] = key
        if len(pending.parts) < part.concat.total:
            return None
        del self._pending[ident]
        return self._join(pending, incomplete=False)

    @staticmethod
    def _join(pending: _Pending, *, incomplete: bool) -> Assembled:
        ordered = [pending.parts[i] for i in sorted(pending.parts)]
        text = "".join(p.text for p in ordered)
        keys = tuple(pending.keys[i] for i in sorted(pending.keys)) + tuple(pending.extra_keys)
        return Assembled(ordered[0].sender, text, ordered[0].timestamp, keys, incomplete)

    def next_timer(self) -> float | None:
        if not self._pending:
            return None
        return min(p.first_seen for p in self._pending.values()) + self.give_up_after

    def handle_timer(self, now: float) -> list[Assembled]:
        out = []
        for ident, pending in list(self._pending.items()):
            if now >= pending.first_seen + self.give_up_after:
                del self._pending[ident]
                out.append(self._join(pending, incomplete=True))
        return out
