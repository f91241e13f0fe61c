"""SMPP 3.4 PDU codec (pure): the header, the bodies this channel speaks, TLVs, a bounded stream reader.

Facts from the SMPP v3.4 specification (issue 1.2): every PDU starts with four big-endian 32-bit
fields (command_length, command_id, command_status, sequence_number); responses set bit 31 of the
command id; C-octet strings end with NUL and have a maximum size that includes it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from engine import LocalProtocolError, RemoteProtocolError

HEADER = struct.Struct(">IIII")
RESPONSE_BIT = 0x80000000
MAX_PDU = 64 * 1024  # far above any legitimate SMPP 3.4 PDU; bigger means garbage or an attack


class Cmd:
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_TRANSMITTER = 0x00000002
    QUERY_SM = 0x00000003
    SUBMIT_SM = 0x00000004
    DELIVER_SM = 0x00000005
    UNBIND = 0x00000006
    BIND_TRANSCEIVER = 0x00000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    DATA_SM = 0x00000103


class Status:
    ROK = 0x00000000
    RINVMSGLEN = 0x00000001
    RINVCMDLEN = 0x00000002
    RINVCMDID = 0x00000003
    RINVBNDSTS = 0x00000004
    RALYBND = 0x00000005
    RSYSERR = 0x00000008
    RINVSRCADR = 0x0000000A
    RINVDSTADR = 0x0000000B
    RBINDFAIL = 0x0000000D
    RINVPASWD = 0x0000000E
    RINVSYSID = 0x0000000F
    RMSGQFUL = 0x00000014
    RTHROTTLED = 0x00000058
    RUNKNOWNERR = 0x000000FF

    #: Worth retrying later (the SMSC is busy), as opposed to "this message is wrong".
    TRANSIENT = frozenset({RSYSERR, RMSGQFUL, RTHROTTLED, RINVBNDSTS})


class Tlv:
    RECEIPTED_MESSAGE_ID = 0x001E
    MESSAGE_STATE = 0x0427
    MESSAGE_PAYLOAD = 0x0424
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F


class MessageState:
    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


ESM_UDHI = 0x40
ESM_DELIVERY_RECEIPT = 0x04
DC_DEFAULT = 0x00  # SMSC default alphabet: GSM 03.38, one septet per octet (unpacked) on SMPP
DC_LATIN1 = 0x03
DC_UCS2 = 0x08


class SmppPeerError(RemoteProtocolError):
    """The peer sent an invalid PDU. ``reply`` is the generic_nack (or error response) it deserves."""

    def __init__(self, message: str, status: int, sequence: int = 0, reply: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.sequence = sequence
        self.reply = reply


class SmppUsageError(LocalProtocolError):
    """We tried to encode something SMPP cannot carry (a field too long, a NUL in a C-string)."""


@dataclass
class Pdu:
    command_id: int
    status: int = 0
    sequence: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    tlvs: dict[int, bytes] = field(default_factory=dict)

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)

    @property
    def name(self) -> str:
        return COMMAND_NAMES.get(self.command_id, f"0x{self.command_id:08x}")


COMMAND_NAMES = {
    Cmd.GENERIC_NACK: "generic_nack",
    Cmd.BIND_RECEIVER: "bind_receiver",
    Cmd.BIND_TRANSMITTER: "bind_transmitter",
    Cmd.BIND_TRANSCEIVER: "bind_transceiver",
    Cmd.SUBMIT_SM: "submit_sm",
    Cmd.DELIVER_SM: "deliver_sm",
    Cmd.UNBIND: "unbind",
    Cmd.ENQUIRE_LINK: "enquire_link",
    Cmd.QUERY_SM: "query_sm",
    Cmd.OUTBIND: "outbind",
    Cmd.DATA_SM: "data_sm",
}
COMMAND_NAMES.update({k | RESPONSE_BIT: v + "_resp" for k, v in list(COMMAND_NAMES.items()) if k != Cmd.GENERIC_NACK})

# Body layouts: (name, kind, size) with kind "c" (C-octet string, max size incl. NUL) or "u8".
_BIND = [("system_id", "c", 16), ("password", "c", 9), ("system_type", "c", 13), ("interface_version", "u8", 1),
         ("addr_ton", "u8", 1), ("addr_npi", "u8", 1), ("address_range", "c", 41)]
_SM = [("service_type", "c", 6), ("source_addr_ton", "u8", 1), ("source_addr_npi", "u8", 1),
       ("source_addr", "c", 21), ("dest_addr_ton", "u8", 1), ("dest_addr_npi", "u8", 1),
       ("destination_addr", "c", 21), ("esm_class", "u8", 1), ("protocol_id", "u8", 1),
       ("priority_flag", "u8", 1), ("schedule_delivery_time", "c", 17), ("validity_period", "c", 17),
       ("registered_delivery", "u8", 1), ("replace_if_present_flag", "u8", 1), ("data_coding", "u8", 1),
       ("sm_default_msg_id", "u8", 1)]
LAYOUTS: dict[int, list[tuple[str, str, int]]] = {
    Cmd.BIND_TRANSCEIVER: _BIND,
    Cmd.BIND_TRANSMITTER: _BIND,
    Cmd.BIND_RECEIVER: _BIND,
    Cmd.BIND_TRANSCEIVER | RESPONSE_BIT: [("system_id", "c", 16)],
    Cmd.BIND_TRANSMITTER | RESPONSE_BIT: [("system_id", "c", 16)],
    Cmd.BIND_RECEIVER | RESPONSE_BIT: [("system_id", "c", 16)],
    Cmd.SUBMIT_SM: _SM,
    Cmd.DELIVER_SM: _SM,
    Cmd.SUBMIT_SM | RESPONSE_BIT: [("message_id", "c", 65)],
    Cmd.DELIVER_SM | RESPONSE_BIT: [("message_id", "c", 65)],
    Cmd.UNBIND: [],
    Cmd.UNBIND | RESPONSE_BIT: [],
    Cmd.ENQUIRE_LINK: [],
    Cmd.ENQUIRE_LINK | RESPONSE_BIT: [],
    Cmd.GENERIC_NACK: [],
}
_HAS_SHORT_MESSAGE = {Cmd.SUBMIT_SM, Cmd.DELIVER_SM}


def encode(pdu: Pdu) -> bytes:
    layout = LAYOUTS.get(pdu.command_id)
    if layout is None:
        raise SmppUsageError(f"cannot encode command 0x{pdu.command_id:08x}")
    body = bytearray()
    # A response with an error status may omit its body (SMPP 3.4 §3.3: bind/submit resp with non-zero status).
    if not (pdu.is_response and pdu.status != 0):
        for name, kind, size in layout:
            value = pdu.params.get(name, "" if kind == "c" else 0)
            if kind == "c":
                raw = value.encode("ascii") if isinstance(value, str) else bytes(value)
                if b"\0" in raw or len(raw) + 1 > size:
                    raise SmppUsageError(f"{name}: {len(raw)} bytes (max {size - 1}) or contains NUL")
                body += raw + b"\0"
            else:
                body.append(int(value) & 0xFF)
        if pdu.command_id in _HAS_SHORT_MESSAGE:
            short = bytes(pdu.params.get("short_message", b""))
            if len(short) > 254:
                raise SmppUsageError(f"short_message is {len(short)} bytes (max 254); use message_payload")
            body.append(len(short))
            body += short
        for tag, value in pdu.tlvs.items():
            body += struct.pack(">HH", tag, len(value)) + value
    return HEADER.pack(HEADER.size + len(body), pdu.command_id, pdu.status, pdu.sequence) + bytes(body)


def decode(data: bytes) -> Pdu:
    """Decode one whole PDU. Raises :class:`SmppPeerError` (with the generic_nack to send) if invalid."""
    if len(data) < HEADER.size:
        raise SmppPeerError("PDU shorter than its header", Status.RINVCMDLEN)
    length, command_id, status, sequence = HEADER.unpack_from(data)
    if length != len(data):
        raise SmppPeerError("command_length does not match the PDU", Status.RINVCMDLEN, sequence, nack(Status.RINVCMDLEN, sequence))
    layout = LAYOUTS.get(command_id)
    if layout is None:
        raise SmppPeerError(f"unknown command_id 0x{command_id:08x}", Status.RINVCMDID, sequence, nack(Status.RINVCMDID, sequence))
    pdu = Pdu(command_id, status, sequence)
    offset = HEADER.size
    if offset == len(data):
        if layout and not (pdu.is_response and status != 0):
            if command_id & RESPONSE_BIT:
                return pdu  # some SMSCs omit even a successful response's body
            raise SmppPeerError(f"{pdu.name} without a body", Status.RINVCMDLEN, sequence, _error_reply(pdu, Status.RINVCMDLEN))
        return pdu
    try:
        for name, kind, size in layout:
            if kind == "c":
                end = data.index(b"\0", offset, min(len(data), offset + size))
                pdu.params[name] = data[offset:end].decode("latin-1")
                offset = end + 1
            else:
                pdu.params[name] = data[offset]
                offset += 1
        if command_id in _HAS_SHORT_MESSAGE:
            sm_length = data[offset]
            offset += 1
            if offset + sm_length > len(data):
                raise IndexError("short_message runs past the PDU")
            pdu.params["short_message"] = data[offset:offset + sm_length]
            offset += sm_length
        while offset < len(data):
            if offset + 4 > len(data):
                raise IndexError("truncated TLV header")
            tag, size = struct.unpack_from(">HH", data, offset)
            offset += 4
            if offset + size > len(data):
                raise IndexError("TLV runs past the PDU")
            pdu.tlvs[tag] = data[offset:offset + size]
            offset += size
    except (ValueError, IndexError) as exc:
        status_code = Status.RINVMSGLEN if command_id in _HAS_SHORT_MESSAGE else Status.RINVCMDLEN
        raise SmppPeerError(f"malformed {pdu.name}: {exc}", status_code, sequence, _error_reply(pdu, status_code)) from None
    return pdu


def _error_reply(pdu: Pdu, status: int) -> bytes:
    if pdu.is_response or (pdu.command_id | RESPONSE_BIT) not in LAYOUTS:
        return b"" if pdu.is_response else nack(status, pdu.sequence)
    return encode(Pdu(pdu.command_id | RESPONSE_BIT, status, pdu.sequence))


def nack(status: int, sequence: int) -> bytes:
    return encode(Pdu(Cmd.GENERIC_NACK, status, sequence))


def response_to(pdu: Pdu, status: int = Status.ROK, **params: Any) -> Pdu:
    return Pdu(pdu.command_id | RESPONSE_BIT, status, pdu.sequence, dict(params))


class PduReader:
    """Split a byte stream into PDUs. A length outside [16, max_pdu] is unrecoverable framing: the
    connection must be closed after sending the generic_nack carried by the error."""

    def __init__(self, max_pdu: int = MAX_PDU) -> None:
        self.max_pdu = max_pdu
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_pdu(self) -> Pdu | None:
        """Next PDU, or None if more bytes are needed; raises :class:`SmppPeerError` on a bad PDU.

        A malformed body with a sane length is skipped (the stream stays in sync); ``fatal`` framing
        errors are raised as :class:`SmppFramingError`.
        """
        if len(self._buffer) < 4:
            return None
        (length,) = struct.unpack_from(">I", self._buffer)
        if length < HEADER.size or length > self.max_pdu:
            sequence = struct.unpack_from(">I", self._buffer, 12)[0] if len(self._buffer) >= 16 else 0
            self._buffer.clear()
            raise SmppFramingError(f"command_length {length} outside [16, {self.max_pdu}]", Status.RINVCMDLEN,
                                   sequence, nack(Status.RINVCMDLEN, sequence))
        if len(self._buffer) < length:
            return None
        data = bytes(self._buffer[:length])
        del self._buffer[:length]
        return decode(data)


class SmppFramingError(SmppPeerError):
    """The stream cannot be resynchronised: reply (generic_nack), then close the connection."""


def c_string_tlv(value: str) -> bytes:
    return value.encode("ascii") + b"\0"


def tlv_text(value: bytes) -> str:
    return value.rstrip(b"\0").decode("latin-1")
