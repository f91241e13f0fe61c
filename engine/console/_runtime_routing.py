"""Queue membership changed at run time (a supervisor moves an agent) and personal callback queues.

Both are applied to the routing core as a reconfiguration (``Router.configure``), which keeps every
waiting and active interaction in place. They last **until the next configuration apply** (reload,
restart): the configuration file stays the source of truth, and the console says so. Changes are
kept against the configuration they were made on; after a reload they are forgotten, not re-applied.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ._http import HttpError

log = logging.getLogger("centralita.console.routing")

PERSONAL_PREFIX = "agent:"


class RuntimeRouting:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._base: Any = None  # the Config the overrides below were made against
        self.members: dict[str, list[str]] = {}  # queue -> members now
        self.personal: set[str] = set()  # agents with a personal queue added here

    def _fresh(self) -> None:
        config = getattr(self.engine, "config", None)
        if config is not self._base:
            if self._base is not None and (self.members or self.personal):
                log.info("configuration applied: run-time queue membership changes are dropped")
            self._base = config
            self.members = {}
            self.personal = set()

    def _raw(self) -> dict[str, Any]:
        raw = copy.deepcopy(dict(self.engine.config.raw))
        queues = raw.setdefault("queues", [])
        for queue in queues:
            if queue.get("name") in self.members:
                queue["members"] = list(self.members[queue["name"]])
        return raw

    def _apply(self) -> None:
        from .._acd import routing_input
        from ..routing import build_agents, build_queues

        raw = routing_input(self._raw())
        names = {q.get("name") for q in raw["queues"]}
        for agent in sorted(self.personal):
            if PERSONAL_PREFIX + agent not in names:
                raw["queues"].append({"name": PERSONAL_PREFIX + agent, "strategy": "linear", "members": [agent]})
        acd = self.engine.acd
        acd.apply(acd.router.configure(build_queues(raw), build_agents(raw), now=acd.clock()))

    def queue_members(self, queue: str) -> list[str]:
        self._fresh()
        if queue in self.members:
            return list(self.members[queue])
        for q in self.engine.config.raw.get("queues", []):
            if q.get("name") == queue:
                return list(q.get("members", []))
        raise KeyError(queue)

    def set_member(self, agent: str, queue: str, member: bool) -> list[str]:
        """Add ``agent`` to (or take them out of) ``queue``; returns the queue's members now."""
        if getattr(self.engine, "acd", None) is None or getattr(self.engine, "config", None) is None:
            raise HttpError(501, "this engine cannot change queue membership at run time")
        if agent not in getattr(self.engine, "agent_settings", {}):
            raise KeyError(agent)
        members = self.queue_members(queue)
        if member and agent not in members:
            members.append(agent)
        elif not member and agent in members:
            members.remove(agent)
        self.members[queue] = members
        self._apply()
        self.engine.bus.publish("QueueMemberChanged", Queue=queue, Agent=agent, Member=member, Runtime=True)
        return members

    def personal_queue(self, agent: str) -> str:
        """The one-member queue of ``agent`` (for a callback they own), made if the config has none."""
        self._fresh()
        name = PERSONAL_PREFIX + agent
        if not any(q.get("name") == name for q in self.engine.config.raw.get("queues", [])) and \
                agent not in self.personal:
            from .._acd import routing_input

            if not any(q["name"] == name for q in routing_input(self.engine.config.raw)["queues"]):
                self.personal.add(agent)
                self._apply()
        return name
