"""Snapshot and restore of routing state (JSON-able), so a restart loses no callbacks or messages.

Written as functions of the router (``Router.snapshot``/``Router.restore`` call them) to keep the
decision code and the persistence format apart.
"""

from __future__ import annotations

import bisect
import itertools
from typing import TYPE_CHECKING, Any

from ._events import JoinRefused, RouterEvent
from ._state import CallbackRequest, RoutingError, _Callback, _Entry

if TYPE_CHECKING:  # pragma: no cover
    from ._router import Router

SNAPSHOT_VERSION = 1


def snapshot(self: Router) -> dict[str, Any]:
    """JSON-able routing state: waiting interactions (with callbacks, in order), active messaging
    work, agents' presence. Live voice legs are recorded too; :meth:`restore` decides about them."""
    entries = []
    for entry in self._entries.values():
        cb = entry.callback
        entries.append({
            "id": entry.id, "queue": entry.queue, "kind": entry.kind, "priority": entry.priority,
            "arrived": entry.arrived, "seq": entry.seq, "joined": entry.joined,
            "attributes": entry.attributes, "state": entry.state, "agent": entry.agent,
            "connected": entry.connected,
            "callback": None if cb is None else {
                "request_id": cb.request.request_id, "number": cb.request.number,
                "window": list(cb.request.window) if cb.request.window else None,
                "attempts": cb.attempts, "not_before": cb.not_before, "dialing": cb.dialing},
        })
    entries.sort(key=lambda e: e["seq"])
    return {
        "version": SNAPSHOT_VERSION,
        "entries": entries,
        "agents": {a.id: {"state": a.state, "reason": a.pause_reason, "idle_since": a.idle_since,
                          "answered": a.answered, "talk_time": a.talk_time}
                   for a in self._agents.values()},
        "queues": {q.config.name: {"rr_last": q.rr_last, "calls": q.calls, "talk": q.talk,
                                   "handle_times": list(q.handle_times)}
                   for q in self._queues.values()},
        "finished_requests": list(self._finished_requests)[-10_000:],
    }

def restore(self: Router, data: dict[str, Any], *, now: float, keep_live_voice: bool = False) -> list[RouterEvent]:
    """Load a :meth:`snapshot` into a router built from the current config (no interactions yet).

    A damaged snapshot raises :class:`RoutingError` (build a fresh router and start empty, or from an
    older snapshot); it never raises anything else."""
    if not isinstance(data, dict):
        raise RoutingError(f"snapshot must be a JSON object, got {type(data).__name__}")
    try:
        return _restore(self, data, now=now, keep_live_voice=keep_live_voice)
    except RoutingError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise RoutingError(f"snapshot is damaged: {type(err).__name__}: {err}") from None


def _restore(self: Router, data: dict[str, Any], *, now: float, keep_live_voice: bool = False) -> list[RouterEvent]:
    """Load a :meth:`snapshot` into a router built from the current config (no interactions yet).

    Callbacks and messages keep their place and attempt count. A callback whose dial was in flight
    goes back to waiting; its next :class:`DialCallback` reuses the same ``attempt_id`` so the
    dialer can tell a replay from a new attempt. Offers are re-made from scratch. Live voice legs
    (callers on hold, calls in progress) did not survive a restart and are dropped unless
    ``keep_live_voice``. Interactions of queues that no longer exist are returned as JoinRefused."""
    if data.get("version") != SNAPSHOT_VERSION:
        raise RoutingError(f"snapshot version {data.get('version')!r} is not {SNAPSHOT_VERSION}")
    if self._entries:
        raise RoutingError("restore() needs a router without interactions")
    for agent_id, info in data.get("agents", {}).items():
        agent = self._agents.get(agent_id)
        if agent is None:
            continue
        agent.state = info.get("state", agent.state)
        agent.pause_reason = info.get("reason", "")
        agent.idle_since = float(info.get("idle_since", now))
        agent.answered = int(info.get("answered", 0))
        agent.talk_time = float(info.get("talk_time", 0.0))
        self._touched.add(agent_id)
    for name, info in data.get("queues", {}).items():
        q = self._queues.get(name)
        if q is None:
            continue
        q.rr_last = info.get("rr_last")
        q.calls.update(info.get("calls", {}))
        q.talk.update(info.get("talk", {}))
        q.handle_times.extend(info.get("handle_times", []))
    for request_id in data.get("finished_requests", []):
        self._finished_requests[request_id] = None
    max_seq = -1
    pending: list[_Entry] = []
    for item in data.get("entries", []):
        max_seq = max(max_seq, int(item["seq"]))
        q = self._queues.get(item["queue"])
        live_voice = item["kind"] == "voice" and item["callback"] is None
        if live_voice and not keep_live_voice:
            continue
        if q is None:
            self._out.append(JoinRefused(item["id"], item["queue"], "unknown-queue"))
            continue
        cb_raw = item["callback"]
        cb = None
        if cb_raw is not None:
            window = tuple(cb_raw["window"]) if cb_raw["window"] else None
            cb = _Callback(CallbackRequest(cb_raw["request_id"], cb_raw["number"], window),  # type: ignore[arg-type]
                           attempts=int(cb_raw["attempts"]), not_before=float(cb_raw["not_before"]))
            self._requests[cb.request.request_id] = item["id"]
        entry = _Entry(item["id"], q.config.name, item["kind"], int(item["priority"]), float(item["arrived"]),
                       int(item["seq"]), dict(item["attributes"]), float(item["joined"]), 0, callback=cb)
        if item["state"] == "active" and item["agent"] in self._agents and (not live_voice or keep_live_voice):
            agent = self._agents[item["agent"]]
            entry.state = "active"
            entry.agent = agent.id
            entry.connected = float(item["connected"])
            agent.active[entry.id] = entry.kind
            agent.add_load(entry.kind, 1)
            self._entries[entry.id] = entry
            self._touched.add(agent.id)
            continue
        bisect.insort(q.waiting, entry.key)
        entry.original_position = self._position(q, entry)
        self._entries[entry.id] = entry
        pending.append(entry)
    self._seq = itertools.count(max_seq + 1)
    for entry in pending:
        self._schedule_entry_timers(entry, now)
    self._dispatch_all(now)
    for entry in pending:
        self._try_entry(entry, now)
    return self._flush()
