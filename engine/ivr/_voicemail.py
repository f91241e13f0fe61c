"""Leaving a voicemail: greeting, beep, record with a maximum length and a silence cut-off. Sans-IO.

The media layer plays prompts, writes the caller's audio to a file while told to record, and feeds
the same audio here (16-bit little-endian linear PCM, any frame size) with the time. This object
decides when to stop and how much of the recording to keep (trailing silence is cut).

States::

    greeting --played--> beep --played--> recording --(max length | silence | "#" | hang-up)--> done

A caller who hangs up during the greeting or the beep leaves nothing (``VoicemailDiscarded``); a
recording shorter than ``min_seconds`` of sound is discarded too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._commands import FlowCommand, Hangup, Play, StopPlayback
from ._nodes import MAX_PROMPT_SECONDS

__all__ = ["StartRecording", "StopRecording", "VoicemailDiscarded", "VoicemailRecorded", "VoicemailSession"]


@dataclass(frozen=True)
class StartRecording(FlowCommand):
    box: str
    max_seconds: float


@dataclass(frozen=True)
class StopRecording(FlowCommand):
    """Stop writing; keep only the first ``keep_seconds`` of what was written (trailing silence cut)."""

    keep_seconds: float


@dataclass(frozen=True)
class VoicemailRecorded(FlowCommand):
    """Store and notify (event; e-mail when the email plugin is present). ``reason``: max-length,
    silence, key, hangup."""

    box: str
    caller: str
    seconds: float
    reason: str


@dataclass(frozen=True)
class VoicemailDiscarded(FlowCommand):
    box: str
    caller: str
    reason: str  # hangup-before-beep, too-short


_TRANSITIONS = {
    "greeting": {"beep", "done"},
    "beep": {"recording", "done"},
    "recording": {"done"},
    "done": set(),
}


class VoicemailSession:
    def __init__(self, box: str, *, caller: str, greeting: str | None = None, beep: str = "beep",
                 max_seconds: float = 120.0, silence_seconds: float = 5.0, silence_dbfs: float = -45.0,
                 min_seconds: float = 1.0, stop_key: str = "#") -> None:
        if max_seconds <= 0 or silence_seconds <= 0 or min_seconds < 0:
            raise ValueError("max_seconds and silence_seconds must be > 0, min_seconds >= 0")
        self.box = box
        self.caller = caller
        self.greeting = greeting or f"vm-greeting-{box}"
        self.beep = beep
        self.max_seconds = max_seconds
        self.silence_seconds = silence_seconds
        self.silence_level = 32768.0 * 10 ** (silence_dbfs / 20)
        self.min_seconds = min_seconds
        self.stop_key = stop_key
        self.state = "greeting"
        self._timer: float | None = None
        self._started_at = 0.0
        self._audio_seconds = 0.0       # audio received while recording
        self._last_sound = 0.0          # end of the last frame louder than the threshold
        self._out: list[FlowCommand] = []

    def _move(self, new: str) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"voicemail: {self.state} -> {new} not allowed")
        self.state = new

    def start(self, now: float) -> list[FlowCommand]:
        self._out.append(Play(prompt=self.greeting, barge_in=True))
        self._timer = now + MAX_PROMPT_SECONDS
        return self._flush()

    def playback_done(self, now: float) -> list[FlowCommand]:
        if self.state == "greeting":
            self._move("beep")
            self._out.append(Play(prompt=self.beep, barge_in=False))
            self._timer = now + MAX_PROMPT_SECONDS
        elif self.state == "beep":
            self._move("recording")
            self._started_at = now
            self._out.append(StartRecording(self.box, self.max_seconds))
            self._timer = now + self.max_seconds
        return self._flush()

    def digit(self, digit: str, now: float) -> list[FlowCommand]:
        if self.state == "greeting":  # any key skips the greeting
            self._out.append(StopPlayback())
            return self.playback_done(now)
        if self.state == "recording" and digit == self.stop_key:
            self._finish("key", now)
        return self._flush()

    def audio(self, pcm: bytes, now: float) -> list[FlowCommand]:
        """A frame of the caller's audio (16-bit LE PCM at ``rate`` 8000 Hz)."""
        if self.state != "recording" or not pcm:
            return self._flush()
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
        if samples.size == 0:
            return self._flush()
        self._audio_seconds += samples.size / 8000.0
        rms = math.sqrt(float(np.mean(samples * samples)))
        if rms >= self.silence_level:
            self._last_sound = self._audio_seconds
        elif self._audio_seconds - self._last_sound >= self.silence_seconds:
            self._finish("silence", now)
        return self._flush()

    def hangup(self, now: float) -> list[FlowCommand]:
        if self.state in ("greeting", "beep"):
            self._move("done")
            self._out.append(VoicemailDiscarded(self.box, self.caller, "hangup-before-beep"))
        elif self.state == "recording":
            self._finish("hangup", now, hang_up=False)
        return self._flush()

    def next_timer(self) -> float | None:
        return None if self.state == "done" else self._timer

    def handle_timer(self, now: float) -> list[FlowCommand]:
        if self._timer is None or now < self._timer or self.state == "done":
            return self._flush()
        self._timer = None
        if self.state == "recording":
            self._finish("max-length", now)
            return self._flush()
        return self.playback_done(now)  # a prompt that never reported its end

    def _finish(self, reason: str, now: float, *, hang_up: bool = True) -> None:
        self._move("done")
        self._timer = None
        recorded = min(self.max_seconds, max(self._audio_seconds, 0.0))
        keep = recorded if reason == "max-length" else min(recorded, self._last_sound + 0.5)
        self._out.append(StopRecording(keep))
        if self._last_sound < self.min_seconds:
            self._out.append(VoicemailDiscarded(self.box, self.caller, "too-short"))
        else:
            self._out.append(VoicemailRecorded(self.box, self.caller, keep, reason))
        if hang_up:
            self._out.append(Hangup("voicemail"))

    def _flush(self) -> list[FlowCommand]:
        out, self._out = self._out, []
        return out
