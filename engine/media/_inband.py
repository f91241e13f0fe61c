"""In-band DTMF detection (ITU-T Q.24 limits) with numpy, sans-IO.

Why not the classic 102-sample Goertzel alone: a block that short cannot tell a tone 1.5% off (must be
accepted) from one 3.5% off (must be rejected): the main lobe is ~160 Hz wide. This detector measures
each tone's frequency instead. Every 5 ms it takes an 80-sample Hann-windowed DFT at the eight DTMF
frequencies and their second harmonics; the phase advance of a bin between two windows 5 ms apart gives
the tone's actual frequency (unambiguous within ±100 Hz) to about a hertz. A window is a candidate
digit when:

* the strongest row and column tones are each above ``min_level_dbfs``;
* twist: the column tone is at most ``normal_twist_db`` (8 dB) louder and at most ``reverse_twist_db``
  (4 dB) quieter than the row tone;
* both measured frequencies are within ``frequency_tolerance`` (2.5%, between Q.24's ±1.5% accept and
  ±3.5% reject) of nominal;
* the two tones hold at least ``min_tone_fraction`` of the window's energy and neither has a second
  harmonic within 10 dB of it (speech, music and noise fail these: talk-off protection).

A digit starts after five consecutive candidate windows (a 40 ms tone always gives five, a 30 ms one
never does) and ends after four windows without it; it is reported once, at its end, with its duration.
"""

from __future__ import annotations

import numpy as np

from ._dtmf import COLUMN_FREQUENCIES, ROW_FREQUENCIES, DtmfEvent, DtmfMethod, Direction

__all__ = ["InbandDtmfDetector"]

_KEYPAD = ("123A", "456B", "789C", "*0#D")
_WINDOW = 80
_HOP = 40
_RATE = 8000
_FUNDAMENTALS = np.array(ROW_FREQUENCIES + COLUMN_FREQUENCIES)
_FREQS = np.concatenate([_FUNDAMENTALS, 2 * _FUNDAMENTALS])
_HANN = np.hanning(_WINDOW + 2)[1:-1]
_BASIS = (np.exp(-2j * np.pi * np.outer(np.arange(_WINDOW), _FREQS) / _RATE) * _HANN[:, None]).astype(np.complex128)
# |X|^2 / windowed energy for a pure tone exactly on a bin; divides it out so a pure tone reads 1.0.
_PURE_TONE_RATIO = (_HANN.sum() ** 2) / (2 * (_HANN**2).sum())
_AMPLITUDE_SCALE = 2.0 / _HANN.sum()
_EXPECTED_ADVANCE = np.exp(-2j * np.pi * _FUNDAMENTALS * _HOP / _RATE)


class InbandDtmfDetector:
    """Feed 8 kHz int16 audio (any chunk size); get :class:`DtmfEvent` objects as digits end."""

    def __init__(
        self,
        *,
        min_level_dbfs: float = -40.0,
        normal_twist_db: float = 8.0,
        reverse_twist_db: float = 4.0,
        frequency_tolerance: float = 0.025,
        min_tone_fraction: float = 0.8,
        start_windows: int = 5,
        end_windows: int = 4,
    ) -> None:
        self.min_amplitude = 32767 * 10 ** (min_level_dbfs / 20)
        self.max_col_over_row = 10 ** (normal_twist_db / 10)
        self.max_row_over_col = 10 ** (reverse_twist_db / 10)
        self.frequency_tolerance = frequency_tolerance
        self.min_tone_fraction = min_tone_fraction
        self.start_windows = start_windows
        self.end_windows = end_windows
        self._buffer = np.zeros(0, dtype=np.float64)
        self._previous: np.ndarray | None = None  # spectrum of the previous window
        self._candidate: str | None = None
        self._run = 0  # consecutive windows with the candidate
        self._digit: str | None = None  # the digit currently sounding (started)
        self._digit_windows = 0
        self._misses = 0

    def feed(self, samples: np.ndarray) -> list[DtmfEvent]:
        buf = np.concatenate([self._buffer, np.asarray(samples, dtype=np.float64)])
        count = (len(buf) - _WINDOW) // _HOP + 1 if len(buf) >= _WINDOW else 0
        events: list[DtmfEvent] = []
        if count:
            frames = np.lib.stride_tricks.sliding_window_view(buf, _WINDOW)[::_HOP][:count]
            spectra = frames @ _BASIS
            energies = ((frames * _HANN) ** 2).sum(axis=1)
            for spectrum, energy in zip(spectra, energies):
                digit = self._classify(spectrum, energy, self._previous)
                self._previous = spectrum
                event = self._step(digit)
                if event is not None:
                    events.append(event)
            buf = buf[count * _HOP :]
        self._buffer = buf
        return events

    def _classify(self, spectrum: np.ndarray, energy: float, previous: np.ndarray | None) -> str | None:
        if previous is None or energy <= 0.0:
            return None
        power = np.abs(spectrum) ** 2
        row = int(np.argmax(power[:4]))
        col = 4 + int(np.argmax(power[4:8]))
        p_row, p_col = power[row], power[col]
        threshold = (self.min_amplitude / _AMPLITUDE_SCALE) ** 2
        if p_row < threshold or p_col < threshold:
            return None
        if p_col > p_row * self.max_col_over_row or p_row > p_col * self.max_row_over_col:
            return None
        if (p_row + p_col) / (energy * _PURE_TONE_RATIO) < self.min_tone_fraction:
            return None
        # The row tone's 2nd harmonic bin can sit inside the column tone's main lobe (2 x 697 Hz is
        # 58 Hz from 1336 Hz): only check it where the column tone does not leak into it.
        row_harmonic_clear = abs(2 * _FUNDAMENTALS[row] - _FUNDAMENTALS[col]) > 200.0
        if (row_harmonic_clear and power[8 + row] * 10 > p_row) or power[8 + col] * 10 > p_col:
            return None
        for k in (row, col):
            advance = spectrum[k] * np.conj(previous[k]) * _EXPECTED_ADVANCE[k]
            offset_hz = np.angle(advance) * _RATE / (2 * np.pi * _HOP)
            if abs(offset_hz) > self.frequency_tolerance * _FUNDAMENTALS[k]:
                return None
        return _KEYPAD[row][col - 4]

    def _step(self, digit: str | None) -> DtmfEvent | None:
        if digit is not None and digit == self._candidate:
            self._run += 1
        else:
            self._candidate = digit
            self._run = 1 if digit is not None else 0
        if self._digit is not None:
            if digit == self._digit:
                self._digit_windows += 1
                self._misses = 0
                return None
            self._misses += 1
            if self._misses < self.end_windows:
                return None
            ended = self._digit
            duration = (self._digit_windows - 1) * _HOP + _WINDOW + _HOP  # the pair of windows spans 120 samples
            self._digit = None
            self._misses = 0
            event = DtmfEvent(ended, round(duration * 1000 / _RATE), Direction.RECEIVED, DtmfMethod.INBAND)
            if digit is not None and self._run >= self.start_windows:
                self._start(digit)
            return event
        if digit is not None and self._run >= self.start_windows:
            self._start(digit)
        return None

    def _start(self, digit: str) -> None:
        self._digit = digit
        self._digit_windows = self._run
        self._misses = 0

    def flush(self) -> list[DtmfEvent]:
        """End of stream: report a digit still sounding."""
        events = []
        for _ in range(self.end_windows):
            event = self._step(None)
            if event is not None:
                events.append(event)
        return events
