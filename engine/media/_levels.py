"""Energy and voice activity per stream, sans-IO: for answering-machine and silence detection.

Levels are in dBFS with a full-scale sine at 0 dBFS (so a full-scale square wave reads +3 dBFS and
digital silence reads ``SILENCE_DBFS``). The VAD is deliberately simple: a frame is speech when it is
both above an absolute floor and well above a tracked noise floor; a hangover keeps short pauses
between words inside one talk spurt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._audio import FRAME_SECONDS

__all__ = ["frame_dbfs", "VoiceActivityDetector", "VadStatistics", "SILENCE_DBFS"]

SILENCE_DBFS = -120.0
_FULL_SCALE_SINE_POWER = (32767.0**2) / 2


def frame_dbfs(frame: np.ndarray) -> float:
    """RMS level of a frame in dBFS (0 dBFS = full-scale sine)."""
    if len(frame) == 0:
        return SILENCE_DBFS
    x = frame.astype(np.float64)
    power = float(np.dot(x, x)) / len(x)
    if power <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * math.log10(power / _FULL_SCALE_SINE_POWER))


@dataclass(slots=True)
class VadStatistics:
    speech_ms: int
    silence_ms: int
    current_silence_ms: int
    current_speech_ms: int
    talk_spurts: int
    noise_floor_dbfs: float
    last_dbfs: float


class VoiceActivityDetector:
    """Feed one frame at a time; ``feed`` returns True while the stream is talking."""

    def __init__(
        self,
        *,
        threshold_dbfs: float = -45.0,
        above_noise_db: float = 9.0,
        hangover_ms: int = 240,
        frame_ms: int = round(FRAME_SECONDS * 1000),
    ) -> None:
        self.threshold_dbfs = threshold_dbfs
        self.above_noise_db = above_noise_db
        self.frame_ms = frame_ms
        self.hangover_frames = max(0, hangover_ms // frame_ms)
        self.noise_floor = -70.0
        self.active = False
        self._hangover = 0
        self.speech_ms = self.silence_ms = 0
        self.current_silence_ms = self.current_speech_ms = 0
        self.talk_spurts = 0
        self.last_dbfs = SILENCE_DBFS

    def feed(self, frame: np.ndarray) -> bool:
        level = frame_dbfs(frame)
        self.last_dbfs = level
        # Noise floor: follows quiet frames quickly, loud ones very slowly (speech must not lift it).
        if level < self.noise_floor:
            self.noise_floor += (level - self.noise_floor) * 0.2
        else:
            self.noise_floor += (level - self.noise_floor) * 0.002
        loud = level > self.threshold_dbfs and level > self.noise_floor + self.above_noise_db
        if loud:
            if not self.active:
                self.talk_spurts += 1
                self.current_speech_ms = 0
            self.active = True
            self._hangover = self.hangover_frames
        elif self.active:
            if self._hangover > 0:
                self._hangover -= 1
            else:
                self.active = False
                self.current_silence_ms = 0
        if self.active:
            self.speech_ms += self.frame_ms
            self.current_speech_ms += self.frame_ms
            self.current_silence_ms = 0
        else:
            self.silence_ms += self.frame_ms
            self.current_silence_ms += self.frame_ms
        return self.active

    def statistics(self) -> VadStatistics:
        return VadStatistics(
            self.speech_ms,
            self.silence_ms,
            self.current_silence_ms,
            self.current_speech_ms,
            self.talk_spurts,
            self.noise_floor,
            self.last_dbfs,
        )
