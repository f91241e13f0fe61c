"""The audio model: 20 ms frames of 8 kHz signed 16-bit mono PCM, as numpy int16 arrays.

Why numpy arrays and not bytes: every consumer (mixer, detectors, recorder, resampler, G.711 tables)
does arithmetic on samples, and an int16 array of 160 samples converts to and from bytes for free
(``frame.tobytes()``, ``np.frombuffer(data, np.int16)``), native-endian. A frame is never shared
mutable state: producers hand out a fresh array (or one they will not touch again).

A :class:`Source` is pulled once per 20 ms tick by the engine's media clock; a :class:`Sink` is pushed
once per tick. Both are tiny protocols so a voice modem, a headset, a prompt player or a mixer leg can
be any object with the right method.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "SAMPLE_RATE",
    "FRAME_SAMPLES",
    "FRAME_SECONDS",
    "Source",
    "Sink",
    "silence",
    "Resampler",
    "resample",
    "to_frames",
]

SAMPLE_RATE = 8000
FRAME_SECONDS = 0.02
FRAME_SAMPLES = 160


@runtime_checkable
class Source(Protocol):
    """Produces audio. ``read_frame`` returns 160 int16 samples, or None when it has finished."""

    def read_frame(self) -> np.ndarray | None: ...


@runtime_checkable
class Sink(Protocol):
    """Consumes audio: ``write_frame`` gets 160 int16 samples; it must not block (hand off if slow)."""

    def write_frame(self, frame: np.ndarray) -> None: ...


def silence(samples: int = FRAME_SAMPLES) -> np.ndarray:
    return np.zeros(samples, dtype=np.int16)


def to_frames(samples: np.ndarray) -> list[np.ndarray]:
    """Cut audio into 160-sample frames, padding the last one with silence."""
    samples = np.asarray(samples, dtype=np.int16)
    pad = -len(samples) % FRAME_SAMPLES
    if pad:
        samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
    return [samples[i : i + FRAME_SAMPLES] for i in range(0, len(samples), FRAME_SAMPLES)]


class Resampler:
    """Streaming rational-ratio resampler: polyphase windowed-sinc (Kaiser) low-pass, numpy.

    ``process(chunk)`` takes int16 (or float) samples at ``input_rate`` and returns int16 at
    ``output_rate``; state carries across calls, so chunk boundaries do not click. The low-pass sits at
    90% of the lower Nyquist frequency with ~80 dB stop band, so DTMF (up to 1,633 Hz) goes 48 kHz ->
    8 kHz -> 48 kHz untouched.
    """

    def __init__(self, input_rate: int, output_rate: int, *, zero_crossings: int = 16) -> None:
        if input_rate <= 0 or output_rate <= 0:
            raise ValueError("sample rates must be positive")
        ratio = Fraction(output_rate, input_rate)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.input_rate, self.output_rate = input_rate, output_rate
        cutoff = 0.9 * 0.5 * min(1.0, self.up / self.down)  # cycles per input sample
        half = int(math.ceil(zero_crossings / (2 * cutoff)))  # taps each side, in input samples
        self.taps = 2 * half
        # Phase p of the bank interpolates at p/up input samples past the window's centre tap (half - 1).
        phases = np.arange(self.up)[:, None] / self.up
        offsets = np.arange(self.taps)[None, :] - half + phases  # in input samples
        beta = 8.0
        window = np.i0(beta * np.sqrt(np.clip(1 - (offsets / half) ** 2, 0, 1))) / np.i0(beta)
        self._bank = (2 * cutoff * np.sinc(2 * cutoff * offsets) * window)[:, ::-1].copy()
        self._history = np.zeros(self.taps - 1)
        # Next output's position in up-sampled units relative to the history start; starting at
        # ``half`` input samples in cancels the filter delay, so output m is input time m * down / up.
        self._position = half * self.up
        self._half = half

    def process(self, samples: np.ndarray) -> np.ndarray:
        x = np.concatenate([self._history, np.asarray(samples, dtype=np.float64)])
        if self.up == self.down:
            out = x[self.taps - 1 :]
            self._history = x[len(x) - (self.taps - 1) :]
            return np.clip(np.round(out), -32768, 32767).astype(np.int16)
        # Output m uses input index i = pos // up (the newest sample it needs) and phase pos % up.
        available = len(x) - self.taps + 1  # input positions with a full history
        start = self._position
        end_pos = available * self.up
        positions = np.arange(start, end_pos, self.down)
        if len(positions) == 0:
            consumed = max(len(x) - (self.taps - 1), 0)
            self._history = x[consumed:]
            self._position = start - consumed * self.up
            return np.zeros(0, dtype=np.int16)
        base = positions // self.up
        phase = positions % self.up
        windows = np.lib.stride_tricks.sliding_window_view(x, self.taps)[base]
        out = np.einsum("ij,ij->i", windows, self._bank[phase])
        next_position = positions[-1] + self.down
        consumed = len(x) - (self.taps - 1)
        self._history = x[consumed:]
        self._position = next_position - consumed * self.up
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)

    def flush(self) -> np.ndarray:
        """Push the filter's tail out (call once at the end of a one-shot conversion)."""
        return self.process(np.zeros(2 * self._half + 1))


def resample(samples: np.ndarray, input_rate: int, output_rate: int) -> np.ndarray:
    """One-shot resampling of a whole clip, delay-compensated so output sample 0 is input sample 0."""
    if input_rate == output_rate:
        return np.asarray(samples, dtype=np.int16).copy()
    r = Resampler(input_rate, output_rate)
    out = np.concatenate([r.process(samples), r.flush()])
    return out[: int(round(len(samples) * output_rate / input_rate))]
