"""Answering-machine detection: who answered, a person or a machine, and when the beep ends.

Sans-IO and pluggable. A detector is fed 20 ms frames of 8 kHz int16 PCM (numpy arrays of 160 samples)
from the moment the far end answers, and returns a :class:`AmdResult` once it has decided. Anything
implementing :class:`AnsweringMachineDetector` can replace the default :class:`CadenceDetector` (the
engine offers a hook for it); the frame energy is computed here so the detector does not depend on the
media framework's VAD, but :meth:`CadenceDetector.feed` accepts a precomputed ``voiced`` flag to use one.

:class:`CadenceDetector` follows the shape of Asterisk's app_amd: a state machine over voiced and
silent stretches, counting "words" (voiced runs of at least ``min_word_length``). Its defaults differ
where Asterisk's collide with the 2-second abandonment rule or with people who answer with a sentence:

===========================  =========  ==========  ============================================
setting                      Asterisk   here        why
===========================  =========  ==========  ============================================
initial_silence              2.5 s      2.5 s       silence first: a machine (or nobody)
greeting                     1.5 s      2.4 s       "Yes, hello, who is this?" lasts ~1.5 s
after_greeting_silence       0.8 s      0.7 s       a person stops and waits: decide within 1 s
maximum_number_of_words      2          7           people say several short words too
total_analysis_time          5 s        3.5 s       undecided after that: NOTSURE (treated as live)
silence_threshold            256        adaptive    max(256, 3 x the line's noise floor)
===========================  =========  ==========  ============================================

The result is HUMAN when a greeting of at most ``greeting`` seconds is followed by
``after_greeting_silence`` of silence, which is at most 0.7 s + one frame after the person stops: within
the 1-second budget. MACHINE when the greeting runs long, has too many words, or nothing is said for
``initial_silence``. Mistaking a person for a machine hangs up on them (the UK counts it as an abandoned
call), so every rule errs towards HUMAN and NOTSURE is handled as HUMAN by the dialer.

:class:`BeepDetector` finds the tone after a greeting (to leave a message "after the beep"): for each
frame it measures the power at 50 Hz steps from 400 to 2000 Hz (a single-bin DFT per frequency, the
quantity the Goertzel recurrence computes, done as one matrix product) and reports a beep when one
frequency holds most of the frame's energy for ``min_duration``; :attr:`BeepDetector.ended_at` is when
it stops, the moment to start playing the message.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_SECONDS = 0.02


class AmdVerdict(enum.Enum):
    HUMAN = "HUMAN"
    MACHINE = "MACHINE"
    NOTSURE = "NOTSURE"


@dataclass(frozen=True)
class AmdResult:
    verdict: AmdVerdict
    cause: str  # as app_amd names them: HUMAN, INITIALSILENCE, LONGGREETING, MAXWORDS, TOOLONG
    decided_at: float  # seconds of audio analysed when the decision was made
    greeting_end: float | None = None  # when the person stopped talking (HUMAN), if known


class AnsweringMachineDetector(Protocol):
    """What a pluggable detector implements (the engine's AMD hook returns one per call)."""

    def feed(self, frame: np.ndarray) -> AmdResult | None:
        """Analyse one 20 ms frame; return the result once decided (and keep returning it)."""
        ...

    @property
    def result(self) -> AmdResult | None: ...


@dataclass(frozen=True)
class AmdSettings:
    initial_silence: float = 2.5
    greeting: float = 2.4
    after_greeting_silence: float = 0.7
    total_analysis_time: float = 3.5
    min_word_length: float = 0.1
    between_words_silence: float = 0.06
    maximum_number_of_words: int = 7
    silence_threshold: float = 256.0  # mean |sample| on the int16 scale
    noise_factor: float = 3.0

    def __post_init__(self) -> None:
        if min(self.initial_silence, self.greeting, self.after_greeting_silence, self.total_analysis_time) <= 0:
            raise ValueError("AMD durations must be positive")


def frame_level(frame: np.ndarray) -> float:
    """Mean absolute amplitude of a frame (app_amd's measure), on the int16 scale."""
    return float(np.abs(frame.astype(np.int32)).mean()) if frame.size else 0.0


class CadenceDetector:
    """Energy and word-cadence answering-machine detection (see the module docstring)."""

    def __init__(self, settings: AmdSettings | None = None) -> None:
        self.settings = settings or AmdSettings()
        self._elapsed = 0.0
        self._silence = 0.0  # current run of silence
        self._voice = 0.0  # current run of voice
        self._in_word = False
        self._words = 0
        self._greeting_started: float | None = None
        self._last_voice_end: float | None = None
        self._noise_floor: float | None = None
        self._result: AmdResult | None = None

    @property
    def result(self) -> AmdResult | None:
        return self._result

    def _threshold(self, level: float) -> float:
        # The floor follows the quietest recent frames: it drops at once and rises slowly, so speech
        # does not drag it up but a noisy line does.
        if self._noise_floor is None or level < self._noise_floor:
            self._noise_floor = level
        else:
            self._noise_floor += (level - self._noise_floor) * 0.002
        return max(self.settings.silence_threshold, self.settings.noise_factor * self._noise_floor)

    def feed(self, frame: np.ndarray, *, voiced: bool | None = None) -> AmdResult | None:
        if self._result is not None:
            return self._result
        s = self.settings
        level = frame_level(frame)
        threshold = self._threshold(level)
        is_voice = voiced if voiced is not None else level >= threshold
        duration = frame.size / 8000.0 if frame.size else FRAME_SECONDS
        self._elapsed += duration
        if is_voice:
            self._silence = 0.0
            self._voice += duration
            if self._greeting_started is None:
                self._greeting_started = self._elapsed - duration
            if not self._in_word and self._voice >= s.min_word_length:
                self._in_word = True
                self._words += 1
                if self._words > s.maximum_number_of_words:
                    return self._decide(AmdVerdict.MACHINE, "MAXWORDS")
            spoken = self._elapsed - self._greeting_started
            if spoken > s.greeting:
                return self._decide(AmdVerdict.MACHINE, "LONGGREETING")
        else:
            if self._voice > 0.0:
                self._last_voice_end = self._elapsed - duration
            self._silence += duration
            if self._silence >= s.between_words_silence:
                self._in_word = False
                self._voice = 0.0
            if self._greeting_started is None:
                if self._silence >= s.initial_silence:
                    return self._decide(AmdVerdict.MACHINE, "INITIALSILENCE")
            elif self._words > 0 and self._silence >= s.after_greeting_silence:
                return self._decide(AmdVerdict.HUMAN, "HUMAN", greeting_end=self._last_voice_end)
        if self._elapsed >= s.total_analysis_time:
            return self._decide(AmdVerdict.NOTSURE, "TOOLONG")
        return None

    def _decide(self, verdict: AmdVerdict, cause: str, greeting_end: float | None = None) -> AmdResult:
        self._result = AmdResult(verdict, cause, round(self._elapsed, 3), greeting_end)
        return self._result


class BeepDetector:
    """Finds a sustained single tone (an answering machine's beep) and when it ends."""

    def __init__(self, *, low: float = 400.0, high: float = 2000.0, step: float = 50.0,
                 min_duration: float = 0.2, purity: float = 0.7, min_level: float = 100.0) -> None:
        self.frequencies = np.arange(low, high + step / 2, step)
        n = np.arange(FRAME_SAMPLES)
        angles = 2 * np.pi * self.frequencies[:, None] * n[None, :] / 8000.0
        self._basis = np.concatenate([np.cos(angles), np.sin(angles)])  # (2F, 160)
        self._min_frames = max(1, round(min_duration / FRAME_SECONDS))
        self._purity = purity
        self._min_level = min_level
        self._run_frequency: int | None = None
        self._run = 0
        self._elapsed = 0.0
        self.tone_frequency: float | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None

    def feed(self, frame: np.ndarray) -> bool:
        """Analyse one 20 ms frame; True once a beep has been heard and has ended."""
        self._elapsed += FRAME_SECONDS
        if self.ended_at is not None:
            return True
        x = frame.astype(np.float64)
        if x.size != FRAME_SAMPLES:
            x = np.resize(x, FRAME_SAMPLES)
        energy = float(x @ x)
        bin_index: int | None = None
        if energy > 0 and float(np.abs(x).mean()) >= self._min_level:
            projections = self._basis @ x
            # |X(f)|^2 for a tone at f is (A*N/2)^2 and the frame energy A^2*N/2: their ratio is N/2.
            half = len(self.frequencies)
            power = projections[:half] ** 2 + projections[half:] ** 2
            best = int(np.argmax(power))
            if power[best] / (energy * FRAME_SAMPLES / 2) >= self._purity:
                bin_index = best
        if bin_index is not None and self._run_frequency is not None and abs(bin_index - self._run_frequency) <= 1:
            self._run += 1
        elif bin_index is not None:
            if self.started_at is not None and self._run >= self._min_frames:
                self._end()
                return True
            self._run_frequency, self._run = bin_index, 1
        else:
            if self._run >= self._min_frames:
                self._end()
                return True
            self._run_frequency, self._run = None, 0
        if self._run == self._min_frames:
            self.started_at = self._elapsed - self._run * FRAME_SECONDS
            self.tone_frequency = float(self.frequencies[self._run_frequency])  # type: ignore[index]
        return False

    def _end(self) -> None:
        self.ended_at = self._elapsed - FRAME_SECONDS


class FaxDetector:
    """A fax machine answering: the CED answer tone (2100 Hz) or the caller tone CNG (1100 Hz), held.

    CED lasts 2.6-4 s and a machine's beep under a second, so a tone within 50 Hz of 2100 or 1100 Hz held
    for ``min_duration`` (default 0.8 s) is a fax (outcome ``fax``: not retried).
    """

    def __init__(self, *, min_duration: float = 0.8) -> None:
        self._tone = BeepDetector(low=1050.0, high=2150.0, min_duration=min_duration)
        self.detected_at: float | None = None

    def feed(self, frame: np.ndarray) -> bool:
        if self.detected_at is not None:
            return True
        self._tone.feed(frame)
        frequency = self._tone.tone_frequency
        if frequency is not None and (abs(frequency - 2100.0) <= 50.0 or abs(frequency - 1100.0) <= 50.0):
            self.detected_at = self._tone._elapsed
            return True
        if self._tone.ended_at is not None:  # some other tone: keep listening
            self._tone = BeepDetector(low=1050.0, high=2150.0, min_duration=self._tone._min_frames * FRAME_SECONDS)
        return False


__all__ = ["AmdResult", "FaxDetector", "AmdSettings", "AmdVerdict", "AnsweringMachineDetector", "BeepDetector",
           "CadenceDetector", "FRAME_SAMPLES", "frame_level"]


def register_amd_detectors(registry: Any) -> None:
    """The built-in detector under its name (``amd = true`` in a campaign means this one); plugins add
    more through ``centralita_register_amd_detectors``."""
    from ._campaign import BUILT_IN_DETECTOR

    registry.add(BUILT_IN_DETECTOR, lambda campaign: CadenceDetector())
