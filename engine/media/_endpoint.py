"""One RTP endpoint: a local UDP port pair and everything the engine keeps about one call leg.

The endpoint does no I/O scheduling of its own: the :class:`~engine.media.MediaEngine` receive task
hands it datagrams (``_on_rtp``/``_on_rtcp``) and the media clock calls ``_tick_in``/``_tick_out``
every 20 ms. Sockets are plain non-blocking stdlib sockets; ``sendto`` on UDP never blocks (a full
send buffer drops the packet, which is the right thing for RTP).

Modes:

* relayed (:meth:`MediaEngine.bridge` with no DSP needed): each packet is forwarded to the peer
  endpoint at once, header rewritten to the peer's SSRC/sequence/timestamp, payload translated
  between µ-law and A-law if the legs differ; decoded only when recording or in-band DTMF detection
  needs the audio.
* terminated (prompts, conference, devices): packets go through the jitter buffer and are decoded
  on the clock tick; what to send comes from :meth:`play` or from frames written to :attr:`sink`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._audio import FRAME_SAMPLES, Source
from ._dtmf import DIGITS, Direction, DtmfEvent, DtmfMethod, DtmfSource, Rfc4733Receiver, rfc4733_packets
from ._errors import MalformedPacket, MediaUsageError
from ._g711 import CODECS
from ._inband import InbandDtmfDetector
from ._jitter import LOST, PLAYED, JitterBuffer, conceal
from ._levels import VoiceActivityDetector
from ._rtp import (
    RtcpReceiverReport,
    RtcpSenderReport,
    build_rtcp_rr,
    build_rtcp_sdes_cname,
    build_rtcp_sr,
    parse_rtcp,
    rtp_header_length,
)
from ._session import RtpSession

if TYPE_CHECKING:
    from ._engine import Bridge, MediaEngine

__all__ = ["RtpEndpoint"]

Address = tuple[str, int]
_HEADER = struct.Struct("!BBHII")
_SEQ_TS_SSRC = struct.Struct("!HII")


log = logging.getLogger("centralita.media")
_LIBC = ctypes.CDLL(None, use_errno=True)


def _disconnect_udp(sock: socket.socket) -> None:
    """Dissolve a UDP socket's peer association: connect() to an AF_UNSPEC address (Linux, BSD).

    Python's ``socket.connect`` cannot express AF_UNSPEC, hence libc directly.
    """
    unspec = (ctypes.c_ubyte * 32)()  # sa_family 0 = AF_UNSPEC; the rest is ignored
    if _LIBC.connect(sock.fileno(), unspec, ctypes.sizeof(unspec)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot disconnect the RTP socket: {os.strerror(err)}")


class _InboundSource:
    """The endpoint's received audio as a Source: the frame decoded on this tick."""

    def __init__(self, endpoint: RtpEndpoint) -> None:
        self._endpoint = endpoint

    def read_frame(self) -> np.ndarray | None:
        frame = self._endpoint._inbound_frame
        return frame if frame is not None else np.zeros(FRAME_SAMPLES, dtype=np.int16)


class _OutboundSink:
    """Frames written here are sent on this tick (a conference or a device driving the endpoint)."""

    def __init__(self, endpoint: RtpEndpoint) -> None:
        self._endpoint = endpoint

    def write_frame(self, frame: np.ndarray) -> None:
        self._endpoint._outbound_frame = frame


class RtpEndpoint:
    """A call leg's RTP/RTCP port pair. Made by :meth:`MediaEngine.allocate`, never directly."""

    def __init__(
        self,
        engine: MediaEngine,
        rtp_socket: socket.socket,
        rtcp_socket: socket.socket | None,
        *,
        codec: str,
        payload_type: int | None,
        telephone_event: int | None,
        dtmf: DtmfMethod,
        remote: Address | None,
        name: str,
        jitter: tuple[float, float],
        on_dtmf: Callable[[RtpEndpoint, DtmfEvent], None] | None,
    ) -> None:
        if codec not in CODECS:
            raise MediaUsageError(f"unsupported codec {codec!r}; supported: {', '.join(CODECS)}")
        self.engine = engine
        self.name = name
        self.codec = codec
        static_pt, self._encode, self._decode = CODECS[codec]
        self.payload_type = static_pt if payload_type is None else payload_type
        self.telephone_event = telephone_event
        self.dtmf_method = dtmf
        self.on_dtmf = on_dtmf
        self._rtp = rtp_socket
        self._rtcp = rtcp_socket
        self.local_address: Address = rtp_socket.getsockname()[:2]
        self.rtcp_local_address: Address | None = rtcp_socket.getsockname()[:2] if rtcp_socket else None
        self.session = RtpSession(remote=remote)
        self.rtcp_remote: Address | None = None
        self.remote_reports: list[Any] = []
        self._dtmf_rx = Rfc4733Receiver()
        self._inband: InbandDtmfDetector | None = None
        self.vad = VoiceActivityDetector()
        self.jitter = JitterBuffer(min_delay=jitter[0], max_delay=jitter[1])
        self._last_good: np.ndarray | None = None
        self._losses = 0
        self._pending: list[np.ndarray] = []  # decoded samples not yet handed out (packets of any size)
        self._inbound_frame: np.ndarray | None = None
        self._outbound_frame: np.ndarray | None = None
        self._player: Source | None = None
        # telephone-event packets to send, one per tick: (payload, marker, last of the digit)
        self._dtmf_tx: list[tuple[bytes, bool, bool]] = []
        self._event_ts = 0
        self._inband_tx: list[np.ndarray] = []
        self.source = _InboundSource(self)
        self.sink = _OutboundSink(self)
        self.sinks: list[Any] = []  # extra Sinks fed with decoded inbound audio (detectors, taps)
        self.bridge: Bridge | None = None
        self._relay_to: RtpEndpoint | None = None
        self._relay_src: int | None = None  # source SSRC the relay offsets were computed for
        self._seq_offset = 0
        self._ts_offset = 0
        self._relay_last_seq = 0
        self._translate: bytes | None = None
        self._record_side: Any = None  # the bridge's buffer for this leg's audio while recording
        self.closed = False
        # Once latched, the RTP socket is connect()ed to the peer: the kernel then drops strangers'
        # packets before they cost us anything, and send/recv skip per-packet address handling.
        self._connected = False
        self.next_rtcp = 0.0
        # counters
        self.packets_in = self.packets_out = self.malformed = self.wrong_payload_type = 0
        self.rtcp_in = self.rtcp_malformed = self.relayed = 0
        self._configure_dtmf()

    # -- configuration ------------------------------------------------------------------------------

    def _configure_dtmf(self) -> None:
        method = self.effective_dtmf_method
        self._inband = InbandDtmfDetector() if method is DtmfMethod.INBAND else None
        # One method per leg: a leg set to in-band or SIP INFO must not also report the telephone-events
        # a phone sends alongside (the same key press would count twice, or a method the site turned off
        # would be obeyed). The events are still relayed to a bridged peer that takes them.
        self._hear_events = method is DtmfMethod.RFC4733

    @property
    def effective_dtmf_method(self) -> DtmfMethod:
        if self.dtmf_method is DtmfMethod.AUTO:
            return DtmfMethod.RFC4733 if self.telephone_event is not None else DtmfMethod.INBAND
        return self.dtmf_method

    def set_remote(self, address: Address, *, rtcp: Address | None = None) -> None:
        """The remote RTP address from SDP (or a re-INVITE): send there, re-latch on the next packet."""
        self.session.set_remote((address[0], int(address[1])))
        self.rtcp_remote = rtcp or (address[0], int(address[1]) + 1)
        if self._connected:
            self._connected = False
            _disconnect_udp(self._rtp)
            if self._rtp.getsockname()[1] == 0:
                # Linux releases an ephemeral (port 0) binding on disconnect: take the same port back.
                self._rtp.bind(self.local_address)

    def negotiate(self, *, codec: str | None = None, payload_type: int | None = None,
                  telephone_event: int | None = None, dtmf: DtmfMethod | str | None = None) -> None:
        """Apply the SDP answer: codec, its payload type, the telephone-event payload type, DTMF method."""
        if codec is not None:
            if codec not in CODECS:
                raise MediaUsageError(f"unsupported codec {codec!r}; supported: {', '.join(CODECS)}")
            self.codec = codec
            static_pt, self._encode, self._decode = CODECS[codec]
            self.payload_type = static_pt
        if payload_type is not None:
            self.payload_type = payload_type
        self.telephone_event = telephone_event if telephone_event is not None else self.telephone_event
        if dtmf is not None:
            self.dtmf_method = DtmfMethod(dtmf)
        self._configure_dtmf()
        self.engine._rebridge(self)

    @property
    def relaying(self) -> bool:
        return self._relay_to is not None

    # -- what the call does with it -----------------------------------------------------------------

    def play(self, source: Source | None) -> None:
        """Send audio from ``source`` (a prompt, music on hold, tones); None stops it."""
        self._player = source
        self.engine._wake(self)

    @property
    def playing(self) -> bool:
        return self._player is not None

    @property
    def player(self) -> Source | None:
        """The source being played (None once it has ended): lets a caller stop only its own."""
        return self._player

    def send_dtmf(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 60) -> None:
        """Send digits with this endpoint's DTMF method (INFO: ``on_send_info`` does the signalling)."""
        for d in digits:
            if d not in DIGITS:
                raise MediaUsageError(f"not a DTMF digit: {d!r}")
        method = self.effective_dtmf_method
        if method is DtmfMethod.INFO:
            raise MediaUsageError("DTMF over SIP INFO is sent by the SIP plugin, not by the media endpoint")
        if method is DtmfMethod.RFC4733 and self.telephone_event is not None:
            for d in digits:
                packets = rfc4733_packets(d, duration_ms)
                self._dtmf_tx.extend(
                    (payload, marker, i == len(packets) - 1) for i, (payload, marker) in enumerate(packets)
                )
                self._dtmf_tx.extend([(b"", False, False)] * max(1, gap_ms // 20))
        else:
            source = DtmfSource(digits, duration_ms=duration_ms, gap_ms=gap_ms)
            while (frame := source.read_frame()) is not None:
                self._inband_tx.append(frame)
        for d in digits:
            self._emit(DtmfEvent(d, duration_ms, Direction.SENT, method))
        self.engine._wake(self)

    def receive_info_dtmf(self, digit: str, duration_ms: int) -> None:
        """The SIP plugin got an INFO with a digit for this leg: report it like any other digit."""
        if digit not in DIGITS:
            raise MediaUsageError(f"not a DTMF digit: {digit!r}")
        self._emit(DtmfEvent(digit, int(duration_ms), Direction.RECEIVED, DtmfMethod.INFO))

    def _emit(self, event: DtmfEvent) -> None:
        self.engine.dtmf_events += 1
        if self.on_dtmf is not None:
            try:
                self.on_dtmf(self, event)
            except Exception:
                # A listener's bug must not take down the media tasks (and every call with them).
                self.engine.callback_errors += 1
                log.exception("on_dtmf callback of %s failed", self.name)

    # -- receive path (called by the engine's receive task) -----------------------------------------

    def _on_rtp(self, data: bytes, address: Address, now: float) -> None:
        session = self.session
        if address != session.latched:
            if not session.accept_from(address):
                return
            try:
                self._rtp.connect(address)
                self._connected = True
            except OSError:
                pass  # still works unconnected, just slower
        size = len(data)
        if size >= 12 and data[0] == 0x80:  # the usual packet: no CSRC, extension or padding
            header = 12
            end = size
        else:
            try:
                header = rtp_header_length(data)
            except MalformedPacket:
                self.malformed += 1
                return
            end = size - data[-1] if data[0] & 0x20 else size
        self.packets_in += 1
        pt = data[1] & 0x7F
        seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        session.on_receive(ssrc, seq, ts, now)
        if pt == self.payload_type:
            peer = self._relay_to
            if peer is not None:
                peer._forward(data, header, end, seq, ts, ssrc, False)
                if self._record_side is not None:
                    self._record_side.append(data[header:end])
                if self._inband is not None:
                    for event in self._inband.feed(self._decode(data[header:end])):
                        self._emit(event)
            else:
                self.jitter.put(seq, data[header:end], now)
        elif pt == self.telephone_event and pt is not None:
            if self._hear_events:
                for event in self._dtmf_rx.feed(data[header:end], ts, now):
                    self._emit(event)
            peer = self._relay_to
            if peer is not None and peer.telephone_event is not None:
                peer._forward(data, header, end, seq, ts, ssrc, True)
        else:
            self.wrong_payload_type += 1

    def _forward(self, data: bytes, header: int, end: int, seq: int, ts: int, ssrc: int, event: bool) -> None:
        """Send a packet received on the peer leg out of this one, as if we were its source."""
        session = self.session
        destination = session.latched or session.remote
        if destination is None or (self._inband_tx and not event):
            return  # (while we play in-band digits on this leg, they replace the relayed audio)
        marker = data[1] & 0x80
        if ssrc != self._relay_src or 3000 < ((seq - self._relay_last_seq) & 0xFFFF) < 0xFF00:
            # A new source, the first packet, or a wild sequence jump (the source restarted upstream):
            # continue our own sequence and timestamp from here, so this leg's peer sees no break.
            self._relay_src = ssrc
            self._seq_offset = (session.sequence - seq) & 0xFFFF
            self._ts_offset = (session.timestamp - ts) & 0xFFFFFFFF
            marker = 0x80
        self._relay_last_seq = seq
        payload = data[header:end]
        if event:
            pt = self.telephone_event
        else:
            pt = self.payload_type
            if self._translate is not None:
                payload = payload.translate(self._translate)
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (ts + self._ts_offset) & 0xFFFFFFFF
        packet = _HEADER.pack(0x80, marker | pt, out_seq, out_ts, session.ssrc) + payload
        try:
            if self._connected:
                self._rtp.send(packet)
            else:
                self._rtp.sendto(packet, destination)
        except OSError:
            self.engine.send_errors += 1
            return
        self.relayed += 1
        self.packets_out += 1
        session.packets_sent += 1
        session.octets_sent += len(payload)
        if ((out_seq - session.sequence) & 0xFFFF) < 0x8000:
            session.sequence = (out_seq + 1) & 0xFFFF
            if not event:
                session.timestamp = (out_ts + len(payload)) & 0xFFFFFFFF

    def _on_rtcp(self, data: bytes, address: Address, now: float) -> None:
        latched = self.session.latched
        if latched is not None and address[0] != latched[0]:
            return  # RTCP from a host that is not our media peer
        try:
            packets = parse_rtcp(data)
        except MalformedPacket:
            self.rtcp_malformed += 1
            return
        self.rtcp_in += 1
        self.rtcp_remote = address
        for packet in packets:
            if isinstance(packet, RtcpSenderReport):
                self.session.on_sender_report(packet.ntp_timestamp, now)
            if isinstance(packet, (RtcpSenderReport, RtcpReceiverReport)):
                self.remote_reports = list(packet.reports)

    # -- clock (called by the engine's media clock) ---------------------------------------------------

    def _tick_in(self, now: float) -> None:
        """Decode this tick's inbound frame (terminated mode) and feed detectors and sinks.

        Packets need not be 20 ms: decoded audio goes through a small sample FIFO and the tick takes
        160 samples, pulling another packet from the jitter buffer only when the FIFO runs short
        (30 ms packets: two pulls every three ticks).
        """
        pending = self._pending
        while sum(len(p) for p in pending) < FRAME_SAMPLES:
            status, payload = self.jitter.pop()
            if status == PLAYED:
                assert payload is not None
                if not payload:
                    continue
                pcm = self._decode(payload)
                pending.append(pcm)
                self._last_good = pcm[-FRAME_SAMPLES:] if len(pcm) >= FRAME_SAMPLES else None
                self._losses = 0
            elif status == LOST:
                self._losses += 1
                pending.append(conceal(self._last_good, self._losses))
            else:
                break
        have = sum(len(p) for p in pending)
        if have == 0:
            self._inbound_frame = None
            return
        audio = pending[0] if len(pending) == 1 else np.concatenate(pending)
        if have < FRAME_SAMPLES:  # ran dry mid-frame: pad with silence
            audio = np.concatenate([audio, np.zeros(FRAME_SAMPLES - have, dtype=np.int16)])
        frame = audio[:FRAME_SAMPLES]
        pending.clear()
        if len(audio) > FRAME_SAMPLES:
            pending.append(audio[FRAME_SAMPLES:])
        self._inbound_frame = frame
        self.vad.feed(frame)
        if self._inband is not None:
            for event in self._inband.feed(frame):
                self._emit(event)
        for sink in self.sinks:
            sink.write_frame(frame)

    def _timers(self, now: float) -> None:
        for event in self._dtmf_rx.handle_timer(now):
            self._emit(event)

    def _tick_out(self, now: float) -> None:
        """Send this tick's packet: queued DTMF first, then sink frames, then the player."""
        destination = self.session.send_address
        if self._dtmf_tx:
            payload, marker, last = self._dtmf_tx.pop(0)
            if payload:  # an empty entry is the pause after a digit: audio goes on meanwhile
                session = self.session
                if marker:
                    self._event_ts = session.timestamp
                if destination is not None and self.telephone_event is not None:
                    seq, _ = session.next_header(0, len(payload))
                    head = _HEADER.pack(0x80, (0x80 if marker else 0) | self.telephone_event, seq,
                                        self._event_ts, session.ssrc)
                    self._send(head + payload, destination)
                if last:  # audio resumes after the event's duration
                    duration = int.from_bytes(payload[2:4], "big")
                    session.timestamp = (self._event_ts + duration) & 0xFFFFFFFF
                self._outbound_frame = None
                return
        frame = self._outbound_frame
        self._outbound_frame = None
        if self._inband_tx:
            frame = self._inband_tx.pop(0)  # on a relayed leg too: _forward holds the peer's audio back
        elif self._relay_to is not None:
            return  # relayed: the peer's packets are this leg's audio
        elif frame is None and self._player is not None:
            frame = self._player.read_frame()
            if frame is None:
                self._player = None
        if frame is None or destination is None:
            return
        payload = self._encode(frame)
        seq, ts = self.session.next_header(len(frame), len(payload))
        self._send(_HEADER.pack(0x80, self.payload_type, seq, ts, self.session.ssrc) + payload, destination)

    def _send(self, packet: bytes, destination: Address) -> None:
        try:
            if self._connected:
                self._rtp.send(packet)
            else:
                self._rtp.sendto(packet, destination)
            self.packets_out += 1
        except OSError:
            self.engine.send_errors += 1

    def _send_rtcp(self, now: float) -> None:
        if self._rtcp is None:
            return
        destination = self.rtcp_remote
        if destination is None:
            addr = self.session.send_address
            if addr is None:
                return
            destination = (addr[0], addr[1] + 1)
        report = self.session.make_report(now)
        packet = build_rtcp_sr(report) if isinstance(report, RtcpSenderReport) else build_rtcp_rr(report)
        packet += build_rtcp_sdes_cname(self.session.ssrc, f"centralita@{self.local_address[0]}")
        try:
            self._rtcp.sendto(packet, destination)
        except OSError:
            self.engine.send_errors += 1

    @property
    def needs_clock(self) -> bool:
        """Terminated endpoints and anything with queued DTMF tick every 20 ms; pure relays do not."""
        return (self._relay_to is None) or bool(self._dtmf_tx or self._inband_tx)

    def statistics(self) -> dict[str, Any]:
        rx = self.session.receive_statistics()
        return {
            "local": f"{self.local_address[0]}:{self.local_address[1]}",
            "remote": None if self.session.send_address is None else "%s:%d" % self.session.send_address,
            "codec": self.codec,
            "dtmf": self.effective_dtmf_method.value,
            "packets_in": self.packets_in,
            "packets_out": self.packets_out,
            "relayed": self.relayed,
            "malformed": self.malformed,
            "wrong_payload_type": self.wrong_payload_type,
            "ignored_foreign": self.session.ignored_foreign,
            "rtcp_in": self.rtcp_in,
            "rtcp_malformed": self.rtcp_malformed,
            "lost": rx.lost,
            "jitter_ms": round(rx.jitter_ms, 2),
            "jitter_buffer": self.jitter.statistics(),
            "level_dbfs": round(self.vad.last_dbfs, 1),
            "talking": self.vad.active,
        }

    async def aclose(self) -> None:
        self.engine.release(self)
