"""One caller's walk through a flow: a sans-IO interpreter.

Feed it inputs (:meth:`FlowSession.digit`, :meth:`~FlowSession.playback_done`,
:meth:`~FlowSession.crm_result`, :meth:`~FlowSession.hangup`) and the time; it returns commands
(``_commands.py``). One timer at a time: :meth:`next_timer` / :meth:`handle_timer`.

Session states::

    created --start--> running --(a final node | caller hangs up | step limit)--> finished

Hostile callers are bounded: at most ``MAX_BUFFERED_DIGITS`` typed-ahead digits are kept, unknown
characters are ignored, and a flow that moves ``max_steps`` times without ending is hung up (a loop
of set/branch nodes cannot spin forever, even if validation was skipped).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from ..routing._expr import Expression, compile_expression
from ..routing._schedule import Schedule, parse_schedule
from ._commands import (
    CrmResult,
    Digit,
    FlowCommand,
    FlowEnded,
    Hangup,
    LookupCrm,
    Play,
    PlaybackDone,
    StopPlayback,
)
from ._flows import Flow

__all__ = ["FlowSession", "MAX_BUFFERED_DIGITS"]

MAX_BUFFERED_DIGITS = 32
_DIGITS = frozenset("0123456789*#ABCD")


class FlowSession:
    def __init__(self, flow: Flow, *, caller: str, session_id: str, variables: Mapping[str, Any] | None = None,
                 max_steps: int = 500) -> None:
        self.flow = flow
        self.caller = caller
        self.session_id = session_id
        self.variables: dict[str, Any] = {"caller": caller, **(variables or {})}
        self.max_steps = max_steps
        self.current_name = ""
        self.current: Mapping[str, Any] = {}
        self.state: dict[str, Any] = {}
        self.visit = 0
        self.steps = 0
        self.finished = False
        self.started = False
        self.outcome: str | None = None
        self._digits: deque[str] = deque()
        self._timer: float | None = None
        self._pending: str | None = None
        self._out: list[FlowCommand] = []

    # ------------------------------------------------------------------ API for node types
    def emit(self, command: FlowCommand) -> None:
        self._out.append(command)

    def goto(self, target: str, now: float) -> None:
        self._pending = target

    @property
    def moving(self) -> bool:
        """A node asked to go elsewhere during this input (the move happens after the handler)."""
        return self._pending is not None

    def finish(self, outcome: str, now: float) -> None:
        if not self.finished:
            self.finished = True
            self.outcome = outcome
            self._timer = None
            self._pending = None
            self._out.append(FlowEnded(outcome, self.current_name, dict(self.variables)))

    def set_timer(self, when: float) -> None:
        self._timer = when

    def buffer_digit(self, digit: str) -> None:
        if len(self._digits) < MAX_BUFFERED_DIGITS:
            self._digits.append(digit)

    def has_buffered_digits(self) -> bool:
        return bool(self._digits)

    def pop_digit(self) -> str:
        return self._digits.popleft()

    def compiled(self, text: str) -> Expression:
        cache = self.flow.expressions
        if text not in cache:
            cache[text] = compile_expression(text, default=None)
        return cache[text]

    def schedule(self, table: Mapping[str, Any]) -> Schedule:
        key = id(table)
        cache = self.flow.schedules
        if key not in cache:
            cache[key] = parse_schedule(dict(table))
        return cache[key]

    # --------------------------------------------------------------------------- inputs
    def start(self, now: float) -> list[FlowCommand]:
        if not self.started:
            self.started = True
            self.goto(self.flow.start, now)
            self._settle(now)
        return self._flush()

    def digit(self, digit: str, now: float) -> list[FlowCommand]:
        if self.finished or not self.started or not isinstance(digit, str) or digit.upper() not in _DIGITS:
            return self._flush()
        self._type().on_digit(self, self.current, digit.upper(), now)
        self._settle(now)
        return self._flush()

    def playback_done(self, now: float) -> list[FlowCommand]:
        if not self.finished and self.started:
            self._type().on_playback_done(self, self.current, now)
            self._settle(now)
        return self._flush()

    def crm_result(self, result: CrmResult, now: float) -> list[FlowCommand]:
        if self.finished or result.request_id != self.state.get("request"):
            return self._flush()  # late or foreign answer: ignored
        self.state["request"] = None
        self._type().on_crm_result(self, self.current, result.record, result.error, now)
        self._settle(now)
        return self._flush()

    def hangup(self, now: float) -> list[FlowCommand]:
        """The caller hung up: the session ends wherever it is. The current node may still act on it
        (a callback node books the callback the caller chose); nothing is said to the caller."""
        if self.started and not self.finished:
            self._type().on_hangup(self, self.current, now)
            # the caller is gone: only what is done for them afterwards (booking) makes sense now
            self._out = [c for c in self._out if not isinstance(c, (Hangup, Play, StopPlayback, LookupCrm))]
        self.finish("caller-hangup", now)
        return self._flush()

    def feed(self, event: object, now: float) -> list[FlowCommand]:
        if isinstance(event, Digit):
            return self.digit(event.digit, now)
        if isinstance(event, PlaybackDone):
            return self.playback_done(now)
        if isinstance(event, CrmResult):
            return self.crm_result(event, now)
        raise TypeError(f"not a flow input: {event!r}")

    def next_timer(self) -> float | None:
        return None if self.finished else self._timer

    def handle_timer(self, now: float) -> list[FlowCommand]:
        if self.finished or self._timer is None or now < self._timer:
            return self._flush()
        self._timer = None
        self._type().on_timer(self, self.current, now)
        self._settle(now)
        return self._flush()

    # ------------------------------------------------------------------------ internals
    def _type(self) -> Any:
        return self.flow.types[self.current["type"]]

    def _settle(self, now: float) -> None:
        """Enter pending nodes one after another (a trampoline: long chains never recurse)."""
        while self._pending is not None and not self.finished:
            target, self._pending = self._pending, None
            self.steps += 1
            if self.steps > self.max_steps:
                self.emit(Hangup("flow-loop"))
                self.finish("error", now)
                return
            node = self.flow.nodes.get(target)
            if node is None:  # only possible when validation was skipped
                self.emit(Hangup("flow-error"))
                self.finish("error", now)
                return
            self.current_name = target
            self.current = node
            self.state = {}
            self.visit += 1
            self._timer = None
            self._type().enter(self, node, now)

    def _flush(self) -> list[FlowCommand]:
        out, self._out = self._out, []
        return out
