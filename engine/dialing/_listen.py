"""Listening to an answered outbound call: who answered, and for a machine, when its beep ends.

Sans-IO. The engine hands :class:`AnswerListener` the far end's decoded 20 ms frames as the media
framework produces them (with the wall-clock time and, optionally, the media framework's voice-activity
flag) and calls :meth:`AnswerListener.catch_up` when no frame came for a while *and no packet arrived
either*: a line that sends no RTP at all (or stops sending it) is silence to the detector, not a pause in
time, so an answering machine that never speaks is still recognised after ``initial_silence``; frames
that are only late (a busy media clock) are waited for, not replaced by silence.

Events, in order: one :class:`Decided` (person / machine, from the AMD detector), then -- only when
``listen_for_beep`` and the verdict is a machine -- one :class:`BeepEnded` when the beep has ended, or
(``heard=False``) when the greeting ended without one: ``beep_wait`` seconds of silence after the
verdict, or ``MAX_GREETING`` seconds of greeting at most. Either way the message then starts into a
recording machine, never on top of its greeting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .amd import (
    FRAME_SAMPLES,
    FRAME_SECONDS,
    AmdResult,
    AmdVerdict,
    AnsweringMachineDetector,
    BeepDetector,
    CadenceDetector,
    frame_level,
)

__all__ = ["MAX_GREETING", "AnswerListener", "BeepEnded", "Decided"]

#: a machine still talking this long after the verdict gets the message anyway (a stuck line, music)
MAX_GREETING = 60.0
#: without the media framework's voice flag: a frame quieter than this (mean |sample|) is silence
_QUIET_LEVEL = 256.0

_SILENT_FRAME = np.zeros(FRAME_SAMPLES, dtype=np.int16)
#: frames may arrive this late (media clock jitter, a busy box) before the gap counts as silence
_LATENESS = 0.1


@dataclass(frozen=True)
class Decided:
    machine: bool
    result: AmdResult
    at: float  # wall-clock time of the decision


@dataclass(frozen=True)
class BeepEnded:
    at: float
    heard: bool  # False: no beep within beep_wait; leave the message anyway


class AnswerListener:
    """One answered call's detection, fed frames and the time (see the module docstring)."""

    def __init__(self, started: float, *, detector: AnsweringMachineDetector | None = None,
                 listen_for_beep: bool = False, beep_wait: float = 3.0) -> None:
        self.started = started
        self.detector: AnsweringMachineDetector = detector or CadenceDetector()
        self.listen_for_beep = listen_for_beep
        self.beep_wait = beep_wait
        self.beep = BeepDetector()
        self.decision: Decided | None = None
        self.beep_end: BeepEnded | None = None
        self.frames = 0  # frames analysed, heard or filled in
        self.filled = 0  # of which silence put in for audio that never came
        # after a machine verdict, in frames of audio (heard or filled in), so a long gap counts in full
        self._decided_frame = 0
        self._quiet_since: int | None = None

    @property
    def done(self) -> bool:
        if self.decision is None:
            return False
        return not (self.listen_for_beep and self.decision.machine) or self.beep_end is not None

    def feed(self, frame: np.ndarray, now: float, *, voiced: bool | None = None) -> list[Decided | BeepEnded]:
        """One frame of the far end's audio, received at ``now``."""
        if frame.size != FRAME_SAMPLES:
            frame = np.resize(frame, FRAME_SAMPLES) if frame.size else _SILENT_FRAME
        events = self._analyse(frame, now, voiced)
        return events + self._greeting_over(now)

    def catch_up(self, now: float) -> list[Decided | BeepEnded]:
        """Count audio that should have arrived by ``now`` and did not as silence.

        Call it only when the far end really sent nothing meanwhile: frames that are merely late (a busy
        media clock) must not be counted twice, once as silence now and again when they arrive."""
        events: list[Decided | BeepEnded] = []
        missing = int((now - self.started - _LATENESS) / FRAME_SECONDS) - self.frames
        for _ in range(max(0, missing)):
            if self.done:
                break
            self.filled += 1
            events += self._analyse(_SILENT_FRAME, now, False)
        return events + self._greeting_over(now)

    def _greeting_over(self, now: float) -> list[BeepEnded]:
        """No beep, but the greeting has ended (or gone on far too long): the message may start."""
        events: list[BeepEnded] = []
        if not self.done and self.decision is not None and self.decision.machine:
            quiet = self._quiet_since is not None and (self.frames - self._quiet_since) * FRAME_SECONDS >= self.beep_wait
            if quiet or (self.frames - self._decided_frame) * FRAME_SECONDS >= MAX_GREETING:
                self.beep_end = BeepEnded(now, heard=False)
                events.append(self.beep_end)
        return events

    def _analyse(self, frame: np.ndarray, now: float, voiced: bool | None) -> list[Decided | BeepEnded]:
        self.frames += 1
        if self.done:
            return []
        if self.decision is None:
            feed = self.detector.feed
            result = feed(frame, voiced=voiced) if voiced is not None and isinstance(self.detector, CadenceDetector) else feed(frame)
            # The beep may start while the detector is still making up its mind: listen from the start.
            self.beep.feed(frame)
            if result is None:
                return []
            # NOTSURE is handled as a person: hanging up on a person is the costly mistake.
            self.decision = Decided(result.verdict is AmdVerdict.MACHINE, result, now)
            self._decided_frame = self.frames
            if self.decision.machine and self.listen_for_beep and self.beep.ended_at is not None:
                self.beep_end = BeepEnded(now, heard=True)
                return [self.decision, self.beep_end]
            return [self.decision]
        if self.beep.feed(frame):
            self.beep_end = BeepEnded(now, heard=True)
            return [self.beep_end]
        quiet = not voiced if voiced is not None else frame_level(frame) < _QUIET_LEVEL
        if not quiet:
            self._quiet_since = None
        elif self._quiet_since is None:
            self._quiet_since = self.frames - 1
        return []

    def next_deadline(self) -> float:
        """When to call :meth:`catch_up` if no frame arrives before."""
        return self.started + (self.frames + 1) * FRAME_SECONDS + _LATENESS
