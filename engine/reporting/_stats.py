"""Contact-center figures from the queue event log: pure functions, no I/O.

Definitions (CONTRACT.md and common practice):

- offered: callers that joined the queue; answered: reached an agent (``AgentConnect``);
  abandoned: hung up while waiting (``QueueCallerAbandon``); a *short* abandon (waited less than
  ``short_abandon`` seconds) is counted apart and left out of service level and abandon rate.
- service level = answered within ``threshold`` / (answered + abandoned after ``threshold``);
- ASA = mean hold time of answered callers; ACW = mean after-call work *measured* from the agents'
  wrap-up periods (see ``_agents``); AHT = mean talk time + ACW;
- abandon rate = abandoned (not short) / (offered - short abandons);
- occupancy of an agent, measured ACW: ``_agents``; contacts, handle time and first-contact resolution
  per channel and campaign: ``_contacts``.

Breakdowns: per queue, per agent, per interval (and queue), per channel (the interaction's kind from
its ``QueueCallerJoin``, plus contact figures from ``Hangup`` rows) and per campaign.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._agents import AgentTime, agent_timeline
from ._contacts import DEFAULT_FCR_WINDOW, contact_figures


@dataclass
class QueueFigures:
    offered: int = 0
    answered: int = 0
    answered_in_threshold: int = 0
    abandoned: int = 0
    abandoned_after_threshold: int = 0
    short_abandoned: int = 0
    hold_total: float = 0.0
    talk_total: float = 0.0
    completed: int = 0
    acw_total: float = 0.0
    acw_count: int = 0

    def as_json(self) -> dict[str, Any]:
        sl_base = self.answered + self.abandoned_after_threshold
        rate_base = self.offered - self.short_abandoned
        return {
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "answered_in_threshold": self.answered_in_threshold,
            "abandoned_after_threshold": self.abandoned_after_threshold,
            "service_level": round(self.answered_in_threshold / sl_base, 4) if sl_base else None,
            "asa": round(self.hold_total / self.answered, 2) if self.answered else None,
            "acw": round(self.acw(), 2) if self.completed else None,
            "aht": round(self.talk_total / self.completed + self.acw(), 2) if self.completed else None,
            "abandon_rate": round(self.abandoned / rate_base, 4) if rate_base > 0 else None,
        }

    def acw(self) -> float:
        return self.acw_total / self.acw_count if self.acw_count else 0.0


@dataclass
class AgentFigures:
    answered: int = 0
    talk_time: float = 0.0
    completed: int = 0
    acw_time: float = 0.0

    def as_json(self, time: AgentTime | None = None) -> dict[str, Any]:
        handled = self.talk_time + self.acw_time
        return {
            "answered": self.answered, "talk_time": round(self.talk_time, 2), "completed": self.completed,
            "acw_time": round(self.acw_time, 2),
            "acw": round(self.acw_time / self.completed, 2) if self.completed else None,
            "aht": round(handled / self.completed, 2) if self.completed else None,
            "occupancy": time.occupancy() if time else None,
            "state_seconds": {k: round(v, 1) for k, v in sorted(time.seconds.items())} if time else {},
            "state": time.status if time else None,
            "state_since": time.since if time else None,
        }  # fmt: skip


@dataclass
class Report:
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    intervals: list[dict[str, Any]] = field(default_factory=list)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"queues": self.queues, "agents": self.agents, "intervals": self.intervals,
                "channels": self.channels, "campaigns": self.campaigns}


def _f(fields: Mapping[str, Any], key: str) -> float:
    value = fields.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def compute(
    events: Iterable[Mapping[str, Any]],
    *,
    threshold: float | Mapping[str, float] = 20.0,
    short_abandon: float = 5.0,
    interval: float = 1800.0,
    now: float | None = None,
    until: float | None = None,
    fcr_window: float = DEFAULT_FCR_WINDOW,
    later: Iterable[Mapping[str, Any]] = (),
) -> Report:
    """Figures per queue, agent, interval, channel and campaign from queue-log rows.

    Each row has ``ts`` (Unix seconds), ``event`` (the AMI name), ``fields`` (the event's fields) and
    optionally ``interaction`` (its id). ``threshold`` may be one number or one per queue (its
    ``service_level_seconds``). ``now`` decides which FCR windows have closed (default: the last row);
    ``later`` are rows after the period, used only to see repeat contacts.
    """
    rows = [r for r in events if isinstance(r.get("ts"), int | float) and not isinstance(r.get("ts"), bool)]
    per_queue: dict[str, QueueFigures] = defaultdict(QueueFigures)
    per_agent: dict[str, AgentFigures] = defaultdict(AgentFigures)
    per_slot: dict[tuple[float, str], QueueFigures] = defaultdict(QueueFigures)
    per_kind: dict[str, QueueFigures] = defaultdict(QueueFigures)
    kind_of: dict[str, str] = {}
    joined_slot: dict[tuple[str, str], float] = {}

    def limit(queue: str) -> float:
        return threshold if isinstance(threshold, (int, float)) else threshold.get(queue, 20.0)

    for row in rows:
        name = row["event"]
        fields = row.get("fields") or {}
        queue = str(fields.get("Queue", ""))
        if not queue or queue.startswith("agent:"):
            continue  # direct-to-agent routes are not queues people report on
        iid = row.get("interaction")
        if name == "QueueCallerJoin" and iid:
            kind_of[iid] = str(fields.get("Kind") or "voice")[:32]
        slot = (row["ts"] // interval) * interval
        if iid and name in ("QueueCallerJoin", "AgentConnect", "QueueCallerAbandon"):
            # A caller's answer or abandon counts in the interval they joined in (as they were offered
            # there); one who joined before the period is counted as offered when first seen.
            if (iid, queue) in joined_slot:
                slot = joined_slot[(iid, queue)]
            else:
                joined_slot[(iid, queue)] = slot
                if name != "QueueCallerJoin":
                    for t in (per_queue[queue], per_slot[(slot, queue)], per_kind[kind_of.get(iid, "unknown")]):
                        t.offered += 1
        targets = (per_queue[queue], per_slot[(slot, queue)], per_kind[kind_of.get(iid or "", "unknown")])
        if name == "QueueCallerJoin":
            for t in targets:
                t.offered += 1
        elif name == "AgentConnect":
            hold = _f(fields, "HoldTime")
            for t in targets:
                t.answered += 1
                t.hold_total += hold
                t.answered_in_threshold += hold <= limit(queue)
            per_agent[str(fields.get("Agent", ""))].answered += 1
        elif name == "QueueCallerAbandon":
            hold = _f(fields, "HoldTime")
            for t in targets:
                if hold < short_abandon:
                    t.short_abandoned += 1
                else:
                    t.abandoned += 1
                    t.abandoned_after_threshold += hold > limit(queue)
        elif name == "AgentComplete":
            talk = _f(fields, "TalkTime")
            for t in targets:
                t.completed += 1
                t.talk_total += talk
            agent = per_agent[str(fields.get("Agent", ""))]
            agent.completed += 1
            agent.talk_time += talk
    timeline = agent_timeline(rows, until=until)
    for agent_id, queue, iid, completed_at, seconds in timeline.wrapups:
        per_agent[agent_id].acw_time += seconds
        if not queue or queue.startswith("agent:"):
            continue
        slot = (completed_at // interval) * interval
        for t in (per_queue[queue], per_slot[(slot, queue)], per_kind[kind_of.get(iid or "", "unknown")]):
            t.acw_total += seconds
            t.acw_count += 1
    for agent_id in timeline.agents:
        per_agent[agent_id]  # agents who only changed state still get their time and occupancy
    last = max((r["ts"] for r in rows), default=0.0)
    contact_channels, campaigns = contact_figures(
        rows, now=now if now is not None else last, fcr_window=fcr_window, later=later)
    channels: dict[str, dict[str, Any]] = {}
    for kind in sorted(set(per_kind) | set(contact_channels)):
        queued = per_kind[kind].as_json() if kind in per_kind else {}
        channels[kind] = {**queued, **contact_channels.get(kind, {})}
    return Report(
        queues={q: f.as_json() for q, f in sorted(per_queue.items())},
        agents={a: f.as_json(timeline.agents.get(a)) for a, f in sorted(per_agent.items()) if a},
        intervals=[{"start": slot, "queue": q, **f.as_json()} for (slot, q), f in sorted(per_slot.items())],
        channels=channels,
        campaigns=campaigns,
    )
