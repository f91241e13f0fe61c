"""The trio shell around the sans-IO :class:`Router`: one task that fires its timers on time.

Inputs stay synchronous (trio runs one task at a time, so nothing interleaves inside a call): the
engine calls ``service.enqueue(...)`` etc. without ``now``; the service adds the time, hands the
resulting events to ``publish`` and wakes its timer task in case the next deadline moved earlier.

The clock is Unix time by default (calling windows, business hours and snapshots are in Unix time);
tests pass ``clock=trio.current_time`` to run on trio's virtual clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import trio

from ._events import RouterEvent
from ._router import Router

__all__ = ["RoutingService"]

_INPUTS = frozenset({
    "enqueue", "accept", "reject", "end", "login", "logout", "pause", "unpause", "set_reachable",
    "wrapup_done", "request_callback", "cancel_callback", "callback_result", "transfer", "configure",
    "restore",
})


class RoutingService:
    """``publish(events)`` must not block (hand them to the bus with ``send_nowait``)."""

    def __init__(self, router: Router, publish: Callable[[list[RouterEvent]], None], *,
                 clock: Callable[[], float] = time.time) -> None:
        self.router = router
        self._publish = publish
        self._clock = clock
        self._wakeup = trio.Event()
        self._closed = False
        self.timer_runs = 0

    def __getattr__(self, name: str) -> Any:
        if name not in _INPUTS:
            raise AttributeError(name)
        method = getattr(self.router, name)

        def call(*args: Any, **kwargs: Any) -> list[RouterEvent]:
            events = method(*args, now=self._clock(), **kwargs)
            self._deliver(events)
            return events

        return call

    def _deliver(self, events: list[RouterEvent]) -> None:
        if events:
            self._publish(events)
        self._wakeup.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while not self._closed:
            self._wakeup = trio.Event()
            deadline = self.router.next_timer()
            now = self._clock()
            if deadline is not None and deadline <= now:
                self.timer_runs += 1
                self._deliver(self.router.handle_timer(now))
                continue
            with trio.move_on_after(max(0.0, deadline - now) if deadline is not None else float("inf")):
                await self._wakeup.wait()

    async def aclose(self) -> None:
        self._closed = True
        self._wakeup.set()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> dict[str, int]:
        return {**self.router.statistics(), "timer_runs": self.timer_runs}
