"""Call-progress tones per country (ringback, busy, congestion, SIT, dial), as 20 ms frame sources.

Cadences follow ITU-T E.180 and its national annexes (facts, not copied data): each tone is a list of
(frequencies in Hz, milliseconds on, milliseconds off) segments that repeat. Levels are -13 dBFS per
frequency, the usual call-progress level. ``EU`` is the CEPT recommendation (425 Hz) most of Europe uses.
"""

from __future__ import annotations

import numpy as np

from ._audio import FRAME_SAMPLES, SAMPLE_RATE
from ._errors import MediaUsageError

__all__ = ["TONES", "ToneSource", "tone_samples"]

Segment = tuple[tuple[float, ...], int, int]

_SIT_ITU: list[Segment] = [((950.0,), 330, 30), ((1400.0,), 330, 30), ((1800.0,), 330, 1000)]
_SIT_US: list[Segment] = [((913.8,), 274, 0), ((1370.6,), 274, 0), ((1776.7,), 380, 1000)]

TONES: dict[str, dict[str, list[Segment]]] = {
    "US": {
        "dial": [((350.0, 440.0), 1000, 0)],
        "ringback": [((440.0, 480.0), 2000, 4000)],
        "busy": [((480.0, 620.0), 500, 500)],
        "congestion": [((480.0, 620.0), 250, 250)],
        "sit": _SIT_US,
    },
    "UK": {
        "dial": [((350.0, 450.0), 1000, 0)],
        "ringback": [((400.0, 450.0), 400, 200), ((400.0, 450.0), 400, 2000)],
        "busy": [((400.0,), 375, 375)],
        "congestion": [((400.0,), 400, 350), ((400.0,), 225, 525)],
        "sit": _SIT_ITU,
    },
    "EU": {
        "dial": [((425.0,), 1000, 0)],
        "ringback": [((425.0,), 1000, 4000)],
        "busy": [((425.0,), 500, 500)],
        "congestion": [((425.0,), 250, 250)],
        "sit": _SIT_ITU,
    },
    "ES": {
        "dial": [((425.0,), 1000, 0)],
        "ringback": [((425.0,), 1500, 3000)],
        "busy": [((425.0,), 200, 200)],
        "congestion": [((425.0,), 200, 200), ((425.0,), 200, 200), ((425.0,), 200, 600)],
        "sit": _SIT_ITU,
    },
}


def tone_samples(country: str, tone: str, *, level_dbfs: float = -13.0) -> np.ndarray:
    """One full cadence cycle of a tone as int16 samples."""
    try:
        segments = TONES[country.upper()][tone]
    except KeyError:
        raise MediaUsageError(
            f"no {tone!r} tone for country {country!r}; known: "
            + ", ".join(f"{c}: {'/'.join(sorted(t))}" for c, t in sorted(TONES.items()))
        ) from None
    amplitude = 32767 * 10 ** (level_dbfs / 20)
    parts = []
    for freqs, on_ms, off_ms in segments:
        t = np.arange(SAMPLE_RATE * on_ms // 1000) / SAMPLE_RATE
        wave = sum(amplitude * np.sin(2 * np.pi * f * t) for f in freqs)
        parts.append(np.asarray(wave))
        parts.append(np.zeros(SAMPLE_RATE * off_ms // 1000))
    return np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype(np.int16)


class ToneSource:
    """A looping tone as a :class:`Source`; ``repeat=False`` plays one cycle (SIT) then ends."""

    def __init__(self, country: str, tone: str, *, repeat: bool = True, level_dbfs: float = -13.0) -> None:
        self._cycle = tone_samples(country, tone, level_dbfs=level_dbfs)
        self._repeat = repeat
        self._position = 0

    def read_frame(self) -> np.ndarray | None:
        cycle = self._cycle
        if self._position >= len(cycle):
            if not self._repeat:
                return None
            self._position = 0
        end = self._position + FRAME_SAMPLES
        if end <= len(cycle):
            frame = cycle[self._position : end].copy()
            self._position = end
            return frame
        head = cycle[self._position :]
        self._position = end - len(cycle)
        tail = cycle[: self._position] if self._repeat else np.zeros(end - len(cycle), dtype=np.int16)
        if not self._repeat:
            self._position = len(cycle)
        return np.concatenate([head, tail])
