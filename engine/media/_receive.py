"""One receive round of the media engine: a datagram from each ready socket, relayed in place if it can be.

This is the per-packet hot path of every bridged call (issue #4: 400 calls are 40,000 packets/s in and
40,000 out on one core), so it is written for the interpreter, not for elegance:

* a latched (``connect()``-ed) RTP socket is read with ``recv_into`` into one preallocated buffer: no
  bytes object per packet, and the kernel has already dropped every source but the latched one;
* the usual relayed packet (plain 12-byte header, the leg's payload type, same source and sequence as
  the packet before) has its header rewritten **in place** to the other leg's payload type, sequence
  number, timestamp and SSRC (``struct.pack_into``) and the same buffer is sent out of the other leg;
* the RFC 3550 receive statistics of that packet (in-order case) are updated inline.

Everything else - RTCP, a first packet (latching), a new source or a sequence jump, padding, CSRCs or
extensions, telephone events, law translation, in-band DTMF detection, legs that are not relayed, any
malformed datagram - takes the general path (``RtpEndpoint._on_rtp`` / ``_on_rtcp``) with its own copy
of the bytes, exactly as before. The fast path only ever takes the same decisions the general path
would: ``tests/engine/media/test_media_receive.py`` checks that they agree packet for packet.
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._endpoint import RtpEndpoint

__all__ = ["MAX_DATAGRAM", "ReceiveBuffer", "receive_round"]

MAX_DATAGRAM = 2048  # bigger datagrams are truncated (no G.711 packet comes near it)
_SEQ_TS_SSRC = struct.Struct("!HII")
_unpack_seq_ts_ssrc = _SEQ_TS_SSRC.unpack_from
_pack_seq_ts_ssrc = _SEQ_TS_SSRC.pack_into
# RFC 3550 A.1 constants (as in _session.py)
_MAX_DROPOUT = 3000
_CLOCK_RATE = 8000


class ReceiveBuffer:
    """The one buffer every latched RTP socket is read into (the receive task handles one at a time)."""

    __slots__ = ("data", "view", "views")

    def __init__(self) -> None:
        self.data = bytearray(MAX_DATAGRAM)
        self.view = memoryview(self.data)
        # views[n] is data[:n] as a memoryview, made once per size: slicing a memoryview for every
        # packet costs more than the list lookup
        self.views: list[memoryview | None] = [None] * (MAX_DATAGRAM + 1)


def receive_round(
    by_fd: dict[int, tuple[RtpEndpoint, bool, socket.socket]],
    events: list[tuple[int, int]],
    now: float,
    buffer: ReceiveBuffer,
) -> tuple[int, int, int]:
    """Take one datagram from each socket in ``events`` (epoll's ready list) and handle it.

    Returns ``(datagrams, receive_errors, send_errors)`` for the engine's counters.
    """
    data = buffer.data
    view = buffer.view
    views = buffer.views
    now_in_samples = now * _CLOCK_RATE
    datagrams = receive_errors = send_errors = 0
    for fd, _ in events:
        entry = by_fd.get(fd)
        if entry is None:
            continue  # released while its event was pending
        endpoint, is_rtcp, sock = entry
        if is_rtcp or not endpoint._connected:
            # RTCP, or an RTP socket not latched yet: the source address matters (latching, RTCP host).
            try:
                packet, address = sock.recvfrom(MAX_DATAGRAM)
            except BlockingIOError:
                continue
            except OSError:
                receive_errors += 1  # ICMP errors from an earlier send (ECONNREFUSED) land here
                continue
            datagrams += 1
            if is_rtcp:
                endpoint._on_rtcp(packet, address[:2], now)
            else:
                endpoint._on_rtp(packet, address[:2], now)
            continue
        try:
            size = sock.recv_into(data)
        except BlockingIOError:
            continue
        except OSError:
            receive_errors += 1
            continue
        datagrams += 1
        peer = endpoint._relay_to
        if (
            peer is None
            or size < 12
            or data[0] != 0x80  # padding, extension, CSRCs or not RTP v2: the general path checks it all
            or (data[1] & 0x7F) != endpoint.payload_type
            or endpoint._inband is not None
            or not peer._connected
            or peer._translate is not None
            or peer._inband_tx
        ):
            endpoint._on_rtp(view[:size].tobytes(), endpoint.session.latched, now)
            continue
        second = data[1]
        seq, ts, ssrc = _unpack_seq_ts_ssrc(data, 2)
        delta = (seq - peer._relay_last_seq) & 0xFFFF
        if ssrc != peer._relay_src or 3000 < delta < 0xFF00:
            # a new source or a wild jump: the general path re-bases the other leg's sequence
            endpoint._on_rtp(view[:size].tobytes(), endpoint.session.latched, now)
            continue

        # -- receive statistics (RtpSession.on_receive, its in-order branch) --
        endpoint.packets_in += 1
        session = endpoint.session
        max_seq = session.max_seq
        if ssrc == session.source_ssrc and not session.probation and ((seq - max_seq) & 0xFFFF) < _MAX_DROPOUT:
            if seq < max_seq:
                session.cycles += 0x10000
            session.max_seq = seq
            session.received += 1
            transit = now_in_samples - ts
            previous = session.transit
            session.transit = transit
            if previous is not None:
                d = transit - previous
                if d < 0:
                    d = -d
                if d < _CLOCK_RATE * 10:
                    session.jitter += (d - session.jitter) * 0.0625
        else:
            session.on_receive(ssrc, seq, ts, now)

        # -- relay (RtpEndpoint._forward, same source and no jump): rewrite the header in place --
        peer._relay_last_seq = seq
        peer_session = peer.session
        out_seq = (seq + peer._seq_offset) & 0xFFFF
        out_ts = (ts + peer._ts_offset) & 0xFFFFFFFF
        data[1] = (second & 0x80) | peer.payload_type
        _pack_seq_ts_ssrc(data, 2, out_seq, out_ts, peer_session.ssrc)
        payload_size = size - 12
        packet = views[size]
        if packet is None:
            packet = views[size] = view[:size]
        try:
            peer._rtp.send(packet)
        except OSError:
            send_errors += 1
        else:
            peer.relayed += 1
            peer.packets_out += 1
            peer_session.packets_sent += 1
            peer_session.octets_sent += payload_size
            if ((out_seq - peer_session.sequence) & 0xFFFF) < 0x8000:
                peer_session.sequence = (out_seq + 1) & 0xFFFF
                peer_session.timestamp = (out_ts + payload_size) & 0xFFFFFFFF
        record = endpoint._record_side
        if record is not None:
            record.append(data[12:size])  # the payload is untouched by the rewrite
    return datagrams, receive_errors, send_errors
