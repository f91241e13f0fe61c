"""The routing core: queues, agents and interactions of every kind, as one sans-IO state machine.

Inputs are method calls carrying the current time (``now``, seconds); each returns the list of events
and commands it caused (see ``_events.py``). Time passes only through :meth:`Router.handle_timer`; ask
:meth:`Router.next_timer` when to call it. Nothing here does I/O or imports trio.

Interaction states (``_Entry.state``) and what moves them::

    waiting  --offer-->          offered
    offered  --accept-->         active
    offered  --accept-->         dialing     (a callback: the agent is reserved, the customer dialed)
    dialing  --answered-->       active
    dialing  --not answered-->   waiting     (same place, after the retry delay; or gone: CallbackFailed)
    offered  --reject/timeout--> waiting     (keeps its place; that agent sits out for `retry` seconds)
    waiting/offered --end-->     gone        (an abandon: QueueCallerAbandon)
    active   --end-->            gone        (AgentComplete; the agent's slot stays in wrap-up)
    waiting  --max wait-->       gone        (Overflow), or waiting in the overflow queue

Agent presence: ``logged_out`` <-> ``available`` <-> ``paused``. An agent's load per channel counts
outstanding offers, active interactions and wrap-ups; an offer is made only below capacity.

Rules this enforces (``check_invariants`` verifies them):
- no agent is above its capacity on any channel;
- an interaction is offered to at most one agent at a time, except in a ring-all queue;
- every offer has a live timer: it resolves (accept/reject/end) or times out;
- a queue's waiting list is sorted by (priority desc, arrival time, arrival order), and a caller keeps
  its place through rejected offers, callbacks and retries.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import _invariants, _persist
from ._config import CHANNEL_KINDS, AgentConfig, QueueConfig
from ._events import (
    AgentComplete, AgentPauseChanged, AgentRingNoAnswer, AgentStatusChanged, Announce, CallbackFailed,
    CancelOffer, Connect, DialCallback, Explanation, JoinRefused, Offer, Overflow, QueueCallerAbandon,
    QueueCallerJoin, QueueCallerLeave, RouterEvent,
)
from ._state import (
    CallbackRequest, NoSuchOffer, RoutingError, UnknownAgent, UnknownInteraction, _Agent,
    _Callback, _Entry, _Queue,
)
from ._strategies import describe, rank_candidates

__all__ = ["CallbackRequest", "Router", "RoutingError", "UnknownAgent", "UnknownInteraction", "NoSuchOffer"]

_Z80 = 1.2816  # the 10th/90th percentile of a normal: the estimated-wait range is an 80% interval

Chooser = Callable[[str, str, Sequence[str]], "str | None"]


class Router:
    """The ACD. Build it with queue and agent configs, then feed it inputs; see the module docstring.

    ``chooser(interaction_id, queue, candidates_best_first) -> agent id | None`` lets a decision hook
    override the strategy's pick; ``seed`` makes the random strategies reproducible.
    """

    def __init__(self, queues: Iterable[QueueConfig] = (), agents: Iterable[AgentConfig] = (), *,
                 now: float = 0.0, seed: int | None = None, chooser: Chooser | None = None,
                 explain: bool = True) -> None:
        self._queues: dict[str, _Queue] = {}
        self._agents: dict[str, _Agent] = {}
        self._entries: dict[str, _Entry] = {}
        self._agent_queues: dict[str, list[str]] = {}
        self._timers: list[tuple[float, int, str, str, str]] = []
        self._seq = itertools.count()
        self._rng = random.Random(seed)
        self._chooser = chooser
        self._explain = explain
        self._out: list[RouterEvent] = []
        self._touched: set[str] = set()
        self._requests: dict[str, str] = {}       # callback request id -> interaction id (live)
        self._finished_requests: dict[str, None] = {}   # insertion-ordered, bounded
        self.decisions = 0
        # (agent, queue) -> eligible at each relaxation stage; skills and targets only change on reload
        self._eligibility: dict[tuple[str, str], tuple[bool, ...]] = {}
        self._mismatch: dict[tuple[str, str, int], str] = {}
        self.configure(list(queues), list(agents), now=now)
        self._out.clear()

    # ------------------------------------------------------------------------------ configuration

    def configure(self, queues: Sequence[QueueConfig], agents: Sequence[AgentConfig], *,
                  now: float) -> list[RouterEvent]:
        """Apply (new) settings without dropping live interactions. Removed queues stop taking callers
        but keep serving those already waiting; removed agents are logged out once their work ends."""
        for config in agents:
            agent = self._agents.get(config.id)
            if agent is None:
                agent = _Agent(config, idle_since=now)
                self._agents[config.id] = agent
                if config.auto_login:
                    agent.state = "available"
                agent.last_status = agent.status()
            else:
                agent.config = config
                agent.retired = False
            self._touched.add(config.id)
        self._eligibility.clear()
        self._mismatch.clear()
        wanted_agents = {a.id for a in agents}
        for agent in self._agents.values():
            if agent.id not in wanted_agents and not agent.retired:
                agent.retired = True
                self._cancel_agent_offers(agent, now, "logged-out")
                self._touched.add(agent.id)
        wanted_queues = {q.name for q in queues}
        for config in queues:
            queue = self._queues.get(config.name)
            if queue is None:
                self._queues[config.name] = _Queue(config)
            else:
                queue.config = config
                queue.retired = False
                queue.refresh()
        for name, queue in self._queues.items():
            if name not in wanted_queues:
                queue.retired = True
        self._agent_queues = {}
        for name, queue in self._queues.items():
            for member in queue.pool:
                self._agent_queues.setdefault(member, []).append(name)
        for entry in list(self._entries.values()):
            if entry.state == "waiting":
                self._schedule_entry_timers(entry, now)
            elif len(entry.offers) > 1 and self._queues[entry.queue].config.strategy != "ring-all":
                # the queue stopped ringing everyone: keep the first offer, withdraw the rest
                for agent_id in list(entry.offers)[1:]:
                    agent = self._agents[agent_id]
                    del entry.offers[agent_id]
                    del agent.offers[entry.id]
                    agent.add_load(entry.kind, -1)
                    self._touched.add(agent_id)
                    self._agent_maybe_idle(agent, now)
                    self._out.append(CancelOffer(entry.id, agent_id, "reconfigured"))
        self._dispatch_all(now)
        return self._flush()

    # ----------------------------------------------------------------------------------- agents

    def _agent(self, agent_id: str) -> _Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"no agent {agent_id!r}")
        return agent

    def login(self, agent_id: str, *, now: float) -> list[RouterEvent]:
        agent = self._agent(agent_id)
        if agent.state == "logged_out":
            agent.state = "available"
            agent.idle_since = now
            agent.missed = 0
            self._touched.add(agent_id)
            self._try_agent(agent, now)
        return self._flush()

    def logout(self, agent_id: str, *, now: float) -> list[RouterEvent]:
        """No new offers; ringing offers are withdrawn (the callers keep their place); ongoing
        conversations continue to their end."""
        agent = self._agent(agent_id)
        if agent.state != "logged_out":
            agent.state = "logged_out"
            self._touched.add(agent_id)
            self._cancel_agent_offers(agent, now, "logged-out")
            self._leave_if_empty(now)
        return self._flush()

    def pause(self, agent_id: str, reason: str = "", *, now: float) -> list[RouterEvent]:
        agent = self._agent(agent_id)
        if agent.state == "logged_out":
            raise RoutingError(f"agent {agent_id!r} is logged out; log in before pausing")
        if agent.state != "paused" or agent.pause_reason != reason:
            agent.state = "paused"
            agent.pause_reason = reason
            self._touched.add(agent_id)
            self._out.append(AgentPauseChanged(agent_id, True, reason))
        return self._flush()

    def unpause(self, agent_id: str, *, now: float) -> list[RouterEvent]:
        agent = self._agent(agent_id)
        if agent.state == "paused":
            agent.state = "available"
            agent.pause_reason = ""
            agent.missed = 0
            if agent.busy_total() == 0:
                agent.idle_since = now
            self._touched.add(agent_id)
            self._out.append(AgentPauseChanged(agent_id, False, ""))
            self._try_agent(agent, now)
        return self._flush()

    def set_reachable(self, agent_id: str, reachable: bool, *, now: float) -> list[RouterEvent]:
        """Whether the agent's voice endpoint can ring (a SIP user registered). No voice offers if not."""
        agent = self._agent(agent_id)
        if agent.reachable != reachable:
            agent.reachable = reachable
            if reachable:
                self._try_agent(agent, now)
        return self._flush()

    def wrapup_done(self, agent_id: str, interaction_id: str | None = None, *, now: float) -> list[RouterEvent]:
        """The agent finished after-call work early (all of it when ``interaction_id`` is None)."""
        agent = self._agent(agent_id)
        for iid in [i for i in agent.wrapups if interaction_id in (None, i)]:
            self._end_wrapup(agent, iid, now)
        self._try_agent(agent, now)
        return self._flush()

    # ----------------------------------------------------------------------------- interactions

    def enqueue(self, interaction_id: str, queue: str, *, now: float, kind: str = "voice",
                priority: int = 0, attributes: dict[str, Any] | None = None, arrived: float | None = None,
                callback: CallbackRequest | None = None) -> list[RouterEvent]:
        """An interaction enters ``queue``. ``priority`` (higher first) adds to the queue's own;
        ``arrived`` keeps an earlier arrival time (a caller moved between queues keeps their age)."""
        if interaction_id in self._entries:
            raise RoutingError(f"interaction {interaction_id!r} is already in routing")
        if kind not in CHANNEL_KINDS:
            raise RoutingError(f"interaction {interaction_id!r}: unknown kind {kind!r}, expected one of "
                               f"{', '.join(CHANNEL_KINDS)}")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise RoutingError(f"interaction {interaction_id!r}: priority must be an integer, got {priority!r}")
        if callback is not None and self._known_request(callback.request_id):
            return self._flush()  # the same request again (a replay): exactly one callback
        q = self._queues.get(queue)
        if q is None or q.retired:
            self._out.append(JoinRefused(interaction_id, queue, "unknown-queue"))
            return self._flush()
        config = q.config
        reason = None
        if config.hours is not None and not config.hours.is_open(now):
            reason = "closed"
        elif config.max_length and len(q.waiting) >= config.max_length:
            reason = "full"
        elif not config.join_empty and not self._staffed(q):
            reason = "no-agents"
        if reason is not None:
            self._out.append(JoinRefused(interaction_id, queue, reason, config.overflow))
            return self._flush()
        self._insert(q, interaction_id, kind, priority + config.priority, attributes or {},
                     now if arrived is None else arrived, now, callback)
        return self._flush()

    def _insert(self, q: _Queue, iid: str, kind: str, priority: int, attributes: dict[str, Any],
                arrived: float, now: float, callback: CallbackRequest | None,
                cb_state: _Callback | None = None, seq: int | None = None, announce: bool = True) -> _Entry:
        seq = next(self._seq) if seq is None else seq
        entry = _Entry(iid, q.config.name, kind, priority, arrived, seq, attributes, now, 0)
        if callback is not None:
            entry.callback = cb_state or _Callback(callback)
            self._requests[callback.request_id] = iid
        bisect.insort(q.waiting, entry.key)
        entry.original_position = self._position(q, entry)
        self._entries[iid] = entry
        q.joined += 1
        self._out.append(QueueCallerJoin(iid, q.config.name, entry.original_position, len(q.waiting), kind))
        self._schedule_entry_timers(entry, now)
        self._try_entry(entry, now)
        if announce and kind == "voice" and entry.callback is None and q.config.announce_frequency > 0:
            if entry.state == "waiting":
                self._announce(entry, now)
            else:  # ringing at once: the first announcement is due a period later, if the ring fails
                entry.next_announce = now + q.config.announce_frequency
                self._push_timer(entry.next_announce, "announce", entry.id)
        return entry

    def request_callback(self, interaction_id: str, request: CallbackRequest, *,
                         now: float) -> list[RouterEvent]:
        """The waiting caller asked to be called back: they keep their place, their line may hang up
        (a later :meth:`end` for it is not an abandon). The same ``request_id`` twice is one callback."""
        if self._known_request(request.request_id):
            return self._flush()
        entry = self._entries.get(interaction_id)
        if entry is None or entry.state not in ("waiting", "offered"):
            raise UnknownInteraction(f"interaction {interaction_id!r} is not waiting in a queue")
        entry.state = "waiting"
        freed = self._withdraw_offers(entry, now, "caller-gone")
        entry.callback = _Callback(request)
        entry.next_announce = None
        self._requests[request.request_id] = interaction_id
        self._schedule_entry_timers(entry, now)
        self._try_entry(entry, now)
        self._retry_agents(freed, now)
        return self._flush()

    def cancel_callback(self, request_id: str, *, now: float) -> list[RouterEvent]:
        iid = self._requests.get(request_id)
        entry = self._entries.get(iid) if iid else None
        if entry is not None and entry.state in ("waiting", "offered"):
            self._leave(entry, now, "removed")
            self._finish_request(request_id)
        return self._flush()

    def accept(self, interaction_id: str, agent_id: str, *, now: float) -> list[RouterEvent]:
        """The agent answered the ring (voice) or accepted the reservation (messaging)."""
        entry = self._entries.get(interaction_id)
        agent = self._agent(agent_id)
        if entry is None or agent_id not in entry.offers:
            raise NoSuchOffer(f"no offer of {interaction_id!r} to {agent_id!r} (taken or withdrawn)")
        q = self._queues[entry.queue]
        del entry.offers[agent_id]
        entry.state = "active"
        freed = self._withdraw_offers(entry, now, "answered-elsewhere")
        del agent.offers[interaction_id]
        agent.active[interaction_id] = entry.kind
        agent.missed = 0
        self._touched.add(agent_id)
        entry.agent = agent_id
        entry.ring_time = now - entry.offered_at
        if entry.callback is not None:
            # the agent is reserved first; only now is the customer dialed (exactly once per attempt)
            entry.state = "dialing"
            entry.callback.dialing = True
            self._emit_dial(entry, agent_id)
        else:
            self._connect(entry, agent, q, now)
        self._retry_agents(freed, now)
        return self._flush()

    def _emit_dial(self, entry: _Entry, agent_id: str) -> None:
        assert entry.callback is not None
        cb = entry.callback
        attempt = cb.attempts + 1
        self._out.append(DialCallback(entry.id, cb.request.request_id, f"{cb.request.request_id}#{attempt}",
                                      cb.request.number, agent_id, entry.queue, attempt))

    def _connect(self, entry: _Entry, agent: _Agent, q: _Queue, now: float) -> None:
        entry.state = "active"
        entry.connected = now
        position = self._position(q, entry)
        self._remove_waiting(q, entry)
        q.answered += 1
        q.calls[agent.id] = q.calls.get(agent.id, 0) + 1
        q.rr_last = agent.id
        agent.answered += 1
        if entry.callback is not None:
            self._finish_request(entry.callback.request.request_id)
        self._out.append(QueueCallerLeave(entry.id, q.config.name, position, "answered"))
        self._out.append(Connect(entry.id, agent.id, q.config.name, now - entry.arrived, entry.ring_time))

    def callback_result(self, request_id: str, answered: bool, *, now: float) -> list[RouterEvent]:
        """The outcome of a :class:`DialCallback`: the customer answered (connect) or not (retry later
        in the same place, or give up after the queue's ``callback_attempts``)."""
        iid = self._requests.get(request_id)
        entry = self._entries.get(iid) if iid else None
        if entry is None or entry.state != "dialing" or entry.callback is None:
            return self._flush()  # a duplicate or late report: nothing to do
        agent = self._agents[entry.agent] if entry.agent else None
        q = self._queues[entry.queue]
        if answered and agent is not None:
            entry.callback.dialing = False
            self._connect(entry, agent, q, now)
            return self._flush()
        cb = entry.callback
        cb.dialing = False
        cb.attempts += 1
        if agent is not None:
            agent.active.pop(entry.id, None)
            agent.add_load(entry.kind, -1)
            self._touched.add(agent.id)
            self._agent_maybe_idle(agent, now)
        entry.agent = None
        entry.state = "waiting"
        if cb.attempts >= q.config.callback_attempts:
            self._out.append(CallbackFailed(entry.id, request_id, entry.queue, "attempts-exhausted", cb.attempts))
            self._leave(entry, now, "callback-failed")
            self._finish_request(request_id)
        else:
            cb.not_before = now + q.config.callback_retry_delay
            self._push_timer(cb.not_before, "retry", entry.id)
        if agent is not None:
            self._try_agent(agent, now)
        return self._flush()

    def reject(self, interaction_id: str, agent_id: str, *, now: float, cause: str = "rejected") -> list[RouterEvent]:
        """The agent declined (``cause`` "rejected") or their endpoint was busy ("busy")."""
        entry = self._entries.get(interaction_id)
        agent = self._agent(agent_id)
        if entry is None or agent_id not in entry.offers:
            raise NoSuchOffer(f"no offer of {interaction_id!r} to {agent_id!r}")
        self._offer_failed(entry, agent, now, cause)
        return self._flush()

    def end(self, interaction_id: str, *, now: float, reason: str = "caller") -> list[RouterEvent]:
        """The interaction ended: while waiting or ringing it is an abandon; while active it completes
        (``reason``: caller, agent, transfer) and the agent goes into wrap-up."""
        entry = self._entries.get(interaction_id)
        if entry is None:
            return self._flush()  # already gone (overflowed, answered elsewhere and ended): idempotent
        q = self._queues[entry.queue]
        if entry.state in ("waiting", "offered"):
            if entry.callback is not None and reason != "cancel":
                return self._flush()  # the caller hung up after asking for a callback: keep the place
            position = self._position(q, entry)
            self._remove_waiting(q, entry)
            del self._entries[entry.id]
            entry.state = "gone"
            freed = self._withdraw_offers(entry, now, "caller-gone")
            q.abandoned += 1
            if entry.callback is not None:
                self._finish_request(entry.callback.request.request_id)
            self._out.append(QueueCallerAbandon(entry.id, q.config.name, position, entry.original_position,
                                                now - entry.arrived))
            self._retry_agents(freed, now)
            return self._flush()
        agent = self._agents.get(entry.agent or "")
        del self._entries[entry.id]
        if entry.state == "dialing":  # the callback was cancelled while it was being dialed
            self._remove_waiting(q, entry)
            if entry.callback is not None:
                self._finish_request(entry.callback.request.request_id)
        if agent is None:
            return self._flush()
        agent.active.pop(entry.id, None)
        self._touched.add(agent.id)
        if entry.state == "dialing":
            agent.add_load(entry.kind, -1)
            self._agent_maybe_idle(agent, now)
            self._try_agent(agent, now)
            return self._flush()
        talk = now - entry.connected
        wrapup = agent.config.wrapup if agent.config.wrapup is not None else q.config.wrapup
        until = now + wrapup
        q.talk[agent.id] = q.talk.get(agent.id, 0.0) + talk
        q.handle_times.append(talk + wrapup)
        agent.talk_time += talk
        self._out.append(AgentComplete(entry.id, agent.id, q.config.name, entry.connected - entry.arrived,
                                       talk, reason, until))
        if wrapup > 0:
            agent.wrapups[entry.id] = (entry.kind, until)
            self._push_timer(until, "wrapup", agent.id, entry.id)
        else:
            agent.add_load(entry.kind, -1)
            self._agent_maybe_idle(agent, now)
            self._try_agent(agent, now)
        return self._flush()

    def transfer(self, interaction_id: str, queue: str, *, now: float, priority: int | None = None) -> list[RouterEvent]:
        """Move a waiting interaction to another queue, keeping its arrival time (its age)."""
        entry = self._entries.get(interaction_id)
        if entry is None or entry.state not in ("waiting", "offered"):
            raise UnknownInteraction(f"interaction {interaction_id!r} is not waiting in a queue")
        self._move(entry, queue, now, priority, reason="transferred")
        return self._flush()

    # --------------------------------------------------------------------------------- queries

    def estimate_wait(self, interaction_id: str, *, now: float) -> tuple[int, float | None, float | None]:
        """(position, low, high): an 80% range of the remaining wait in seconds, from the caller's
        position, the eligible staffed agents (busy or free, not paused) and the queue's recent handle
        times. ``None`` bounds when no eligible agent is logged in."""
        entry = self._entries.get(interaction_id)
        if entry is None:
            raise UnknownInteraction(f"interaction {interaction_id!r} is not in routing")
        q = self._queues[entry.queue]
        position = self._position(q, entry)
        staffed, free = 0, 0
        _, target, extra = q.config.target_at(now - entry.arrived)
        for agent_id in q.pool:
            agent = self._agents.get(agent_id)
            if agent is None or agent.state != "available" or agent.retired:
                continue
            if agent_id not in q.config.members and agent_id not in extra:
                continue
            if target is not None and not target.evaluate(agent.config.skills):
                continue
            capacity = agent.config.channels.get(entry.kind, 0)
            staffed += capacity
            free += max(0, capacity - agent.load.get(entry.kind, 0)) if agent.can_take(entry.kind) else 0
        if staffed == 0:
            return position, None, None
        ahead = position - free
        if ahead <= 0:
            return position, 0.0, 0.0
        aht = q.mean_handle_time()
        mean = ahead * aht / staffed
        spread = _Z80 * math.sqrt(ahead) * aht / staffed
        return position, max(0.0, mean - spread), mean + spread

    def explain(self, interaction_id: str, *, now: float) -> dict[str, str]:
        """Why each member of the interaction's queue could or could not take it right now."""
        entry = self._entries.get(interaction_id)
        if entry is None:
            raise UnknownInteraction(f"interaction {interaction_id!r} is not in routing")
        q = self._queues[entry.queue]
        held = {a for a in q.pool if (agent := self._agents.get(a)) is not None and agent.can_take(entry.kind)
                and not self._first_in_line(agent, entry, now)}
        return self._reasons(q, entry, now, set(), held=held, fallback="free and eligible: the next decision may offer it")

    def queue_status(self, name: str, *, now: float, estimates: bool = False) -> dict[str, Any]:
        """The queue for the API: callers in order (with their wait range when ``estimates``), members'
        activity and counters. Raises :class:`RoutingError` for an unknown queue."""
        q = self._queues.get(name)
        if q is None:
            raise RoutingError(f"no queue {name!r}")
        waiting = [self._entries[key[3]] for key in q.waiting]
        callers = []
        for i, e in enumerate(waiting):
            caller = {"interaction": e.id, "position": i + 1, "state": e.state, "kind": e.kind,
                      "wait": now - e.arrived, "priority": e.priority,
                      "callback": e.callback.request.request_id if e.callback else None}
            if estimates:
                caller["estimate"] = list(self.estimate_wait(e.id, now=now)[1:])
            callers.append(caller)
        return {
            "name": name, "strategy": q.config.strategy, "waiting": len(waiting),
            "callers": callers,
            "members": {a: self._agents[a].status() for a in q.config.members if a in self._agents},
            "joined": q.joined, "answered": q.answered, "abandoned": q.abandoned, "overflowed": q.overflowed,
            "mean_handle_time": q.mean_handle_time(),
        }

    def agent_status(self, agent_id: str) -> dict[str, Any]:
        agent = self._agent(agent_id)
        return {"id": agent_id, "state": agent.state, "status": agent.status(), "reason": agent.pause_reason,
                "load": dict(agent.load), "offers": list(agent.offers), "active": list(agent.active),
                "wrapup": list(agent.wrapups), "answered": agent.answered, "talk_time": agent.talk_time,
                "missed": agent.missed}

    def interaction_ids(self) -> list[str]:
        return list(self._entries)

    def interaction_state(self, interaction_id: str) -> str | None:
        """``waiting``, ``offered``, ``dialing`` (a callback being dialed), ``active``; None when not held."""
        entry = self._entries.get(interaction_id)
        return entry.state if entry is not None else None

    def has_interaction(self, interaction_id: str) -> bool:
        """Does routing still hold this interaction (waiting, offered, dialing back or active)?"""
        return interaction_id in self._entries

    def statistics(self) -> dict[str, int]:
        return {"waiting": sum(len(q.waiting) for q in self._queues.values()),
                "interactions": len(self._entries), "agents": len(self._agents),
                "decisions": self.decisions, "timers": len(self._timers)}

    # ----------------------------------------------------------------------------------- timers

    def next_timer(self) -> float | None:
        while self._timers and not self._timer_live(self._timers[0]):
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def handle_timer(self, now: float) -> list[RouterEvent]:
        while self._timers and self._timers[0][0] <= now:
            when, _, kind, key, extra = heapq.heappop(self._timers)
            if self._timer_live((when, 0, kind, key, extra)):
                self._fire(when, kind, key, extra, now)
        return self._flush()

    def _push_timer(self, when: float, kind: str, key: str, extra: str = "") -> None:
        heapq.heappush(self._timers, (when, next(self._seq), kind, key, extra))

    def _timer_live(self, timer: tuple[float, int, str, str, str]) -> bool:
        when, _, kind, key, extra = timer
        if kind == "wrapup":
            agent = self._agents.get(key)
            return agent is not None and extra in agent.wrapups and agent.wrapups[extra][1] == when
        entry = self._entries.get(key)
        if entry is None:
            return False
        if kind == "offer":
            return entry.offers.get(extra) == when
        if kind == "announce":
            # live while ringing too: a caller whose offer goes unanswered keeps hearing announcements
            return entry.next_announce == when and entry.state in ("waiting", "offered")
        if entry.state != "waiting":
            return False
        if kind == "maxwait":
            return True
        if kind == "retry":
            return True
        if kind in ("relax", "window"):
            return True
        return False

    def _fire(self, when: float, kind: str, key: str, extra: str, now: float) -> None:
        if kind == "wrapup":
            agent = self._agents[key]
            self._end_wrapup(agent, extra, now)
            self._try_agent(agent, now)
            return
        entry = self._entries[key]
        q = self._queues[entry.queue]
        if kind == "offer":
            self._offer_failed(entry, self._agents[extra], now, "no-answer")
        elif kind == "maxwait":
            # A booked callback is not a caller on hold: its wait is bounded by its calling window.
            if entry.callback is None and q.config.max_wait is not None and now - entry.joined >= q.config.max_wait:
                self._overflow(entry, now, "max-wait")
        elif kind == "announce":
            if entry.state == "waiting":
                self._announce(entry, now)
            elif q.config.announce_frequency > 0:  # ringing an agent: say nothing now, keep the schedule
                entry.next_announce = now + q.config.announce_frequency
                self._push_timer(entry.next_announce, "announce", entry.id)
        elif kind == "retry":
            self._try_entry(entry, now)
        elif kind == "window":
            cb = entry.callback
            if cb is not None and cb.request.window is not None and now >= cb.request.window[1]:
                self._out.append(CallbackFailed(entry.id, cb.request.request_id, entry.queue,
                                                "window-closed", cb.attempts))
                self._leave(entry, now, "callback-failed")
                self._finish_request(cb.request.request_id)
            else:
                self._try_entry(entry, now)
        elif kind == "relax":
            self._try_entry(entry, now)

    def _schedule_entry_timers(self, entry: _Entry, now: float) -> None:
        q = self._queues[entry.queue]
        for step in q.config.relax:
            when = entry.arrived + step.after
            if when > now:
                self._push_timer(when, "relax", entry.id)
        if q.config.max_wait is not None:
            self._push_timer(entry.joined + q.config.max_wait, "maxwait", entry.id)
        if entry.callback is not None and entry.callback.request.window is not None:
            start, stop = entry.callback.request.window
            if start > now:
                self._push_timer(start, "window", entry.id)
            self._push_timer(max(stop, now), "window", entry.id)
        if entry.callback is not None and entry.callback.not_before > now:
            self._push_timer(entry.callback.not_before, "retry", entry.id)
        for until in entry.tried.values():
            if until > now:
                self._push_timer(until, "retry", entry.id)

    # -------------------------------------------------------------------------------- internals

    def _flush(self) -> list[RouterEvent]:
        for agent_id in self._touched:
            agent = self._agents.get(agent_id)
            if agent is None:
                continue
            if agent.retired and not agent.offers and not agent.active and not agent.wrapups:
                agent.state = "logged_out"
            status = agent.status()
            if status != agent.last_status:
                agent.last_status = status
                self._out.append(AgentStatusChanged(agent_id, status))
        self._touched.clear()
        out, self._out = self._out, []
        return out

    def _known_request(self, request_id: str) -> bool:
        return request_id in self._requests or request_id in self._finished_requests

    def _finish_request(self, request_id: str) -> None:
        self._requests.pop(request_id, None)
        self._finished_requests[request_id] = None
        while len(self._finished_requests) > 100_000:
            del self._finished_requests[next(iter(self._finished_requests))]

    def _position(self, q: _Queue, entry: _Entry) -> int:
        return bisect.bisect_left(q.waiting, entry.key) + 1

    def _remove_waiting(self, q: _Queue, entry: _Entry) -> None:
        index = bisect.bisect_left(q.waiting, entry.key)
        if index < len(q.waiting) and q.waiting[index] == entry.key:
            del q.waiting[index]

    def _staffed(self, q: _Queue) -> bool:
        return any((a := self._agents.get(m)) is not None and a.state != "logged_out" and not a.retired
                   for m in q.config.members)

    def _leave(self, entry: _Entry, now: float, reason: str) -> None:
        q = self._queues[entry.queue]
        position = self._position(q, entry)
        self._remove_waiting(q, entry)
        self._entries.pop(entry.id, None)
        entry.state = "gone"
        freed = self._withdraw_offers(entry, now, "caller-gone")
        self._out.append(QueueCallerLeave(entry.id, q.config.name, position, reason))
        self._retry_agents(freed, now)

    def _move(self, entry: _Entry, queue: str, now: float, priority: int | None, reason: str) -> None:
        target = self._queues.get(queue)
        if target is None:
            raise UnknownInteraction(f"no queue {queue!r}")
        self._leave(entry, now, reason)
        cb = entry.callback
        self._insert(target, entry.id, entry.kind, entry.priority if priority is None else priority,
                     entry.attributes, entry.arrived, now, cb.request if cb else None, cb)

    def _overflow(self, entry: _Entry, now: float, reason: str) -> None:
        q = self._queues[entry.queue]
        q.overflowed += 1
        destination = q.config.overflow or ("hangup", "")
        self._out.append(Overflow(entry.id, q.config.name, destination, reason))
        if destination[0] == "callback" and entry.callback is None and entry.kind == "voice":
            # The caller keeps their place: the engine books the callback (request_callback) with their
            # number, or, when there is no number to call, lets them wait on.
            return
        if destination[0] == "queue" and destination[1] in self._queues and destination[1] != entry.queue:
            self._move(entry, destination[1], now, None, reason="overflow")
        else:
            self._leave(entry, now, "overflow")
            if entry.callback is not None:
                self._finish_request(entry.callback.request.request_id)

    def _leave_if_empty(self, now: float) -> None:
        for q in self._queues.values():
            if q.config.leave_when_empty and q.waiting and not self._staffed(q):
                for key in list(q.waiting):
                    entry = self._entries[key[3]]
                    if entry.state == "waiting":
                        self._overflow(entry, now, "no-agents")

    def _announce(self, entry: _Entry, now: float) -> None:
        q = self._queues[entry.queue]
        position, low, high = self.estimate_wait(entry.id, now=now)
        self._out.append(Announce(entry.id, q.config.name, position, low, high))
        if q.config.announce_frequency > 0:
            entry.next_announce = now + q.config.announce_frequency
            self._push_timer(entry.next_announce, "announce", entry.id)

    def _end_wrapup(self, agent: _Agent, iid: str, now: float) -> None:
        kind, _ = agent.wrapups.pop(iid)
        agent.add_load(kind, -1)
        self._touched.add(agent.id)
        self._agent_maybe_idle(agent, now)

    def _agent_maybe_idle(self, agent: _Agent, now: float) -> None:
        if agent.busy_total() == 0:
            agent.idle_since = now

    def _withdraw_offers(self, entry: _Entry, now: float, reason: str) -> list[_Agent]:
        """Release every outstanding offer of ``entry``; returns the freed agents, which the caller
        offers new work (``_retry_agents``) only after it has settled ``entry``'s own state."""
        freed = []
        for agent_id in list(entry.offers):
            agent = self._agents[agent_id]
            del entry.offers[agent_id]
            agent.offers.pop(entry.id, None)
            agent.add_load(entry.kind, -1)
            self._touched.add(agent_id)
            self._out.append(CancelOffer(entry.id, agent_id, reason))
            self._agent_maybe_idle(agent, now)
            freed.append(agent)
        return freed

    def _retry_agents(self, agents: list[_Agent], now: float) -> None:
        for agent in agents:
            self._try_agent(agent, now)

    def _cancel_agent_offers(self, agent: _Agent, now: float, reason: str) -> None:
        for iid in list(agent.offers):
            entry = self._entries[iid]
            del entry.offers[agent.id]
            del agent.offers[iid]
            agent.add_load(entry.kind, -1)
            self._out.append(CancelOffer(iid, agent.id, reason))
            if not entry.offers:
                entry.state = "waiting"
                self._try_entry(entry, now)

    def _offer_failed(self, entry: _Entry, agent: _Agent, now: float, cause: str) -> None:
        q = self._queues[entry.queue]
        del entry.offers[agent.id]
        del agent.offers[entry.id]
        agent.add_load(entry.kind, -1)
        self._touched.add(agent.id)
        entry.tried[agent.id] = now + q.config.retry  # others first; then this agent may get it again
        self._push_timer(entry.tried[agent.id], "retry", entry.id)
        self._out.append(CancelOffer(entry.id, agent.id, "timeout" if cause == "no-answer" else cause))
        self._out.append(AgentRingNoAnswer(entry.id, agent.id, q.config.name, now - entry.offered_at, cause))
        agent.missed += 1
        if q.config.autopause_after and agent.missed >= q.config.autopause_after and agent.state == "available":
            agent.state = "paused"
            agent.pause_reason = f"auto: {agent.missed} missed offers"
            self._out.append(AgentPauseChanged(agent.id, True, agent.pause_reason))
        self._agent_maybe_idle(agent, now)
        if not entry.offers:
            entry.state = "waiting"
            if q.config.max_wait is not None and now - entry.joined >= q.config.max_wait:
                self._overflow(entry, now, "max-wait")
            else:
                self._try_entry(entry, now)
        self._try_agent(agent, now)

    # --------------------------------------------------------------------------------- decisions

    def _stage_flags(self, agent: _Agent, q: _Queue) -> tuple[bool, ...]:
        """Whether ``agent`` may take ``q``'s callers at each relaxation stage (cached)."""
        key = (agent.id, q.config.name)
        flags = self._eligibility.get(key)
        if flags is None:
            members = q.config.members
            flags = tuple((agent.id in members or agent.id in extra)
                          and (target is None or target.evaluate(agent.config.skills))
                          for _, target, extra in q.config.stages())
            self._eligibility[key] = flags
        return flags

    def _entry_ready(self, entry: _Entry, now: float) -> bool:
        cb = entry.callback
        if cb is None:
            return True
        if cb.not_before > now:
            return False
        return cb.request.window is None or cb.request.window[0] <= now < cb.request.window[1]

    def _try_entry(self, entry: _Entry, now: float) -> None:
        """Offer ``entry`` to the best free eligible agent(s), if any (and if nobody ahead could have
        them: an arriving caller only takes agents that no earlier caller can use)."""
        if entry.state != "waiting" or not self._entry_ready(entry, now):
            return
        q = self._queues[entry.queue]
        stage = q.config.target_at(now - entry.arrived)
        index = stage[0]
        candidates = []
        kind, tried, agents = entry.kind, entry.tried, self._agents
        for agent_id in q.pool:
            agent = agents.get(agent_id)
            # the common refusals first, cheaply: not available, or full on this channel
            if agent is None or agent.state != "available" or \
                    agent.load.get(kind, 0) >= agent.config.channels.get(kind, 0):
                continue
            if not agent.can_take(kind) or not self._stage_flags(agent, q)[index] or tried.get(agent_id, 0.0) > now:
                continue
            candidates.append(agent)
        if not candidates:
            return
        self._offer(q, entry, candidates, stage, now)

    def _first_in_line(self, agent: _Agent, entry: _Entry, now: float) -> bool:
        """No caller ranked ahead of ``entry`` in the agent's queues could take this agent now."""
        for name in self._agent_queues.get(agent.id, ()):
            waiting = self._queues[name].waiting
            if waiting and waiting[0] < entry.key:
                return self._best_entry_for(agent, now, entry.kind) is entry
        return True

    def _offer(self, q: _Queue, entry: _Entry, candidates: list[_Agent], stage: Any, now: float) -> None:
        _, target, _ = stage
        skills = target.names if target is not None else frozenset()
        ranked = rank_candidates(q, candidates, now, self._rng, skills)
        # an earlier caller of higher rank across the agents' queues gets them first
        held: set[str] = set()
        everyone = q.config.strategy == "ring-all" or self._chooser is not None
        fair = []
        for agent in ranked:
            if self._first_in_line(agent, entry, now):
                fair.append(agent)
                if not everyone:
                    fair.extend(a for a in ranked if a is not agent and a.id not in held)
                    break
            else:
                held.add(agent.id)
        ranked = fair
        if not ranked:
            return
        self.decisions += 1
        if q.config.strategy == "ring-all":
            chosen = ranked
            why = "ring-all: every free eligible member rings"
        else:
            pick = ranked[0]
            if self._chooser is not None:
                override = self._chooser(entry.id, q.config.name, [a.id for a in ranked])
                if override is not None:
                    pick = next((a for a in ranked if a.id == override), pick)
            chosen = [pick]
            why = f"{q.config.strategy}: {describe(q, pick, now, skills)}"
            if pick is not ranked[0]:
                why += " (chosen by a decision hook)"
        explanation = None
        if self._explain:
            not_chosen = self._reasons(q, entry, now, {a.id for a in chosen}, ranked, skills, held)
            explanation = Explanation(q.config.strategy, tuple(a.id for a in chosen), why, not_chosen)
        timeout = q.config.timeout if entry.kind == "voice" else q.config.reservation_timeout
        expires = now + timeout
        entry.state = "offered"
        entry.offered_at = now
        callback = entry.callback.request.request_id if entry.callback else None
        for agent in chosen:
            entry.offers[agent.id] = expires
            agent.offers[entry.id] = entry.kind
            agent.add_load(entry.kind, 1)
            self._touched.add(agent.id)
            self._push_timer(expires, "offer", entry.id, agent.id)
            self._out.append(Offer(entry.id, agent.id, q.config.name, entry.kind, expires, explanation, callback))
        if q.config.strategy == "round-robin":
            q.rr_last = chosen[0].id

    def _reasons(self, q: _Queue, entry: _Entry, now: float, chosen: set[str],
                 ranked: list[_Agent] | None = None, skills: frozenset[str] = frozenset(),
                 held: set[str] | frozenset[str] = frozenset(),
                 fallback: str = "free too, but the offer went to the agent who just became free") -> dict[str, str]:
        stage = q.config.target_at(now - entry.arrived)
        _, target, extra = stage
        ranks = {a.id: i for i, a in enumerate(ranked or [])}
        reasons: dict[str, str] = {}
        for agent_id in q.order:
            if agent_id in chosen:
                continue
            agent = self._agents.get(agent_id)
            if agent is None:
                reasons[agent_id] = "not configured"
            elif agent_id not in q.config.members and agent_id not in extra:
                reasons[agent_id] = "overflow pool not added yet"
            elif not self._stage_flags(agent, q)[stage[0]]:
                cache_key = (agent_id, q.config.name, stage[0])
                if cache_key not in self._mismatch:
                    self._mismatch[cache_key] = f"skills: {target.explain(agent.config.skills)}" \
                        if target is not None else "not a member"
                reasons[agent_id] = self._mismatch[cache_key]
            elif not agent.can_take(entry.kind):
                reasons[agent_id] = agent.why_not(entry.kind)
            elif entry.tried.get(agent_id, 0.0) > now:
                reasons[agent_id] = "already offered this interaction (missed or declined)"
            elif agent_id in held:
                reasons[agent_id] = "kept for a caller ahead in another queue"
            elif agent_id in ranks:
                reasons[agent_id] = f"ranked #{ranks[agent_id] + 1} by {q.config.strategy} " \
                                    f"({describe(q, agent, now, skills)})"
            else:
                reasons[agent_id] = fallback
        return reasons

    def _best_entry_for(self, agent: _Agent, now: float, kind: str | None) -> _Entry | None:
        """The highest-priority, longest-waiting interaction across the agent's queues that the agent
        can take now (``kind`` limits the channel)."""
        if kind is not None:
            kinds: Iterable[str] = (kind,)
        else:
            kinds = [k for k in agent.config.channels if agent.can_take(k)]
            if not kinds:
                return None
        best: _Entry | None = None
        entries = self._entries
        for name in self._agent_queues.get(agent.id, ()):
            q = self._queues[name]
            waiting = q.waiting
            if not waiting or (best is not None and waiting[0] > best.key):
                continue
            flags = self._stage_flags(agent, q)
            if not any(flags):
                continue  # never eligible here: skip the whole queue
            every_stage = all(flags)
            cutoff = None
            if not every_stage:
                first = flags.index(True)
                if first > 0 and all(flags[first:]):
                    # eligible only once relaxed far enough: within a priority band callers are in
                    # arrival order, so only those who arrived before the cutoff can match
                    cutoff = now - q.config.relax[first - 1].after
            i, size = 0, len(waiting)
            while i < size:
                key = waiting[i]
                if best is not None and key > best.key:
                    break
                if cutoff is not None and key[1] > cutoff:
                    i = bisect.bisect_left(waiting, (key[0] + 1,), i)  # jump to the next priority band
                    continue
                i += 1
                entry = entries[key[3]]
                if entry.state != "waiting" or entry.kind not in kinds or entry.tried.get(agent.id, 0.0) > now:
                    continue
                if entry.callback is not None and not self._entry_ready(entry, now):
                    continue
                if cutoff is None and not every_stage and not flags[q.config.stage_at(now - entry.arrived)]:
                    continue
                best = entry
                break
        return best

    def _try_agent(self, agent: _Agent, now: float) -> None:
        """Give a freed agent the best waiting interaction(s) it can take, until it is full."""
        for _ in range(64):  # bounded: each round makes one offer
            if agent.state != "available" or agent.retired:
                return
            kinds = [k for k in agent.config.channels if agent.can_take(k)]
            if not kinds:
                return
            entry = self._best_entry_for(agent, now, None)
            if entry is None:
                return
            q = self._queues[entry.queue]
            stage = q.config.target_at(now - entry.arrived)
            if q.config.strategy == "ring-all":
                self._try_entry(entry, now)  # rings every free member, this agent included
                if entry.id not in agent.offers:
                    return
            else:
                self._offer(q, entry, [agent], stage, now)

    def _dispatch_all(self, now: float) -> None:
        for agent in list(self._agents.values()):
            self._try_agent(agent, now)

    # ------------------------------------------------------------------- snapshot, restore, checks

    def snapshot(self) -> dict[str, Any]:
        """JSON-able routing state; see ``_persist.snapshot``."""
        return _persist.snapshot(self)

    def restore(self, data: dict[str, Any], *, now: float, keep_live_voice: bool = False) -> list[RouterEvent]:
        """Load a :meth:`snapshot` into a router built from the current config; see ``_persist.restore``."""
        return _persist.restore(self, data, now=now, keep_live_voice=keep_live_voice)

    def check_invariants(self) -> None:
        """Raise AssertionError when a rule of the module docstring is broken (used by the tests)."""
        _invariants.check_invariants(self)
