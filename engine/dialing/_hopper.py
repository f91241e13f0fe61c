"""The hopper: which lead to call next, and a journal that makes the order survive restarts.

Every change is appended to a journal of plain JSON-able records; :meth:`Hopper.drain` hands the new
ones to the store, and :meth:`Hopper.restore` rebuilds the same hopper from all of them. The rule that
keeps anyone from being dialed twice: **an attempt is journaled before it is dialed** (``take`` writes
the ``attempt`` record and returns it; the caller persists the drained records, then dials). After a
restart, an attempt with no ``result`` record is closed as ``interrupted`` (it may have rung) and the
lead waits for that outcome's retry delay, like any other outcome: it is never re-dialed at once.

Journal records (``op``)::

    lead        {lead, numbers, fields, priority, due}
    attempt     {attempt, lead, number, time, callback?}
    result      {attempt, outcome, time, due}        due: when the lead may be tried again, or null
    callback    {callback, lead, at, agent, number, note}
    close       {lead, reason}                        sale, do-not-call, exhausted:busy, no valid number...

Order: due time, then priority (higher first), then the order leads were added.
"""

from __future__ import annotations

import heapq
import math
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._campaign import DEFAULT_RETRY, Outcome, RetryRule
from .leads import checked_dial_string

Record = dict[str, Any]
#: (number, now) -> None to allow, or (reason, earliest retry time or None)
Gate = Callable[[str, float], tuple[str, float | None] | None]


@dataclass(frozen=True)
class Attempt:
    attempt: str
    lead: str
    number: str  # checked E.164 dial string
    callback: str | None = None
    agent: str | None = None  # a callback owned by this agent


@dataclass(frozen=True)
class Callback:
    callback: str
    lead: str
    at: float
    agent: str | None = None  # None: anyone may take it
    number: str | None = None
    note: str = ""


@dataclass
class _Lead:
    id: str
    numbers: list[str]
    fields: Mapping[str, str]
    priority: int
    due: float
    seq: int
    next_number: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    closed: str | None = None
    busy: bool = False  # an attempt is in flight


class Hopper:
    def __init__(self, *, retry: Callable[[Outcome], RetryRule] | None = None) -> None:
        self._retry = retry or (lambda outcome: DEFAULT_RETRY[outcome.value])
        self._leads: dict[str, _Lead] = {}
        self._queue: list[tuple[float, int, int, str]] = []
        self._attempts: dict[str, tuple[str, str, str | None]] = {}  # attempt -> (lead, number, callback)
        self._callbacks: dict[str, Callback] = {}
        self._reminded: set[str] = set()
        self._journal: list[Record] = []
        self._undrained = 0
        self._counter = itertools.count(1)
        self._attempt_counter = 0
        self._callback_counter = 0

    # ---------------------------------------------------------------------------------- journal

    def _log(self, record: Record) -> None:
        self._journal.append(record)
        self._undrained += 1

    def drain(self) -> list[Record]:
        """Records added since the last drain. Persist them before dialing what ``take`` returned."""
        if not self._undrained:
            return []
        new = self._journal[-self._undrained:]
        self._undrained = 0
        return new

    @classmethod
    def restore(cls, records: Iterable[Record], *, now: float,
                retry: Callable[[Outcome], RetryRule] | None = None) -> tuple[Hopper, list[str]]:
        """Rebuild from a journal; returns the hopper and the attempts closed as ``interrupted``."""
        hopper = cls(retry=retry)
        for record in records:
            hopper._apply(record)
        interrupted = sorted(hopper._attempts)
        for attempt in interrupted:
            hopper.finish(attempt, Outcome.INTERRUPTED, now)
        hopper._undrained = len(interrupted)  # the closing results still need persisting
        return hopper, interrupted

    def _apply(self, record: Record) -> None:
        op = record.get("op")
        if op == "lead":
            self._add(record["lead"], list(record["numbers"]), record.get("fields", {}),
                      int(record.get("priority", 0)), float(record.get("due", 0.0)))
        elif op == "attempt":
            lead = self._leads[record["lead"]]
            lead.busy = True
            lead.next_number += 1
            self._attempts[record["attempt"]] = (lead.id, record["number"], record.get("callback"))
            self._attempt_counter = max(self._attempt_counter, int(record["attempt"].rsplit("-", 1)[-1]))
            if record.get("callback"):
                self._callbacks.pop(record["callback"], None)
        elif op == "result":
            lead_id, number, _ = self._attempts.pop(record["attempt"])
            self._settle(self._leads[lead_id], number, Outcome(record["outcome"]), record.get("due"))
        elif op == "callback":
            cb = Callback(record["callback"], record["lead"], float(record["at"]), record.get("agent"),
                          record.get("number"), record.get("note", ""))
            self._callbacks[cb.callback] = cb
            self._callback_counter = max(self._callback_counter, int(cb.callback.rsplit("-", 1)[-1]))
        elif op == "close":
            self._leads[record["lead"]].closed = record["reason"]
        else:
            raise ValueError(f"unknown hopper journal record {op!r}")

    # ------------------------------------------------------------------------------------ leads

    def _add(self, lead_id: str, numbers: list[str], fields: Mapping[str, str], priority: int, due: float) -> None:
        if lead_id in self._leads:
            raise ValueError(f"lead {lead_id!r} is already in the hopper")
        checked = [checked_dial_string(n) for n in numbers]
        lead = _Lead(lead_id, checked, dict(fields), priority, due, next(self._counter))
        self._leads[lead_id] = lead
        heapq.heappush(self._queue, (due, -priority, lead.seq, lead_id))

    def add_lead(self, lead_id: str, numbers: Sequence[str], fields: Mapping[str, str] | None = None, *,
                 priority: int = 0, due: float = 0.0) -> None:
        self._add(lead_id, list(numbers), fields or {}, priority, due)
        self._log({"op": "lead", "lead": lead_id, "numbers": list(numbers), "fields": dict(fields or {}),
                   "priority": priority, "due": due})

    def lead_fields(self, lead_id: str) -> Mapping[str, str]:
        return self._leads[lead_id].fields

    def close(self, lead_id: str, reason: str) -> None:
        """Take a lead out for good (a sale, do-not-call, a wrong number...)."""
        self._leads[lead_id].closed = reason
        self._log({"op": "close", "lead": lead_id, "reason": reason})

    def status(self, lead_id: str) -> str:
        lead = self._leads[lead_id]
        return lead.closed or ("in-flight" if lead.busy else "waiting")

    def __len__(self) -> int:
        return sum(1 for lead in self._leads.values() if not lead.closed)

    # ---------------------------------------------------------------------------------- dialing

    def _new_attempt(self, lead: _Lead, number: str, now: float, callback: Callback | None = None) -> Attempt:
        self._attempt_counter += 1
        attempt_id = f"attempt-{self._attempt_counter}"
        lead.busy = True
        lead.next_number += 1
        self._attempts[attempt_id] = (lead.id, number, callback.callback if callback else None)
        record: Record = {"op": "attempt", "attempt": attempt_id, "lead": lead.id, "number": number, "time": now}
        if callback is not None:
            record["callback"] = callback.callback
            self._callbacks.pop(callback.callback, None)
        self._log(record)
        return Attempt(attempt_id, lead.id, checked_dial_string(number),
                       callback.callback if callback else None, callback.agent if callback else None)

    def take(self, now: float, gate: Gate | None = None, *, max_scan: int = 64) -> Attempt | None:
        """The next due lead's next number, journaled as an attempt; None if nothing may be dialed now.

        ``gate`` vetoes a number (do-not-call, calling window...); a vetoed lead is put back at the time
        the gate suggests (or 15 minutes later), or closed when the gate says ``math.inf`` (never). At most ``max_scan`` leads are examined per call.
        """
        scanned = 0
        while self._queue and scanned < max_scan:
            due, _, seq, lead_id = self._queue[0]
            if due > now:
                return None
            heapq.heappop(self._queue)
            lead = self._leads[lead_id]
            if lead.closed or lead.busy or lead.seq != seq or lead.due != due:
                continue  # stale queue entry
            scanned += 1
            number = lead.numbers[lead.next_number % len(lead.numbers)]
            verdict = gate(number, now) if gate is not None else None
            if verdict is not None:
                reason, retry_at = verdict
                if retry_at is not None and math.isinf(retry_at):
                    self.close(lead.id, f"refused:{reason}")  # permanent (do-not-call): never again
                    continue
                self._requeue(lead, retry_at if retry_at is not None and retry_at > now else now + 900.0)
                continue
            return self._new_attempt(lead, number, now)
        return None

    def finish(self, attempt_id: str, outcome: Outcome, now: float) -> float | None:
        """Record how an attempt ended; returns when the lead will be tried again (None: never)."""
        lead_id, number, _ = self._attempts.pop(attempt_id)
        lead = self._leads[lead_id]
        due = self._next_due(lead, number, outcome, now)
        self._log({"op": "result", "attempt": attempt_id, "outcome": outcome.value, "time": now, "due": due})
        self._settle(lead, number, outcome, due)
        return due

    def _next_due(self, lead: _Lead, number: str, outcome: Outcome, now: float) -> float | None:
        if outcome is Outcome.INVALID and len(lead.numbers) > 1:
            return now  # this number is gone; try the next one
        rule = self._retry(outcome)
        if lead.outcomes[outcome.value] + 1 >= rule.max_attempts:  # this was the last one allowed
            return None
        return now + rule.delay

    def _settle(self, lead: _Lead, number: str, outcome: Outcome, due: float | None) -> None:
        lead.busy = False
        lead.outcomes[outcome.value] += 1
        if outcome is Outcome.INVALID and number in lead.numbers and len(lead.numbers) > 1:
            index = lead.numbers.index(number)
            lead.numbers.remove(number)
            if index < lead.next_number % (len(lead.numbers) + 1):
                lead.next_number -= 1
        if due is None:
            if lead.closed is None:
                lead.closed = f"done:{outcome.value}"
            return
        self._requeue(lead, due)

    def _requeue(self, lead: _Lead, due: float) -> None:
        lead.due = due
        lead.seq = next(self._counter)
        heapq.heappush(self._queue, (due, -lead.priority, lead.seq, lead.id))

    # -------------------------------------------------------------------------------- callbacks

    def schedule_callback(self, lead_id: str, at: float, *, agent: str | None = None, number: str | None = None,
                          note: str = "") -> Callback:
        """An agent promised to call back at ``at``; ``agent`` owns it, or None for anyone."""
        lead = self._leads[lead_id]
        if number is not None:
            checked_dial_string(number)
        self._callback_counter += 1
        cb = Callback(f"callback-{self._callback_counter}", lead_id, at, agent, number, note)
        self._callbacks[cb.callback] = cb
        lead.closed = None  # a callback reopens a lead a disposition closed
        self._log({"op": "callback", "callback": cb.callback, "lead": lead_id, "at": at, "agent": agent,
                   "number": number, "note": note})
        return cb

    def callbacks(self) -> list[Callback]:
        return sorted(self._callbacks.values(), key=lambda c: c.at)

    def reminders(self, now: float, ahead: float = 300.0) -> list[Callback]:
        """Callbacks due within ``ahead`` seconds that have not been reminded yet (each one once)."""
        due = [c for c in self.callbacks() if c.at <= now + ahead and c.callback not in self._reminded]
        self._reminded.update(c.callback for c in due)
        return due

    def take_callback(self, now: float, *, ready_agents: Iterable[str] = (), gate: Gate | None = None) -> Attempt | None:
        """A due callback one of ``ready_agents`` may take (its owner, or anyone's), journaled."""
        ready = set(ready_agents)
        for cb in self.callbacks():
            if cb.at > now:
                return None
            if cb.agent is not None and cb.agent not in ready:
                continue
            lead = self._leads[cb.lead]
            if lead.busy:
                continue
            number = cb.number or lead.numbers[lead.next_number % len(lead.numbers)]
            if gate is not None and gate(number, now) is not None:
                continue
            attempt = self._new_attempt(lead, number, now, cb)
            if attempt.agent is None and ready:
                attempt = Attempt(attempt.attempt, attempt.lead, attempt.number, attempt.callback,
                                  sorted(ready)[0])
            return attempt
        return None
