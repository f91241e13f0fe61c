"""DTMF: RFC 4733 telephone-event receive and send, a tone generator, and the digit event, sans-IO.

Receive rules (RFC 4733 §2.5.2): one event is identified by its RTP timestamp (the event's start); its
packets repeat with a growing duration; the end is marked with the E bit, usually sent three times. A
digit is reported exactly once, when it ends: on the first E packet, or when a packet with a new
timestamp shows the end was lost, or when nothing arrives for ``lost_end_timeout`` seconds
(:meth:`Rfc4733Receiver.handle_timer`). Retransmitted end packets are recognised by their timestamp and
dropped.

===========  ===============================================  ========================================
state        packet with timestamp T                          timer (no packet for lost_end_timeout)
===========  ===============================================  ========================================
IDLE         T already ended: duplicate, drop; else IN_EVENT  -
IN_EVENT(T)  same T: keep the longest duration; E bit:        report the digit, IDLE
             report, IDLE. New T: report the old one first,
             then IN_EVENT(new T)
===========  ===============================================  ========================================
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DtmfEvent",
    "DtmfMethod",
    "Direction",
    "Rfc4733Receiver",
    "rfc4733_packets",
    "dtmf_tone",
    "DtmfSource",
    "DIGITS",
    "DTMF_FREQUENCIES",
]

#: RFC 4733 event codes 0..15
DIGITS = "0123456789*#ABCD"
_EVENT_OF_DIGIT = {d: i for i, d in enumerate(DIGITS)}

ROW_FREQUENCIES = (697.0, 770.0, 852.0, 941.0)
COLUMN_FREQUENCIES = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYPAD = ("123A", "456B", "789C", "*0#D")
#: digit -> (row Hz, column Hz)
DTMF_FREQUENCIES = {
    _KEYPAD[r][c]: (ROW_FREQUENCIES[r], COLUMN_FREQUENCIES[c]) for r in range(4) for c in range(4)
}


class DtmfMethod(enum.Enum):
    """How an endpoint carries DTMF: ``auto`` is RFC 4733 when telephone-event was negotiated, else in-band."""

    RFC4733 = "rfc4733"
    INBAND = "inband"
    INFO = "info"
    AUTO = "auto"


class Direction(enum.Enum):
    RECEIVED = "Received"
    SENT = "Sent"


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One digit, reported when it ends (the ``DTMFEnd`` event: ``Digit``, ``DurationMs``, ``Direction``)."""

    digit: str
    duration_ms: int
    direction: Direction = Direction.RECEIVED
    method: DtmfMethod = DtmfMethod.RFC4733

    def event_fields(self) -> dict[str, object]:
        return {"Digit": self.digit, "DurationMs": self.duration_ms, "Direction": self.direction.value}


class Rfc4733Receiver:
    """Turns telephone-event payloads into :class:`DtmfEvent` objects, each digit exactly once."""

    def __init__(self, *, clock_rate: int = 8000, lost_end_timeout: float = 0.5) -> None:
        self.clock_rate = clock_rate
        self.lost_end_timeout = lost_end_timeout
        self._current: tuple[int, int, int] | None = None  # (timestamp, event, duration)
        self._last_seen = 0.0
        self._ended: list[int] = []  # timestamps of recently ended events
        self.malformed = 0
        self.duplicates = 0

    def feed(self, payload: bytes, rtp_timestamp: int, now: float) -> list[DtmfEvent]:
        if len(payload) < 4:
            self.malformed += 1
            return []
        event, flags, duration = struct.unpack_from("!BBH", payload)
        out: list[DtmfEvent] = []
        if event >= len(DIGITS):
            return out  # not a DTMF event (flash, modem tones): not ours to report
        if rtp_timestamp in self._ended:
            self.duplicates += 1
            return out
        current = self._current
        if current is not None and current[0] != rtp_timestamp:
            out.append(self._finish(current))  # the previous event's end packets were all lost
            current = None
        if current is None or duration >= current[2]:
            current = (rtp_timestamp, event, duration)
        self._current = current
        self._last_seen = now
        if flags & 0x80:
            out.append(self._finish(current))
        return out

    def _finish(self, current: tuple[int, int, int]) -> DtmfEvent:
        timestamp, event, duration = current
        self._current = None
        self._ended.append(timestamp)
        del self._ended[:-8]
        return DtmfEvent(DIGITS[event], round(duration * 1000 / self.clock_rate), Direction.RECEIVED)

    def next_timer(self) -> float | None:
        return None if self._current is None else self._last_seen + self.lost_end_timeout

    def handle_timer(self, now: float) -> list[DtmfEvent]:
        deadline = self.next_timer()
        if deadline is None or now < deadline:
            return []
        assert self._current is not None
        return [self._finish(self._current)]


def rfc4733_packets(
    digit: str, duration_ms: int = 100, *, volume: int = 10, packet_ms: int = 20, clock_rate: int = 8000
) -> list[tuple[bytes, bool]]:
    """The telephone-event payloads for one digit, one per packet interval: (payload, marker).

    All share the event's start timestamp (the caller keeps it fixed); the duration grows each
    interval; the last packet has the E bit and is sent three times (RFC 4733 §2.5.1.4).
    """
    if digit not in _EVENT_OF_DIGIT:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    if not 0 <= volume <= 63:
        raise ValueError("volume is 0..63 (-dBm0)")
    event = _EVENT_OF_DIGIT[digit]
    step = clock_rate * packet_ms // 1000
    total = max(step, min(clock_rate * duration_ms // 1000, 0xFFFF))
    packets = []
    elapsed = step
    while elapsed < total:
        packets.append((struct.pack("!BBH", event, volume, elapsed), not packets))
        elapsed += step
    end = struct.pack("!BBH", event, 0x80 | volume, total)
    packets.extend([(end, not packets)] + [(end, False)] * 2)
    return packets


def dtmf_tone(
    digit: str,
    duration_ms: float = 100,
    *,
    level_dbfs: float = -10.0,
    twist_db: float = 0.0,
    frequency_offset: float = 0.0,
    sample_rate: int = 8000,
) -> np.ndarray:
    """One DTMF digit as int16 samples.

    ``level_dbfs`` is each tone's level (0 dBFS = a full-scale sine); ``twist_db`` is the column tone's
    level minus the row tone's; ``frequency_offset`` shifts both tones by that fraction (0.02 = +2%).
    """
    low, high = DTMF_FREQUENCIES[digit]
    n = int(round(sample_rate * duration_ms / 1000))
    t = np.arange(n) / sample_rate
    amp_low = 32767 * 10 ** (level_dbfs / 20)
    amp_high = amp_low * 10 ** (twist_db / 20)
    scale = 1.0 + frequency_offset
    wave = amp_low * np.sin(2 * np.pi * low * scale * t) + amp_high * np.sin(2 * np.pi * high * scale * t)
    return np.clip(np.round(wave), -32768, 32767).astype(np.int16)


class DtmfSource:
    """A :class:`~engine.media.Source` that plays digits in-band (for a voice modem's line, a headset).

    Each digit is ``duration_ms`` of tone followed by ``gap_ms`` of silence; 20 ms frames; ends after
    the last gap.
    """

    def __init__(self, digits: str, *, duration_ms: int = 100, gap_ms: int = 60, level_dbfs: float = -10.0):
        for d in digits:
            if d not in DTMF_FREQUENCIES:
                raise ValueError(f"not a DTMF digit: {d!r}")
        gap = np.zeros(8 * gap_ms, dtype=np.int16)
        parts = [np.concatenate([dtmf_tone(d, duration_ms, level_dbfs=level_dbfs), gap]) for d in digits]
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        pad = -len(audio) % 160
        self._audio = np.concatenate([audio, np.zeros(pad, dtype=np.int16)])
        self._position = 0

    def read_frame(self) -> np.ndarray | None:
        if self._position >= len(self._audio):
            return None
        frame = self._audio[self._position : self._position + 160]
        self._position += 160
        return frame
