"""Online estimates the predictive pacer plans with.

Two empirical distributions, both exponentially forgetting so that a drifting day (answer rate falling
from 40% to 15%) is tracked within about a thousand calls (the benchmark showed no clear difference
between 300 and 1000; 1000 gives steadier estimates when only 15% of calls are answered):

* :class:`AnswerModel`: for every call that rang, when (seconds after launch) it ended and how: live
  answer, machine answer, or no answer/failure. From it: the chance that a call still ringing after
  ``e`` seconds is answered live within the next ``h`` seconds.
* :class:`HandleModel`: how long an agent stays busy from connect to ready again (talk + wrap-up). From
  it: the chance that an agent busy for ``e`` seconds is ready within ``h`` more seconds.

Forgetting uses growing weights (the n-th observation weighs ``exp(n / window)``) instead of decaying
every bin on every observation; the arrays are rescaled when the weights grow large. Pure numpy, no I/O.
"""

from __future__ import annotations

import math

import numpy as np

_RESCALE_AT = 1e150


class _DecayingHistogram:
    """Weighted counts in fixed-width bins where recent observations count more."""

    def __init__(self, bins: int, width: float, window: float) -> None:
        self.width = width
        self.counts = np.zeros((3, bins))  # row 0: all endings, 1: live answers, 2: machine answers
        self.window = window
        self._weight = 1.0
        self._step = math.exp(1.0 / window)
        self.total = 0.0
        self.value_sum = 0.0

    def add(self, value: float, row: int | None, weight: float = 1.0) -> None:
        index = min(int(value / self.width), self.counts.shape[1] - 1)
        w = self._weight * weight
        self.counts[0, index] += w
        if row is not None:
            self.counts[row, index] += w
        self.total += w
        self.value_sum += w * value
        self._weight *= self._step
        if self._weight > _RESCALE_AT:
            self.counts /= self._weight
            self.total /= self._weight
            self.value_sum /= self._weight
            self._weight = 1.0

    @property
    def mean(self) -> float:
        return self.value_sum / self.total if self.total else 0.0


class AnswerModel:
    """Answer probability and ring-time distribution, learned from finished call attempts."""

    def __init__(
        self,
        *,
        ring_timeout: float,
        prior_answer_rate: float = 0.3,
        prior_weight: float = 20.0,
        window: float = 1000.0,
    ) -> None:
        self.ring_timeout = ring_timeout
        self._width = 1.0
        bins = int(math.ceil(ring_timeout / self._width)) + 2
        self._hist = _DecayingHistogram(bins, self._width, window)
        # A weak prior: answers spread evenly over 4-20 s, the rest ring out.
        answer_bins = [b for b in range(bins) if 4 <= b * self._width < min(20.0, ring_timeout)] or [0]
        for b in answer_bins:
            self._hist.add((b + 0.5) * self._width, 1, prior_weight * prior_answer_rate / len(answer_bins))
        self._hist.add(ring_timeout, None, prior_weight * (1 - prior_answer_rate))
        self._dirty = True
        self._grid = np.arange(bins + 1) * self._width
        self.observations = 0

    def record(self, elapsed: float, outcome: str) -> None:
        """``outcome``: ``"live"``, ``"machine"`` or ``"none"`` (rang out, busy, failed)."""
        row = {"live": 1, "machine": 2}.get(outcome)
        self._hist.add(max(0.0, elapsed), row)
        self.observations += 1
        self._dirty = True

    def _refresh(self) -> None:
        if not self._dirty:
            return
        counts = self._hist.counts
        total = counts[0].sum()
        self._cum_end = np.concatenate(([0.0], np.cumsum(counts[0]) / total))
        self._cum_live = np.concatenate(([0.0], np.cumsum(counts[1]) / total))
        self._cum_answer = np.concatenate(([0.0], np.cumsum(counts[1] + counts[2]) / total))
        self._dirty = False

    @property
    def live_rate(self) -> float:
        self._refresh()
        return float(self._cum_live[-1])

    @property
    def answer_rate(self) -> float:
        self._refresh()
        return float(self._cum_answer[-1])

    def live_within(self, elapsed: np.ndarray, horizons: np.ndarray) -> np.ndarray:
        """P(live answer in (e, e+h] | still ringing at e), shape ``(len(elapsed), len(horizons))``."""
        self._refresh()
        e = np.asarray(elapsed, dtype=float)[:, None]
        grid = self._grid
        base_live = np.interp(e, grid, self._cum_live)
        alive = 1.0 - np.interp(e, grid, self._cum_end)
        later = np.interp(e + horizons[None, :], grid, self._cum_live)
        return np.clip((later - base_live) / np.maximum(alive, 1e-3), 0.0, 1.0)

    def live_eventually(self, elapsed: np.ndarray) -> np.ndarray:
        return self.live_within(elapsed, np.array([self.ring_timeout + self._width]))[:, 0]


class HandleModel:
    """Distribution of agent busy time (connect to ready), with an exponential tail."""

    def __init__(self, *, prior_mean: float = 180.0, prior_weight: float = 10.0, window: float = 200.0,
                 width: float = 5.0, horizon: float = 3600.0) -> None:
        bins = int(horizon / width) + 1
        self._hist = _DecayingHistogram(bins, width, window)
        self._width = width
        self._grid = np.arange(bins + 1) * width
        # prior: an exponential distribution with the configured mean
        mass = np.exp(-self._grid[:-1] / prior_mean) - np.exp(-self._grid[1:] / prior_mean)
        self._hist.counts[0] += prior_weight * mass / mass.sum()
        self._hist.total += prior_weight
        self._hist.value_sum += prior_weight * prior_mean
        self._dirty = True
        self.observations = 0

    def record(self, duration: float) -> None:
        self._hist.add(max(0.0, duration), None)
        self.observations += 1
        self._dirty = True

    @property
    def mean(self) -> float:
        return self._hist.mean

    def _refresh(self) -> None:
        if self._dirty:
            counts = self._hist.counts[0]
            self._cdf = np.concatenate(([0.0], np.cumsum(counts) / counts.sum()))
            self._dirty = False

    def ready_within(self, elapsed: np.ndarray, horizons: np.ndarray) -> np.ndarray:
        """P(ready by e+h | busy at e), shape ``(len(elapsed), len(horizons))``."""
        self._refresh()
        e = np.asarray(elapsed, dtype=float)[:, None]
        before = np.interp(e, self._grid, self._cdf)
        after = np.interp(e + horizons[None, :], self._grid, self._cdf)
        survive = 1.0 - before
        empirical = (after - before) / np.maximum(survive, 1e-9)
        # Past what the data shows, fall back to a memoryless tail with the observed mean.
        tail = 1.0 - np.exp(-horizons[None, :] / max(self.mean, 1.0))
        return np.where(survive > 0.02, np.clip(empirical, 0.0, 1.0), tail)
