"""Adaptive jitter buffer (20-200 ms) and simple packet loss concealment, sans-IO.

The buffer is pulled once per 20 ms media tick. It holds packets by sequence number, starts playing once
its depth reaches the target delay, and adapts the target to the measured arrival jitter (three times
the smoothed deviation, rounded up to whole frames, clamped to ``min_delay..max_delay``). When it runs
deeper than the target plus two frames it drops the oldest frame to bring the delay down; when it runs
dry it re-buffers. Memory is bounded: never more than ``2 * max_delay`` worth of packets.

===========  ==========================================  ===========================================
state        on ``pop()`` (once per 20 ms tick)           on ``put(seq)``
===========  ==========================================  ===========================================
BUFFERING    depth >= target: PLAYING, play the next;     behind the next seq: start earlier (before
             else return BUFFERING (the caller plays      playout) or count it late; > 2 x max ahead:
             silence)                                     reset to BUFFERING from there
PLAYING      next seq there: play it (and skip one if     behind the playout point: count late, drop;
             depth > target + 2); missing but others       > 2 x max ahead: reset to BUFFERING
             queued: LOST (conceal); empty: BUFFERING
===========  ==========================================  ===========================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["JitterBuffer", "JitterStatistics", "conceal", "PLAYED", "LOST", "BUFFERING"]

PLAYED = "played"
LOST = "lost"
BUFFERING = "buffering"


@dataclass(slots=True)
class JitterStatistics:
    target_ms: float
    depth: int
    played: int
    lost: int
    late: int
    dropped: int
    underruns: int
    resets: int


class JitterBuffer:
    def __init__(self, *, min_delay: float = 0.02, max_delay: float = 0.2, frame: float = 0.02) -> None:
        if not 0 < min_delay <= max_delay:
            raise ValueError("need 0 < min_delay <= max_delay")
        self.frame = frame
        self.min_frames = max(1, round(min_delay / frame))
        self.max_frames = max(self.min_frames, round(max_delay / frame))
        self.target_frames = self.min_frames
        self._packets: dict[int, bytes] = {}
        self._next: int | None = None
        self._playing = False
        self._started = False  # played anything since the last reset: never go back before it
        self._last_arrival: float | None = None
        self._deviation = 0.0  # smoothed |inter-arrival - frame| in seconds
        self.played = self.lost = self.late = self.dropped = self.underruns = self.resets = 0

    def put(self, sequence: int, payload: bytes, now: float) -> None:
        if self._last_arrival is not None:
            gap = now - self._last_arrival
            if gap < 1.0:  # silence suppression or a hold is not jitter
                self._deviation += (abs(gap - self.frame) - self._deviation) / 16.0
        self._last_arrival = now
        self._adapt()
        nxt = self._next
        if nxt is None:
            self._next = sequence
        else:
            ahead = (sequence - nxt) & 0xFFFF
            if ahead >= 0x8000:  # behind the playout point
                if self._started or 0x10000 - ahead > self.max_frames:
                    self.late += 1
                    return
                self._next = sequence  # reordered before playout started: start earlier
            elif ahead > 2 * self.max_frames:
                # A sequence jump (a new source, a long gap): start over from here.
                self.resets += 1
                self._packets.clear()
                self._playing = False
                self._started = False
                self._next = sequence
        if len(self._packets) >= 2 * self.max_frames:
            self.dropped += 1
            return
        self._packets[sequence] = payload

    def _adapt(self) -> None:
        wanted = math.ceil((self.frame + 3.0 * self._deviation) / self.frame - 1e-6)
        self.target_frames = min(self.max_frames, max(self.min_frames, wanted))

    def pop(self) -> tuple[str, bytes | None]:
        """Next payload for this tick: (PLAYED, bytes), (LOST, None) or (BUFFERING, None)."""
        packets = self._packets
        if not self._playing:
            if len(packets) < self.target_frames or self._next is None:
                return BUFFERING, None
            self._playing = True
        nxt = self._next
        assert nxt is not None
        payload = packets.pop(nxt, None)
        if payload is None:
            if not packets:
                self._playing = False
                self.underruns += 1
                return BUFFERING, None
            self._next = (nxt + 1) & 0xFFFF
            self.lost += 1
            return LOST, None
        self._next = (nxt + 1) & 0xFFFF
        self.played += 1
        self._started = True
        if len(packets) > self.target_frames + 2:
            # Too deep: skip the next frame to pull the delay back toward the target.
            if packets.pop(self._next, None) is not None:
                self.dropped += 1
            self._next = (self._next + 1) & 0xFFFF
        return PLAYED, payload

    def reset(self) -> None:
        self._packets.clear()
        self._next = None
        self._playing = False
        self._started = False

    def statistics(self) -> JitterStatistics:
        return JitterStatistics(
            target_ms=self.target_frames * self.frame * 1000.0,
            depth=len(self._packets),
            played=self.played,
            lost=self.lost,
            late=self.late,
            dropped=self.dropped,
            underruns=self.underruns,
            resets=self.resets,
        )


def conceal(last_frame: np.ndarray | None, consecutive_losses: int, length: int = 160) -> np.ndarray:
    """Loss concealment: repeat the last good frame, 6 dB quieter per lost frame, silence after three."""
    if last_frame is None or consecutive_losses > 3 or len(last_frame) != length:
        return np.zeros(length, dtype=np.int16)
    return (last_frame.astype(np.int32) >> consecutive_losses).astype(np.int16)
