"""How a queue orders its candidate agents. Each strategy returns the candidates best first and a
sentence per agent saying where it ranked and why (for the offer's explanation)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ._router import _Agent, _Queue

__all__ = ["rank_candidates"]

Ranker = Callable[["_Queue", Sequence["_Agent"], float, random.Random, frozenset[str]], list["_Agent"]]


def _member_index(queue: _Queue, agent_id: str) -> int:
    return queue.order.get(agent_id, len(queue.order))


def _longest_idle(queue: _Queue, agents: Sequence[_Agent], now: float, rng: random.Random,
                  skills: frozenset[str]) -> list[_Agent]:
    return sorted(agents, key=lambda a: (a.idle_since, _member_index(queue, a.id)))


def _round_robin(queue: _Queue, agents: Sequence[_Agent], now: float, rng: random.Random,
                 skills: frozenset[str]) -> list[_Agent]:
    # memory: start just after the member offered last time, wrapping around
    size = len(queue.order) + 1
    last = queue.order.get(queue.rr_last, -1) if queue.rr_last is not None else -1
    return sorted(agents, key=lambda a: (_member_index(queue, a.id) - last - 1) % size)


def _fewest_calls(queue: _Queue, agents: Sequence[_Agent], now: float, rng: random.Random,
                  skills: frozenset[str]) -> list[_Agent]:
    return sorted(agents, key=lambda a: (queue.calls.get(a.id, 0), a.idle_since, _member_index(queue, a.id)))


def _least_talk(queue: _Queue, agents: Sequence[_Agent], now: float, rng: random.Random,
                skills: frozenset[str]) -> list[_Agent]:
    return sorted(agents, key=lambda a: (queue.talk.get(a.id, 0.0), a.idle_since, _member_index(queue, a.id)))


def _linear(queue: _Queue, agents: Sequence[_Agent], now: float, rng: random.Random,
            skills: frozenset[str]) -> list[_Agent]:
    return sorted(agents, key=lambda a: _member_index(queue, a.id))


def _random(queue: _Queue, agents: Sequence[_Agent], now: float, rng: random.Random,
            skills: frozenset[str]) -> list[_Agent]:
    shuffled = list(agents)
    rng.shuffle(shuffled)
    return shuffled


def _weighted_random(queue: _Queue, agents: Sequence[_Agent], now: float, rng: random.Random,
                     skills: frozenset[str]) -> list[_Agent]:
    # Efraimidis-Spirakis: sort by u ** (1 / w), i.e. a weighted draw without replacement
    def key(agent: _Agent) -> float:
        weight = queue.config.weights.get(agent.id, agent.config.weight)
        return -(rng.random() ** (1.0 / weight)) if weight > 0 else 1.0
    return sorted(agents, key=key)


def skill_score(agent: _Agent, skills: frozenset[str]) -> float:
    names = skills or agent.config.skills.keys()
    return sum(agent.config.skills.get(name, 0) for name in names)


def _skills(queue: _Queue, agents: Sequence[_Agent], now: float, rng: random.Random,
            skills: frozenset[str]) -> list[_Agent]:
    return sorted(agents, key=lambda a: (-skill_score(a, skills), a.idle_since, _member_index(queue, a.id)))


STRATEGY_RANKERS: dict[str, Ranker] = {
    "ring-all": _longest_idle,
    "longest-idle": _longest_idle,
    "round-robin": _round_robin,
    "fewest-calls": _fewest_calls,
    "least-talk-time": _least_talk,
    "linear": _linear,
    "random": _random,
    "weighted-random": _weighted_random,
    "skills": _skills,
}


def describe(queue: _Queue, agent: _Agent, now: float, skills: frozenset[str]) -> str:
    """The figure the strategy compared, for humans."""
    strategy = queue.config.strategy
    if strategy in ("longest-idle", "ring-all"):
        return f"idle {max(0.0, now - agent.idle_since):.0f} s"
    if strategy == "fewest-calls":
        return f"{queue.calls.get(agent.id, 0)} calls"
    if strategy == "least-talk-time":
        return f"talk time {queue.talk.get(agent.id, 0.0):.0f} s"
    if strategy in ("linear", "round-robin"):
        return f"member #{_member_index(queue, agent.id) + 1}"
    if strategy == "weighted-random":
        return f"weight {queue.config.weights.get(agent.id, agent.config.weight)}"
    if strategy == "skills":
        return f"skill score {skill_score(agent, skills):g}"
    return "random draw"


def rank_candidates(queue: _Queue, agents: Sequence[_Agent], now: float, rng: random.Random,
                    skills: frozenset[str]) -> list[_Agent]:
    return STRATEGY_RANKERS[queue.config.strategy](queue, agents, now, rng, skills)
