"""Erlang B, C and A: the textbook figures the ACD simulator is checked against, and that staffing
tools can use. Pure math (no numpy): exact recursions and a truncated birth-death chain.

Inputs: ``agents`` c, arrival rate ``rate`` (per second), mean handle time ``aht`` (seconds), mean
patience ``patience`` (seconds, Erlang A), threshold ``threshold`` (seconds, service level).

Service level follows CONTRACT.md: answered within the threshold / (answered + abandoned after the
threshold). Without abandonment (Erlang C) that is 1 - P(wait > T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ErlangAResult", "ErlangCResult", "erlang_a", "erlang_b", "erlang_c"]


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability with ``agents`` servers and ``load`` Erlangs offered, no queue."""
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking


@dataclass(frozen=True)
class ErlangCResult:
    wait_probability: float
    service_level: float
    asa: float          # mean wait of all callers (all are answered)
    occupancy: float


def erlang_c(agents: int, rate: float, aht: float, threshold: float) -> ErlangCResult:
    """M/M/c with infinite patience. Needs load = rate * aht < agents."""
    load = rate * aht
    if load >= agents:
        raise ValueError(f"load {load:.2f} Erl needs more than {agents} agents (unstable queue)")
    b = erlang_b(agents, load)
    c = agents * b / (agents - load * (1 - b))
    service_level = 1 - c * math.exp(-(agents - load) * threshold / aht)
    asa = c * aht / (agents - load)
    return ErlangCResult(c, service_level, asa, load / agents)


@dataclass(frozen=True)
class ErlangAResult:
    wait_probability: float      # an arriving caller finds every agent busy
    abandon_probability: float
    service_level: float         # answered within T / (answered + abandoned after T)
    asa: float                   # mean wait of answered callers
    occupancy: float


def _stationary(agents: int, rate: float, mu: float, theta: float, tail: float = 1e-16) -> list[float]:
    """Stationary distribution of the number in system of M/M/c+M, truncated where it is negligible."""
    weights = [1.0]
    n = 0
    total = 1.0
    while True:
        n += 1
        death = min(n, agents) * mu + max(n - agents, 0) * theta
        weights.append(weights[-1] * rate / death)
        total += weights[-1]
        if n > agents and weights[-1] / total < tail:
            break
        if n > 100_000:
            raise ValueError("the queue does not settle (no abandonment and load >= agents?)")
        if weights[-1] > 1e250:  # rescale to stay finite
            weights = [w / 1e250 for w in weights]
            total /= 1e250
    return [w / total for w in weights]


def erlang_a(agents: int, rate: float, aht: float, patience: float, threshold: float) -> ErlangAResult:
    """M/M/c+M (exponential patience), exact up to the truncation of the chain."""
    mu, theta = 1.0 / aht, 1.0 / patience
    pi = _stationary(agents, rate, mu, theta)
    wait_probability = sum(pi[agents:])
    queue_length = sum((n - agents) * p for n, p in enumerate(pi) if n > agents)
    abandon_probability = theta * queue_length / rate
    # A tagged caller arriving to n >= c stands at position j = n - c + 1. It moves up at rate
    # c*mu + (j-1)*theta (a service ends or someone ahead leaves) and abandons at rate theta.
    positions = len(pi) - agents
    served = [0.0] * (positions + 1)         # P(served | position j)
    served_wait = [0.0] * (positions + 1)    # E[wait * 1{served} | position j]
    served[0] = 1.0
    for j in range(1, positions + 1):
        up = agents * mu + (j - 1) * theta
        total = up + theta
        served[j] = up / total * served[j - 1]
        served_wait[j] = up / total * (served[j - 1] / total + served_wait[j - 1])
    arriving = pi[agents:]  # PASTA: arrivals see the stationary distribution
    answered = sum(pi[:agents]) + sum(p * served[j + 1] for j, p in enumerate(arriving))
    asa = sum(p * served_wait[j + 1] for j, p in enumerate(arriving)) / answered
    served_by_t, abandoned_by_t = _transient(agents, mu, theta, arriving, threshold)
    answered_within = sum(pi[:agents]) + served_by_t
    service_level = answered_within / (1.0 - abandoned_by_t)
    occupancy = rate * (1 - abandon_probability) / (agents * mu)
    return ErlangAResult(wait_probability, abandon_probability, service_level, asa, occupancy)


def _transient(agents: int, mu: float, theta: float, start: list[float], horizon: float) -> tuple[float, float]:
    """(served by ``horizon``, abandoned by ``horizon``) for a tagged caller starting at position j+1
    with probability ``start[j]``, by uniformization of the position chain (in steps short enough
    for the Poisson weights to stay representable)."""
    if horizon <= 0 or not start:
        return 0.0, 0.0
    top = agents * mu + len(start) * theta
    steps = max(1, math.ceil(top * horizon / 200))
    state, served, abandoned = list(start), 0.0, 0.0
    for _ in range(steps):
        state, s, a = _propagate(agents, mu, theta, state, top, horizon / steps)
        served += s
        abandoned += a
    return served, abandoned


def _propagate(agents: int, mu: float, theta: float, state: list[float], top: float,
               dt: float) -> tuple[list[float], float, float]:
    """The transient distribution after ``dt`` and the mass served / abandoned meanwhile."""
    positions = len(state)
    mean = top * dt
    poisson = math.exp(-mean)
    result = [p * poisson for p in state]
    current = list(state)
    served_k = abandoned_k = 0.0      # absorbed after k uniformized jumps
    served = abandoned = 0.0          # sum over k of Poisson(k) * absorbed_k
    for k in range(1, int(mean + 12 * math.sqrt(mean + 1) + 30)):
        poisson *= mean / k
        new = [0.0] * positions
        for j, p in enumerate(current):
            if p == 0.0:
                continue
            up = agents * mu + j * theta
            if j == 0:
                served_k += p * up / top
            else:
                new[j - 1] += p * up / top
            abandoned_k += p * theta / top
            new[j] += p * (1.0 - (up + theta) / top)
        current = new
        for j in range(positions):
            result[j] += poisson * current[j]
        served += poisson * served_k
        abandoned += poisson * abandoned_k
    return result, served, abandoned
