"""Agent figures measured from the agents' own events in the queue log: time in each state,
occupancy and after-call work (ACW).

The router announces every change of an agent's overall activity as ``QueueMemberStatus``
(``Status``: logged_out, available, paused, ringing, busy, wrapup). Time between two such events is
time spent in the first state. Nothing before an agent's first event in the rows is counted: the
state then is unknown.

- occupancy = (busy + wrapup) / (available + ringing + busy + wrapup): the share of the logged-in,
  not paused time spent handling contacts (talking or after-call work);
- measured ACW of one contact = the time the agent then spent in ``wrapup`` after its
  ``AgentComplete``, ended by the agent's next status that is not ``wrapup`` (0 when the agent went
  straight back to ``available`` or stayed ``busy`` with another conversation).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

HANDLING = ("busy", "wrapup")
STAFFED = ("available", "ringing", "busy", "wrapup")


@dataclass
class _PendingWrapup:
    queue: str
    interaction: str | None
    completed_at: float
    wrap_started: float | None  # when the agent was seen entering (or already in) wrapup
    measured: float = 0.0


@dataclass
class AgentTime:
    """One agent's seconds per status, and the status they were last seen in (and since when)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    status: str | None = None
    since: float | None = None

    def occupancy(self) -> float | None:
        staffed = sum(self.seconds.get(s, 0.0) for s in STAFFED)
        handling = sum(self.seconds.get(s, 0.0) for s in HANDLING)
        return round(handling / staffed, 4) if staffed > 0 else None


@dataclass
class AgentTimeline:
    agents: dict[str, AgentTime]
    #: measured ACW per finished contact: (agent, queue, interaction id, time of AgentComplete, seconds)
    wrapups: list[tuple[str, str, str | None, float, float]]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def agent_timeline(events: Iterable[Mapping[str, Any]], *, until: float | None = None) -> AgentTimeline:
    """Walk the rows (in log order) and measure time in state and ACW; open periods end at ``until``
    (default: the last row's time)."""
    agents: dict[str, AgentTime] = defaultdict(AgentTime)
    pending: dict[str, _PendingWrapup] = {}
    wrapups: list[tuple[str, str, str | None, float, float]] = []
    last = None

    def finish(agent: str, at: float) -> None:
        item = pending.pop(agent, None)
        if item is None:
            return
        if item.wrap_started is not None:
            item.measured += max(0.0, at - item.wrap_started)
        wrapups.append((agent, item.queue, item.interaction, item.completed_at, item.measured))

    for row in events:
        ts = _number(row.get("ts"))
        if ts is None:
            continue
        last = ts if last is None else max(last, ts)
        fields = row.get("fields") or {}
        agent = str(fields.get("Agent") or "")
        if not agent:
            continue
        name = row.get("event")
        if name == "QueueMemberStatus":
            status = str(fields.get("Status") or "")
            if not status:
                continue
            figures = agents[agent]
            if figures.status is not None and figures.since is not None:
                figures.seconds[figures.status] += max(0.0, ts - figures.since)
            if figures.status != status:
                figures.status, figures.since = status, ts
            else:
                figures.since = ts
            item = pending.get(agent)
            if item is not None:
                if status == "wrapup":
                    if item.wrap_started is None:
                        item.wrap_started = ts
                else:
                    finish(agent, ts)
        elif name == "AgentComplete":
            finish(agent, ts)  # a second conversation ended while the first was still in wrap-up
            current = agents[agent].status if agent in agents else None
            pending[agent] = _PendingWrapup(str(fields.get("Queue") or ""), row.get("interaction"), ts,
                                            ts if current == "wrapup" else None)
    end = until if until is not None else last
    if end is not None:
        for agent, figures in agents.items():
            if figures.status is not None and figures.since is not None and end > figures.since:
                figures.seconds[figures.status] += end - figures.since
        for agent in list(pending):
            finish(agent, end)  # still wrapping up: measured so far; never in wrap-up: 0
    return AgentTimeline(dict(agents), wrapups)
