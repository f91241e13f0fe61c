"""Erlang C staffing: agents needed per half hour, forecast from the history of the queue event log."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from ..routing.erlang import erlang_c

SLOT = 1800.0


def agents_needed(rate: float, aht: float, *, target: float, threshold: float, max_agents: int = 500) -> int:
    """The fewest agents whose Erlang C service level reaches ``target`` (0 when nobody calls)."""
    if rate <= 0 or aht <= 0:
        return 0
    agents = max(1, int(rate * aht) + 1)
    while agents <= max_agents:
        if erlang_c(agents, rate, aht, threshold).service_level >= target:
            return agents
        agents += 1
    return max_agents


def forecast(
    events: Iterable[Mapping[str, Any]],
    *,
    days: int,
    target: float = 0.8,
    threshold: float = 20.0,
    default_aht: float = 180.0,
    tz_offset: float = 0.0,
) -> list[dict[str, Any]]:
    """Per queue and half hour of the day: mean arrivals over ``days`` of history, AHT, agents needed.

    ``tz_offset`` (seconds east of UTC) puts the half hours in local time.
    """
    arrivals: dict[tuple[str, int], int] = defaultdict(int)
    talk: dict[str, list[float]] = defaultdict(list)
    for row in events:
        fields = row.get("fields") or {}
        queue = str(fields.get("Queue", ""))
        if not queue or queue.startswith("agent:"):
            continue
        if row["event"] == "QueueCallerJoin":
            slot = int(((row["ts"] + tz_offset) % 86400) // SLOT)
            arrivals[(queue, slot)] += 1
        elif row["event"] == "AgentComplete":
            value = fields.get("TalkTime")
            if isinstance(value, (int, float)):
                talk[queue].append(float(value))
    out = []
    for (queue, slot), count in sorted(arrivals.items()):
        rate = count / max(days, 1) / SLOT
        samples = talk.get(queue) or []
        aht = sum(samples) / len(samples) if samples else default_aht
        out.append({
            "queue": queue,
            "slot": f"{slot // 2:02d}:{30 * (slot % 2):02d}",
            "calls": round(count / max(days, 1), 2),
            "aht": round(aht, 1),
            "agents": agents_needed(rate, aht, target=target, threshold=threshold),
        })
    return out


def history_start(days: int, now: float | None = None) -> float:
    return (time.time() if now is None else now) - days * 86400
