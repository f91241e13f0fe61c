"""Contact-center figures from the queue event log: pure functions, no I/O.

Definitions (CONTRACT.md and common practice):

- offered: callers that joined the queue; answered: reached an agent (``AgentConnect``);
  abandoned: hung up while waiting (``QueueCallerAbandon``); a *short* abandon (waited less than
  ``short_abandon`` seconds) is counted apart and left out of service level and abandon rate.
- service level = answered within ``threshold`` / (answered + abandoned after ``threshold``);
- ASA = mean hold time of answered callers; AHT = mean talk time plus the queue's wrap-up;
- abandon rate = abandoned (not short) / (offered - short abandons);
- occupancy of an agent = time talking / (time talking + time available), from the agent's events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


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

    def as_json(self, wrapup: float = 0.0) -> dict[str, Any]:
        sl_base = self.answered + self.abandoned_after_threshold
        rate_base = self.offered - self.short_abandoned
        return {
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "service_level": round(self.answered_in_threshold / sl_base, 4) if sl_base else None,
            "asa": round(self.hold_total / self.answered, 2) if self.answered else None,
            "aht": round(self.talk_total / self.completed + wrapup, 2) if self.completed else None,
            "abandon_rate": round(self.abandoned / rate_base, 4) if rate_base > 0 else None,
        }


@dataclass
class AgentFigures:
    answered: int = 0
    talk_time: float = 0.0
    completed: int = 0

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "aht": round(self.talk_time / self.completed, 2) if self.completed else None}


@dataclass
class Report:
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    intervals: list[dict[str, Any]] = field(default_factory=list)


def _f(fields: Mapping[str, Any], key: str) -> float:
    value = fields.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def compute(
    events: Iterable[Mapping[str, Any]],
    *,
    threshold: float | Mapping[str, float] = 20.0,
    short_abandon: float = 5.0,
    wrapup: Mapping[str, float] | None = None,
    interval: float = 1800.0,
) -> Report:
    """Figures per queue, per agent and per interval from queue-log rows.

    Each row has ``ts`` (Unix seconds), ``event`` (the AMI name) and ``fields`` (the event's fields).
    ``threshold`` may be one number or one per queue (its ``service_level_seconds``).
    """
    wrapup = wrapup or {}
    per_queue: dict[str, QueueFigures] = defaultdict(QueueFigures)
    per_agent: dict[str, AgentFigures] = defaultdict(AgentFigures)
    per_slot: dict[tuple[float, str], QueueFigures] = defaultdict(QueueFigures)

    def limit(queue: str) -> float:
        return threshold if isinstance(threshold, (int, float)) else threshold.get(queue, 20.0)

    for row in events:
        name = row["event"]
        fields = row.get("fields") or {}
        queue = str(fields.get("Queue", ""))
        if not queue or queue.startswith("agent:"):
            continue  # direct-to-agent routes are not queues people report on
        slot = (row["ts"] // interval) * interval
        targets = (per_queue[queue], per_slot[(slot, queue)])
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
    return Report(
        queues={q: f.as_json(wrapup.get(q, 0.0)) for q, f in sorted(per_queue.items())},
        agents={a: f.as_json() for a, f in sorted(per_agent.items()) if a},
        intervals=[{"start": slot, "queue": q, **f.as_json(wrapup.get(q, 0.0))} for (slot, q), f in sorted(per_slot.items())],
    )
