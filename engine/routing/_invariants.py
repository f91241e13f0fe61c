"""The rules the router must never break, checked after every step by the tests."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ._router import Router


def check_invariants(self: Router) -> None:
    """Raise AssertionError when a rule of the module docstring is broken (used by the tests)."""
    live_offers = {(t[3], t[4]) for t in self._timers if t[2] == "offer" and self._timer_live(t)}
    for agent in self._agents.values():
        counted: dict[str, int] = {}
        for kind in list(agent.offers.values()) + list(agent.active.values()) + \
                [k for k, _ in agent.wrapups.values()]:
            counted[kind] = counted.get(kind, 0) + 1
        for kind in set(counted) | set(agent.load):
            assert counted.get(kind, 0) == agent.load.get(kind, 0), \
                f"agent {agent.id}: {kind} load {agent.load.get(kind)} != {counted.get(kind, 0)}"
        for kind, used in counted.items():
            assert used <= agent.config.channels.get(kind, 0), \
                f"agent {agent.id} above {kind} capacity: {used}"
        for iid in agent.offers:
            entry = self._entries.get(iid)
            assert entry is not None and agent.id in entry.offers, f"agent {agent.id}: stale offer {iid}"
        for iid in agent.active:
            entry = self._entries.get(iid)
            assert entry is not None and entry.agent == agent.id and entry.state in ("active", "dialing"), \
                f"agent {agent.id}: stale active {iid}"
        if agent.config.voice_blocks_others and counted.get("voice"):
            pass  # other channels may have been taken before the voice call: allowed
    for entry in self._entries.values():
        q = self._queues[entry.queue]
        in_queue = entry.state in ("waiting", "offered", "dialing")  # a callback keeps its place
        index = bisect.bisect_left(q.waiting, entry.key)
        present = index < len(q.waiting) and q.waiting[index] == entry.key
        assert present == in_queue, f"interaction {entry.id} ({entry.state}) queue membership wrong"
        if entry.state == "offered":
            assert entry.offers, f"interaction {entry.id} offered to nobody"
        else:
            assert not entry.offers, f"interaction {entry.id} ({entry.state}) still has offers"
        if q.config.strategy != "ring-all":
            assert len(entry.offers) <= 1, f"interaction {entry.id} offered to {sorted(entry.offers)}"
        for agent_id in entry.offers:
            assert entry.id in self._agents[agent_id].offers, f"offer {entry.id}->{agent_id} one-sided"
            assert (entry.id, agent_id) in live_offers, f"offer {entry.id}->{agent_id} has no timer"
    for q in self._queues.values():
        assert q.waiting == sorted(q.waiting), f"queue {q.config.name} out of order"
        for key in q.waiting:
            assert key[3] in self._entries, f"queue {q.config.name} holds a gone interaction"
    for agent in self._agents.values():
        for iid, (_, until) in agent.wrapups.items():
            assert any(t[2] == "wrapup" and t[3] == agent.id and t[4] == iid and t[0] == until
                       for t in self._timers), f"agent {agent.id} wrap-up {iid} has no timer"
