"""RTP session state (RFC 3550), sans-IO: sequence tracking, loss, jitter, RTCP reports, latching.

:class:`RtpSession` is what one RTP endpoint keeps about its two directions:

* receive side (Appendix A.1/A.3/A.8): the source's extended highest sequence number with
  wrap-around, probation for a new source, big jumps re-synchronised after two sequential packets,
  cumulative and interval loss, interarrival jitter;
* send side: our SSRC, sequence number and timestamp (random starts), packet and octet counts for SR;
* symmetric RTP latching (NOTES.md): media is sent back to where it really comes from; the first
  source address wins, others are ignored until :meth:`RtpSession.set_remote` says the remote changed.

Time comes in as ``now`` (seconds, any monotonic origin); the RTP clock rate is 8,000 Hz.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from ._rtp import RtcpReceiverReport, RtcpReportBlock, RtcpSenderReport

__all__ = ["RtpSession", "ReceiveStatistics"]

Address = tuple[str, int]

RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2
CLOCK_RATE = 8000
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970


@dataclass(slots=True)
class ReceiveStatistics:
    """What :meth:`RtpSession.receive_statistics` reports for the remote source."""

    ssrc: int | None
    received: int
    expected: int
    lost: int
    jitter_ms: float
    duplicates_or_late: int
    resyncs: int


class RtpSession:
    """Per-endpoint RTP bookkeeping. Cheap enough to run on every relayed packet."""

    __slots__ = (
        "ssrc", "sequence", "timestamp", "packets_sent", "octets_sent",
        "remote", "latched", "ignored_foreign",
        "source_ssrc", "max_seq", "cycles", "base_seq", "bad_seq", "probation", "received",
        "expected_prior", "received_prior", "transit", "jitter", "late", "resyncs",
        "last_sr_ntp_middle", "last_sr_at", "new_source",
    )

    def __init__(self, *, ssrc: int | None = None, remote: Address | None = None, rng: random.Random | None = None):
        rng = rng or random.SystemRandom()
        self.ssrc = ssrc if ssrc is not None else rng.getrandbits(32)
        self.sequence = rng.getrandbits(16)
        self.timestamp = rng.getrandbits(32)
        self.packets_sent = 0
        self.octets_sent = 0
        self.remote = remote
        self.latched: Address | None = None
        self.ignored_foreign = 0
        self.source_ssrc: int | None = None
        self.max_seq = self.cycles = self.base_seq = self.received = 0
        self.bad_seq = RTP_SEQ_MOD + 1
        self.probation = 0
        self.expected_prior = self.received_prior = 0
        self.transit: float | None = None
        self.jitter = 0.0  # timestamp units, RFC 3550 A.8 estimator
        self.late = 0
        self.resyncs = 0
        self.last_sr_ntp_middle = 0
        self.last_sr_at: float | None = None
        self.new_source = False

    # -- latching ---------------------------------------------------------------------------------

    def accept_from(self, address: Address) -> bool:
        """Should a packet from ``address`` be taken? Latches on the first one (symmetric RTP)."""
        latched = self.latched
        if latched == address:
            return True
        if latched is None:
            self.latched = address
            return True
        self.ignored_foreign += 1
        return False

    def set_remote(self, address: Address) -> None:
        """The signalling (a re-INVITE) moved the remote: send there and re-latch on the next packet."""
        self.remote = address
        self.latched = None

    @property
    def send_address(self) -> Address | None:
        return self.latched or self.remote

    # -- receive side (RFC 3550 A.1) ----------------------------------------------------------------

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def on_receive(self, ssrc: int, seq: int, rtp_timestamp: int, now: float) -> bool:
        """Account one received packet; returns False if it is a duplicate, too late, or on probation.

        A new SSRC restarts the statistics (a re-INVITE or a transfer upstream changed the source).
        """
        if ssrc != self.source_ssrc:
            self.source_ssrc = ssrc
            self.probation = MIN_SEQUENTIAL
            self.max_seq = seq - 1
            self.transit = None
            self.jitter = 0.0
            self.new_source = True
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    # Unlike RFC 3550 A.1, count the probation packets too: they were played.
                    self.base_seq = seq - (MIN_SEQUENTIAL - 1)
                    self.received = MIN_SEQUENTIAL
                    self._jitter(rtp_timestamp, now)
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            # RFC 3550 holds packets back during probation; for a phone call it is better to play them.
            return True
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                # Two sequential packets after a big jump: the source restarted, resynchronise.
                self.resyncs += 1
                self._init_seq(seq)
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        else:
            self.late += 1  # duplicate or reordered beyond the highest seen
            self.received += 1
            return False
        self.received += 1
        # RFC 3550 A.8 interarrival jitter, inlined: this runs for every relayed packet.
        transit = now * CLOCK_RATE - rtp_timestamp
        previous = self.transit
        self.transit = transit
        if previous is not None:
            d = transit - previous
            if d < 0:
                d = -d
            if d < CLOCK_RATE * 10:
                self.jitter += (d - self.jitter) * 0.0625
        return True

    def _jitter(self, rtp_timestamp: int, now: float) -> None:
        transit = now * CLOCK_RATE - rtp_timestamp
        previous = self.transit
        self.transit = transit
        if previous is not None:
            d = abs(transit - previous)
            if d < CLOCK_RATE * 10:  # a timestamp jump is a new talkspurt/source, not jitter
                self.jitter += (d - self.jitter) / 16.0

    @property
    def extended_max_seq(self) -> int:
        return self.cycles + self.max_seq

    def receive_statistics(self) -> ReceiveStatistics:
        expected = self.extended_max_seq - self.base_seq + 1 if self.source_ssrc is not None else 0
        return ReceiveStatistics(
            ssrc=self.source_ssrc,
            received=self.received,
            expected=max(expected, 0),
            lost=max(expected - self.received, 0),
            jitter_ms=self.jitter / CLOCK_RATE * 1000.0,
            duplicates_or_late=self.late,
            resyncs=self.resyncs,
        )

    # -- send side ----------------------------------------------------------------------------------

    def next_header(self, samples: int, payload_length: int) -> tuple[int, int]:
        """Reserve (sequence, timestamp) for an outgoing packet carrying ``samples`` samples."""
        seq, ts = self.sequence, self.timestamp
        self.sequence = (seq + 1) & 0xFFFF
        self.timestamp = (ts + samples) & 0xFFFFFFFF
        self.packets_sent += 1
        self.octets_sent += payload_length
        return seq, ts

    # -- RTCP --------------------------------------------------------------------------------------

    def on_sender_report(self, ntp_timestamp: int, now: float) -> None:
        self.last_sr_ntp_middle = (ntp_timestamp >> 16) & 0xFFFFFFFF
        self.last_sr_at = now

    def _report_block(self, now: float) -> RtcpReportBlock | None:
        if self.source_ssrc is None:
            return None
        expected = self.extended_max_seq - self.base_seq + 1
        lost = expected - self.received
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval
        dlsr = 0
        if self.last_sr_at is not None:
            dlsr = int((now - self.last_sr_at) * 65536)
        return RtcpReportBlock(
            ssrc=self.source_ssrc,
            fraction_lost=min(fraction, 255),
            cumulative_lost=max(min(lost, 0x7FFFFF), -0x800000),
            highest_sequence=self.extended_max_seq,
            jitter=int(self.jitter),
            last_sr=self.last_sr_ntp_middle,
            delay_since_last_sr=dlsr,
        )

    def make_report(self, now: float, wallclock: float | None = None) -> RtcpSenderReport | RtcpReceiverReport:
        """An SR if we sent anything since the start, else an RR; with a block for the remote source."""
        block = self._report_block(now)
        blocks = (block,) if block else ()
        if self.packets_sent:
            wall = time.time() if wallclock is None else wallclock
            seconds = int(wall) + NTP_EPOCH_OFFSET
            ntp = (seconds << 32) | int((wall % 1.0) * (1 << 32))
            return RtcpSenderReport(self.ssrc, ntp, self.timestamp, self.packets_sent, self.octets_sent, blocks)
        return RtcpReceiverReport(self.ssrc, blocks)
