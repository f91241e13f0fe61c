"""Login rate limiting, sans-IO (time is an argument).

Rules, and why:

========================  ============================================================================
key                       rule
========================  ============================================================================
(source, user)            after ``free_failures`` failures, each further attempt must wait
                          ``base_delay * 2**(extra failures)`` seconds (capped at ``max_delay``).
                          A success clears it. This is what slows a guesser down, and because the
                          key includes the source, a stranger elsewhere cannot lock the real user out.
source                    more than ``source_limit`` failures within ``window`` seconds (over all user
                          names) blocks that source for ``window`` seconds: stops user-name spraying.
========================  ============================================================================

Memory is bounded: at most ``max_entries`` keys are kept (oldest dropped first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Backoff:
    failures: int = 0
    blocked_until: float = 0.0
    last: float = 0.0


class LoginRateLimiter:
    def __init__(
        self,
        *,
        free_failures: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        source_limit: int = 50,
        window: float = 300.0,
        max_entries: int = 10_000,
    ) -> None:
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.source_limit = source_limit
        self.window = window
        self.max_entries = max_entries
        self._pairs: OrderedDict[tuple[str, str], _Backoff] = OrderedDict()
        self._sources: OrderedDict[str, list[float]] = OrderedDict()
        self.refused = 0

    def check(self, source: str, user: str, now: float) -> float:
        """Seconds the caller must wait before this attempt may be tried; 0.0 = go ahead."""
        wait = 0.0
        pair = self._pairs.get((source, user))
        if pair is not None:
            wait = max(wait, pair.blocked_until - now)
        failures = self._recent(source, now)
        if len(failures) >= self.source_limit:
            wait = max(wait, failures[0] + self.window - now)
        if wait > 0:
            self.refused += 1
            return wait
        return 0.0

    def failure(self, source: str, user: str, now: float) -> None:
        pair = self._pairs.pop((source, user), None) or _Backoff()
        pair.failures += 1
        pair.last = now
        extra = pair.failures - self.free_failures
        if extra >= 0:
            pair.blocked_until = now + min(self.max_delay, self.base_delay * 2**extra)
        self._pairs[(source, user)] = pair
        failures = self._sources.pop(source, None) or []
        failures.append(now)
        self._sources[source] = failures
        self._trim()

    def success(self, source: str, user: str) -> None:
        self._pairs.pop((source, user), None)

    def _recent(self, source: str, now: float) -> list[float]:
        failures = self._sources.get(source)
        if not failures:
            return []
        while failures and failures[0] <= now - self.window:
            failures.pop(0)
        return failures

    def _trim(self) -> None:
        while len(self._pairs) > self.max_entries:
            self._pairs.popitem(last=False)
        while len(self._sources) > self.max_entries:
            self._sources.popitem(last=False)
        for failures in self._sources.values():
            # one source never holds more than it needs to decide
            del failures[: max(0, len(failures) - self.source_limit)]

    def statistics(self) -> dict[str, int]:
        return {"tracked_pairs": len(self._pairs), "tracked_sources": len(self._sources), "refused": self.refused}
