"""An incoming call before it is answered (sans-IO): rings, their cadence, caller ID, give-up timer.

Transitions (input -> new state, output)::

    IDLE     --ring-->            RINGING   (timer: last ring + ring_gone)
    RINGING  --ring-->            RINGING   or OFFERED + Offer once ``answer_after`` rings have come
    OFFERED  --ring-->            OFFERED
    RINGING/OFFERED --timer-->    IDLE      Gone (the caller hung up before anyone answered)
    RINGING/OFFERED --answered--> IDLE
    any      --reset-->           IDLE      (the modem went away)

Caller ID lines arrive between the first and second ring; they are gathered and attached to the offer.
The cadence (seconds between RINGs, e.g. ~6 s in Europe, ~6 s US, 2-4 s on some PBX extensions) is
measured so the console can show it and a profile can tell internal from external rings.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass

from engine import InvalidTransition

from ._callerid import CallerId, CallerIdCollector

__all__ = ["Gone", "Offer", "RingState", "RingTracker"]


class RingState(enum.Enum):
    IDLE = "idle"
    RINGING = "ringing"
    OFFERED = "offered"


_TRANSITIONS: dict[tuple[RingState, str], RingState] = {
    (RingState.IDLE, "ring"): RingState.RINGING,
    (RingState.RINGING, "ring"): RingState.RINGING,
    (RingState.RINGING, "offer"): RingState.OFFERED,
    (RingState.OFFERED, "ring"): RingState.OFFERED,
    (RingState.RINGING, "gone"): RingState.IDLE,
    (RingState.OFFERED, "gone"): RingState.IDLE,
    (RingState.IDLE, "answered"): RingState.IDLE,
    (RingState.RINGING, "answered"): RingState.IDLE,
    (RingState.OFFERED, "answered"): RingState.IDLE,
}


@dataclass(frozen=True)
class Offer:
    caller_id: CallerId
    rings: int
    cadence: float | None


@dataclass(frozen=True)
class Gone:
    caller_id: CallerId
    rings: int


class RingTracker:
    def __init__(self, *, answer_after: int = 2, ring_gone: float = 8.0) -> None:
        self.answer_after = max(1, answer_after)
        self.ring_gone = ring_gone
        self.state = RingState.IDLE
        self.rings = 0
        self._ring_times: list[float] = []
        self._collector = CallerIdCollector()
        self.caller_id = CallerId()

    def _go(self, event: str) -> None:
        new = _TRANSITIONS.get((self.state, event))
        if new is None:
            raise InvalidTransition(f"ringing: {event!r} is not allowed in state {self.state.value}")
        self.state = new

    @property
    def cadence(self) -> float | None:
        times = self._ring_times
        if len(times) < 2:
            return None
        gaps = sorted(b - a for a, b in itertools.pairwise(times))
        return gaps[len(gaps) // 2]

    @property
    def caller_id_errors(self) -> int:
        return self._collector.errors

    def caller_id_line(self, line: str) -> None:
        self._collector.feed(line)

    def ring(self, now: float) -> Offer | None:
        self._go("ring")
        self.rings += 1
        self._ring_times.append(now)
        del self._ring_times[:-8]
        cid = self._collector.take()
        if cid is not None:
            self.caller_id = cid
        if self.state is RingState.RINGING and self.rings >= self.answer_after:
            self._go("offer")
            return Offer(self.caller_id, self.rings, self.cadence)
        return None

    def answered(self) -> CallerId:
        """The line was taken off hook: returns the caller ID gathered so far."""
        cid = self._collector.take()
        if cid is not None:
            self.caller_id = cid
        caller = self.caller_id
        self._go("answered")
        self._clear()
        return caller

    def next_timer(self) -> float | None:
        if self.state is RingState.IDLE or not self._ring_times:
            return None
        return self._ring_times[-1] + self.ring_gone

    def handle_timer(self, now: float) -> Gone | None:
        deadline = self.next_timer()
        if deadline is None or now < deadline:
            return None
        cid = self._collector.take() or self.caller_id
        gone = Gone(cid, self.rings)
        self._go("gone")
        self._clear()
        return gone

    def reset(self) -> None:
        self.state = RingState.IDLE
        self._clear()
        self._collector.take()

    def _clear(self) -> None:
        self.rings = 0
        self._ring_times.clear()
        self.caller_id = CallerId()
