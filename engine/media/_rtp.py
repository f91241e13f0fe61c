"""RTP and RTCP packets (RFC 3550), sans-IO.

Parsing never trusts a length field: every count (CSRC count, extension length, padding length, RTCP
length) is checked against the bytes actually received, and a packet that does not add up raises
:class:`MalformedPacket` (a peer error: the only sane reply to a broken datagram is to count it and
drop it). Nothing here raises anything else on hostile input; ``tests/engine/media`` fuzzes that.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ._errors import MalformedPacket

__all__ = [
    "RtpPacket",
    "RtcpReportBlock",
    "RtcpSenderReport",
    "RtcpReceiverReport",
    "RtcpBye",
    "RtcpOther",
    "parse_rtcp",
    "build_rtcp_rr",
    "build_rtcp_sr",
    "rtp_header_length",
    "is_rtcp",
]

RTP_VERSION = 2
_HEADER = struct.Struct("!BBHII")
_REPORT_BLOCK = struct.Struct("!IIIIII")


def rtp_header_length(data: bytes | bytearray) -> int:
    """Length of the RTP header (fixed part, CSRCs, extension); raises MalformedPacket if it does not fit.

    The relay fast path uses this instead of a full parse: it only needs to know the header is sound.
    """
    size = len(data)
    if size < 12:
        raise MalformedPacket("RTP header truncated", size)
    first = data[0]
    if first >> 6 != RTP_VERSION:
        raise MalformedPacket("not RTP version 2", size)
    length = 12 + 4 * (first & 0x0F)
    if length > size:
        raise MalformedPacket("CSRC count runs past the end of the packet", size)
    if first & 0x10:
        if length + 4 > size:
            raise MalformedPacket("extension header truncated", size)
        length += 4 + 4 * ((data[length + 2] << 8) | data[length + 3])
        if length > size:
            raise MalformedPacket("extension runs past the end of the packet", size)
    if first & 0x20:
        pad = data[-1]
        if pad == 0 or length + pad > size:
            raise MalformedPacket("bad padding length", size)
    return length


def is_rtcp(data: bytes | bytearray) -> bool:
    """RFC 5761 demultiplexing: RTCP packet types 192..223 sit where RTP's marker+PT byte is."""
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass(slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    #: (profile-defined 16 bits, extension data whose length is a multiple of 4)
    extension: tuple[int, bytes] | None = None
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes | bytearray) -> RtpPacket:
        header_length = rtp_header_length(data)
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
        cc = first & 0x0F
        csrcs = struct.unpack_from(f"!{cc}I", data, 12) if cc else ()
        extension = None
        if first & 0x10:
            offset = 12 + 4 * cc
            profile, words = struct.unpack_from("!HH", data, offset)
            extension = (profile, bytes(data[offset + 4 : offset + 4 + 4 * words]))
        padding = data[-1] if first & 0x20 else 0
        return cls(
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[header_length : len(data) - padding]),
            marker=bool(second & 0x80),
            csrcs=tuple(csrcs),
            extension=extension,
            padding=padding,
        )

    def build(self) -> bytes:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type must be 0..127, got {self.payload_type}")
        if len(self.csrcs) > 15:
            raise ValueError("at most 15 CSRCs")
        first = (RTP_VERSION << 6) | len(self.csrcs)
        tail = b""
        if self.padding:
            if not 1 <= self.padding <= 255:
                raise ValueError("padding must be 1..255 bytes")
            first |= 0x20
            tail = bytes(self.padding - 1) + bytes([self.padding])
        ext = b""
        if self.extension is not None:
            profile, ext_data = self.extension
            if len(ext_data) % 4:
                raise ValueError("extension data must be a multiple of 4 bytes")
            first |= 0x10
            ext = struct.pack("!HH", profile, len(ext_data) // 4) + ext_data
        head = _HEADER.pack(
            first,
            (0x80 if self.marker else 0) | self.payload_type,
            self.sequence & 0xFFFF,
            self.timestamp & 0xFFFFFFFF,
            self.ssrc & 0xFFFFFFFF,
        )
        csrcs = struct.pack(f"!{len(self.csrcs)}I", *self.csrcs) if self.csrcs else b""
        return head + csrcs + ext + self.payload + tail


@dataclass(frozen=True, slots=True)
class RtcpReportBlock:
    ssrc: int
    fraction_lost: int  # 0..255, fraction of 256
    cumulative_lost: int  # signed 24 bits
    highest_sequence: int  # extended
    jitter: int  # timestamp units
    last_sr: int = 0
    delay_since_last_sr: int = 0

    def pack(self) -> bytes:
        lost = self.cumulative_lost & 0xFFFFFF  # two's complement in 24 bits
        return _REPORT_BLOCK.pack(
            self.ssrc,
            ((self.fraction_lost & 0xFF) << 24) | lost,
            self.highest_sequence & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.last_sr & 0xFFFFFFFF,
            self.delay_since_last_sr & 0xFFFFFFFF,
        )

    @classmethod
    def unpack(cls, data: bytes | bytearray, offset: int) -> RtcpReportBlock:
        ssrc, lost_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class RtcpSenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[RtcpReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class RtcpReceiverReport:
    ssrc: int
    reports: tuple[RtcpReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class RtcpBye:
    ssrcs: tuple[int, ...]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RtcpOther:
    """SDES, APP and anything else: kept as raw bytes, never interpreted."""

    packet_type: int
    body: bytes = field(repr=False, default=b"")


RtcpPacket = RtcpSenderReport | RtcpReceiverReport | RtcpBye | RtcpOther


def parse_rtcp(data: bytes | bytearray) -> list[RtcpPacket]:
    """Parse a compound RTCP packet. Any inconsistency rejects the whole datagram (RFC 3550 §A.2)."""
    packets: list[RtcpPacket] = []
    offset = 0
    size = len(data)
    if size < 4:
        raise MalformedPacket("RTCP header truncated", size)
    while offset < size:
        if offset + 4 > size:
            raise MalformedPacket("RTCP header truncated", size)
        first, packet_type, words = struct.unpack_from("!BBH", data, offset)
        if first >> 6 != RTP_VERSION:
            raise MalformedPacket("not RTCP version 2", size)
        end = offset + 4 * (words + 1)
        if end > size:
            raise MalformedPacket("RTCP length runs past the end of the packet", size)
        count = first & 0x1F
        body_end = end
        if first & 0x20:
            pad = data[end - 1]
            if end != size or pad == 0 or pad > end - offset - 4:
                raise MalformedPacket("bad RTCP padding", size)
            body_end = end - pad
        if packet_type == 200:
            if offset + 28 + 24 * count > body_end:
                raise MalformedPacket("sender report shorter than its report count", size)
            ssrc, ntp_hi, ntp_lo, rtp_ts, packets_sent, octets = struct.unpack_from("!IIIIII", data, offset + 4)
            blocks = tuple(RtcpReportBlock.unpack(data, offset + 28 + 24 * i) for i in range(count))
            packets.append(RtcpSenderReport(ssrc, (ntp_hi << 32) | ntp_lo, rtp_ts, packets_sent, octets, blocks))
        elif packet_type == 201:
            if offset + 8 + 24 * count > body_end:
                raise MalformedPacket("receiver report shorter than its report count", size)
            (ssrc,) = struct.unpack_from("!I", data, offset + 4)
            blocks = tuple(RtcpReportBlock.unpack(data, offset + 8 + 24 * i) for i in range(count))
            packets.append(RtcpReceiverReport(ssrc, blocks))
        elif packet_type == 203:
            if offset + 4 + 4 * count > body_end:
                raise MalformedPacket("BYE shorter than its source count", size)
            ssrcs = struct.unpack_from(f"!{count}I", data, offset + 4)
            reason = ""
            reason_at = offset + 4 + 4 * count
            if reason_at < body_end:
                length = data[reason_at]
                reason = bytes(data[reason_at + 1 : min(reason_at + 1 + length, body_end)]).decode("utf-8", "replace")
            packets.append(RtcpBye(tuple(ssrcs), reason))
        elif 192 <= packet_type <= 223:
            packets.append(RtcpOther(packet_type, bytes(data[offset + 4 : body_end])))
        else:
            raise MalformedPacket(f"not an RTCP packet type: {packet_type}", size)
        offset = end
    return packets


def build_rtcp_sr(report: RtcpSenderReport) -> bytes:
    blocks = report.reports[:31]
    head = struct.pack("!BBH", 0x80 | len(blocks), 200, 6 + 6 * len(blocks))
    body = struct.pack(
        "!IIIIII",
        report.ssrc,
        (report.ntp_timestamp >> 32) & 0xFFFFFFFF,
        report.ntp_timestamp & 0xFFFFFFFF,
        report.rtp_timestamp & 0xFFFFFFFF,
        report.packet_count & 0xFFFFFFFF,
        report.octet_count & 0xFFFFFFFF,
    )
    return head + body + b"".join(b.pack() for b in blocks)


def build_rtcp_rr(report: RtcpReceiverReport) -> bytes:
    blocks = report.reports[:31]
    head = struct.pack("!BBH", 0x80 | len(blocks), 201, 1 + 6 * len(blocks))
    return head + struct.pack("!I", report.ssrc) + b"".join(b.pack() for b in blocks)


def build_rtcp_sdes_cname(ssrc: int, cname: str) -> bytes:
    """An SDES packet with one CNAME item; RFC 3550 wants one in every compound packet."""
    text = cname.encode()[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(text)) + text + b"\x00"
    chunk += bytes(-len(chunk) % 4)
    return struct.pack("!BBH", 0x81, 202, len(chunk) // 4) + chunk
