"""A heap of callbacks due at given times (sans-IO: the caller supplies ``now``).

SIP needs thousands of short timers at once (retransmissions, transaction lifetimes, ring timeouts,
re-registrations). One heap driven by one trio task is far cheaper than a task per timer, and it keeps
the protocol code synchronous and testable on a virtual clock.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable

__all__ = ["Scheduler", "TimerHandle"]

log = logging.getLogger("centralita.sip.timers")


def _noop(now: float) -> None:
    pass


class TimerHandle:
    __slots__ = ("when", "callback", "cancelled", "scheduler")

    def __init__(self, when: float, callback: Callable[[float], None], scheduler: Scheduler | None = None) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False
        self.scheduler = scheduler

    def cancel(self) -> None:
        # The heap forgets cancelled entries lazily (when they come due): drop the callback now so a
        # cancelled timer does not keep its transaction or call alive until then.
        if self.cancelled:
            return
        self.cancelled = True
        self.callback = _noop
        if self.scheduler is not None:
            self.scheduler._cancelled_one()


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._cancelled = 0
        #: called whenever a timer earlier than every other one is added (to wake the driving task)
        self.on_earlier: Callable[[], None] = lambda: None

    def call_at(self, when: float, callback: Callable[[float], None]) -> TimerHandle:
        handle = TimerHandle(when, callback, self)
        earlier = not self._heap or when < self._heap[0][0]
        heapq.heappush(self._heap, (when, next(self._seq), handle))
        if earlier:
            self.on_earlier()
        return handle

    def _cancelled_one(self) -> None:
        # Long timers (transaction lifetimes) are mostly cancelled early; rebuild the heap when they
        # make up most of it, so memory follows the live timers and not the call rate.
        self._cancelled += 1
        if self._cancelled > 1024 and self._cancelled * 2 > len(self._heap):
            self._heap = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def next_timer(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled = max(0, self._cancelled - 1)
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> int:
        """Run every callback due at ``now``; returns how many ran. A failing callback is logged."""
        ran = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, handle = heapq.heappop(heap)
            if handle.cancelled:
                self._cancelled = max(0, self._cancelled - 1)
                continue
            callback = handle.callback
            handle.cancelled = True
            handle.callback = _noop
            ran += 1
            try:
                callback(now)
            except Exception:
                log.exception("sip timer callback %r failed", handle.callback)
        return ran

    def __len__(self) -> int:
        return sum(1 for _, _, h in self._heap if not h.cancelled)
