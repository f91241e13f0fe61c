"""A typed event bus with bounded fan-out.

Publishing never blocks and never fails: each subscriber has its own bounded buffer, and a subscriber
that cannot keep up loses events (counted in :meth:`EventBus.statistics`) instead of stalling the core.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import trio

from ._events import Event

log = logging.getLogger("centralita.bus")


@dataclass
class _Subscriber:
    name: str
    send: trio.MemorySendChannel[Event]
    delivered: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class BusStatistics:
    published: int
    subscribers: int
    dropped: int
    dropped_by_subscriber: dict[str, int]


class EventBus:
    """Fan-out of :class:`Event` to subscribers, each behind its own bounded buffer."""

    def __init__(self, *, default_buffer: int = 1000) -> None:
        self._default_buffer = default_buffer
        self._subscribers: list[_Subscriber] = []
        self._listeners: list[Callable[[Event], None]] = []
        self._published = 0
        self._dropped_total = 0

    def publish_nowait(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber that has room; never blocks."""
        self._published += 1
        for sub in self._subscribers:
            try:
                sub.send.send_nowait(event)
                sub.delivered += 1
            except trio.WouldBlock:
                sub.dropped += 1
                self._dropped_total += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        for listener in self._listeners:
            # Listeners are internal, synchronous and must not block; one failing must not stop others.
            try:
                listener(event)
            except Exception:
                log.exception("event listener %r failed on %s", listener, event.event)

    def publish(self, name: str, /, interaction: str | None = None, **fields: object) -> Event:
        event = Event(name, fields, interaction=interaction)
        self.publish_nowait(event)
        return event

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener(event)`` synchronously for every event (internal wiring, metrics, hooks)."""
        self._listeners.append(listener)

    @contextlib.asynccontextmanager
    async def subscribe(self, name: str, *, buffer: int | None = None) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        """Receive events published while the context is open."""
        send, receive = trio.open_memory_channel[Event](buffer or self._default_buffer)
        sub = _Subscriber(name, send)
        self._subscribers.append(sub)
        try:
            async with receive:
                yield receive
        finally:
            self._subscribers.remove(sub)
            send.close()

    def statistics(self) -> BusStatistics:
        return BusStatistics(
            published=self._published,
            subscribers=len(self._subscribers),
            dropped=self._dropped_total,
            dropped_by_subscriber={s.name: s.dropped for s in self._subscribers},
        )
