"""``centralita simulate acd SCENARIO.toml [--json]``: the real :class:`Router` on a virtual clock.

One event heap holds arrivals (Poisson per queue), caller patience, ends of conversations and agent
shift changes; the router's own timers (wrap-up, ring timeouts, relaxation, max wait) are merged in
through ``next_timer()``. Agents answer offers at once (or after ``answer_delay`` seconds).

Scenario keys (CONTRACT.md plus extras)::

    duration = 28800            # simulated seconds
    seed = 1
    warmup = 0                  # seconds at the start not counted in the figures
    [[queues]]                  # any [[queues]] key of the engine config, plus:
    name = "q"
    arrival_rate = 200.0        # per hour, Poisson
    handle_time = { dist = "exponential", mean = 180 }
    patience = { dist = "exponential", mean = 300 }     # optional
    service_level_seconds = 20
    wrapup = 0                  # defaults to 0 in the simulator
    priority_share = { 10 = 0.1 }   # optional: a share of callers with that priority
    [[agents]]
    count = 14
    queues = ["q"]
    skills = { es = 80 }        # optional, like [[agents]] in the engine config
    shifts = [[0, 14400]]       # optional: logged in during these [start, end) seconds
    name = "team"               # optional id prefix

Figures: per queue ``offered`` (arrivals), ``answered``, ``abandoned``, ``refused`` (join refused or
overflowed), ``service_level`` (answered within the threshold / (answered + abandoned after it)),
``asa`` (mean wait of answered calls), ``abandon_rate`` (abandoned / offered); overall ``occupancy``
(busy and wrap-up time / logged-in time) and per agent ``handled``, ``talk_time``, ``occupancy``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._config import AgentConfig, RoutingConfigError, build_agents, build_queues
from ._events import AgentComplete, Connect, JoinRefused, Offer, Overflow, QueueCallerAbandon
from ._router import NoSuchOffer, Router, RoutingError

__all__ = ["ScenarioError", "Simulation", "load_scenario", "run_cli", "simulate"]

_SIM_ONLY_QUEUE_KEYS = {"arrival_rate", "handle_time", "patience", "priority_share"}
_DEFAULT_QUEUE = {"wrapup": 0, "timeout": 30}


class ScenarioError(ValueError):
    """The scenario file is invalid; the message names the key."""


Sampler = Callable[[random.Random], float]


def make_sampler(spec: Any, key: str) -> Sampler:
    """A sampler for ``{dist = "exponential", mean = ...}`` and friends (CONTRACT.md)."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        value = float(spec)
        return lambda rng: value
    if not isinstance(spec, dict) or "dist" not in spec:
        raise ScenarioError(f"{key}: expected {{ dist = \"exponential\", mean = ... }}, got {spec!r}")
    dist = spec["dist"]

    def number(name: str, positive: bool = True) -> float:
        value = spec.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (positive and value <= 0) or value < 0:
            raise ScenarioError(f"{key}.{name}: expected a {'positive ' if positive else ''}number, got {value!r}")
        return float(value)

    if dist == "exponential":
        mean = number("mean")
        return lambda rng: rng.expovariate(1.0 / mean)
    if dist == "lognormal":
        mean, sigma = number("mean"), number("sigma", positive=False)
        mu = math.log(mean) - sigma * sigma / 2  # so that the distribution's mean is `mean`
        return lambda rng: rng.lognormvariate(mu, sigma)
    if dist == "fixed":
        value = number("value", positive=False)
        return lambda rng: value
    if dist == "uniform":
        low, high = number("low", positive=False), number("high", positive=False)
        if high < low:
            raise ScenarioError(f"{key}.high: expected high >= low")
        return lambda rng: rng.uniform(low, high)
    raise ScenarioError(f"{key}.dist: unknown distribution {dist!r}, expected exponential, lognormal, "
                        "fixed or uniform")


@dataclass
class _QueueSim:
    name: str
    rate: float                      # per second
    handle: Sampler
    patience: Sampler | None
    threshold: float
    priorities: list[tuple[float, int]] = field(default_factory=list)
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    refused: int = 0
    answered_within: int = 0
    abandoned_after: int = 0
    wait_sum: float = 0.0
    handle_sum: float = 0.0
    estimates: int = 0               # answered callers who got a wait estimate when they joined
    estimate_hits: int = 0           # ... whose real wait fell inside the announced range
    estimate_error: float = 0.0      # sum of |real wait - middle of the range|


@dataclass
class _AgentSim:
    id: str
    shifts: list[tuple[float, float]]
    handled: int = 0
    talk: float = 0.0
    busy: float = 0.0
    logged_in: float = 0.0
    busy_since: float | None = None
    login_since: float | None = None


@dataclass
class _Call:
    queue: str
    arrived: float
    counted: bool
    handle: float = 0.0
    answered: bool = False
    estimate: tuple[float, float] | None = None


@dataclass
class Scenario:
    duration: float
    seed: int
    warmup: float
    answer_delay: float
    measure_estimates: bool
    queues: list[_QueueSim]
    queue_configs: list[Any]
    agents: list[AgentConfig]
    agent_sims: list[_AgentSim]


def load_scenario(data: dict[str, Any]) -> Scenario:
    """Check and build a scenario from its parsed TOML; raises :class:`ScenarioError` naming the key."""
    def positive(key: str, default: float | None = None) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
            raise ScenarioError(f"{key}: expected a number >= 0, got {value!r}")
        return float(value)

    duration = positive("duration", 28800)
    seed = data.get("seed", 1)
    if not isinstance(seed, int):
        raise ScenarioError(f"seed: expected an integer, got {seed!r}")
    warmup = positive("warmup", 0)
    answer_delay = positive("answer_delay", 0)
    measure_estimates = bool(data.get("measure_wait_estimates", False))
    raw_queues = data.get("queues")
    if not isinstance(raw_queues, list) or not raw_queues:
        raise ScenarioError("queues: expected at least one [[queues]] table")
    raw_groups = data.get("agents", [])
    if not isinstance(raw_groups, list):
        raise ScenarioError("agents: expected [[agents]] tables")
    agents: list[AgentConfig] = []
    sims: list[_AgentSim] = []
    members: dict[str, list[str]] = {}
    queue_names = [q.get("name") for q in raw_queues if isinstance(q, dict)]
    for i, group in enumerate(raw_groups):
        where = f"agents[{i}]"
        if not isinstance(group, dict):
            raise ScenarioError(f"{where}: expected a table")
        count = group.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ScenarioError(f"{where}.count: expected an integer >= 0, got {count!r}")
        queues = group.get("queues", [])
        if not isinstance(queues, list):
            raise ScenarioError(f"{where}.queues: expected a list of queue names")
        for queue in queues:
            if queue not in queue_names:
                raise ScenarioError(f"{where}.queues: no queue named {queue!r}")
        shifts_raw = group.get("shifts", [[0, duration]])
        try:
            shifts = [(float(a), float(b)) for a, b in shifts_raw]
            if any(not (math.isfinite(a) and math.isfinite(b)) or b < a for a, b in shifts):
                raise ValueError
        except (TypeError, ValueError):
            raise ScenarioError(f"{where}.shifts: expected a list of [start, end] seconds") from None
        prefix = str(group.get("name", f"g{i}"))
        template = {key: group[key] for key in ("skills", "channels", "wrapup") if key in group}
        try:  # the same checks as [[agents]] in the engine config
            built = build_agents({"agents": [{"id": prefix, **template}]})[0]
        except RoutingConfigError as err:
            raise ScenarioError(f"{where}.{err.key.split('.', 1)[1]}: {err.message}"
                                if "." in err.key else f"{where}: {err.message}") from None
        for k in range(count):
            agent_id = f"{prefix}-{k + 1}"
            agents.append(AgentConfig(id=agent_id, skills=dict(built.skills), channels=dict(built.channels),
                                      auto_login=False, wrapup=built.wrapup))
            sims.append(_AgentSim(agent_id, shifts))
            for queue in queues:
                members.setdefault(queue, []).append(agent_id)
    sim_queues: list[_QueueSim] = []
    engine_queues: list[dict[str, Any]] = []
    for i, raw in enumerate(raw_queues):
        where = f"queues[{i}]"
        if not isinstance(raw, dict):
            raise ScenarioError(f"{where}: expected a table")
        rate = raw.get("arrival_rate")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0:
            raise ScenarioError(f"{where}.arrival_rate: expected calls per hour >= 0, got {rate!r}")
        handle = make_sampler(raw.get("handle_time", {"dist": "exponential", "mean": 180}), f"{where}.handle_time")
        patience = make_sampler(raw["patience"], f"{where}.patience") if "patience" in raw else None
        shares = raw.get("priority_share", {})
        try:
            priorities = [(float(v), int(k)) for k, v in shares.items()]
            if any(not 0 <= share <= 1 for share, _ in priorities):
                raise ValueError
        except (AttributeError, TypeError, ValueError):
            raise ScenarioError(f"{where}.priority_share: expected a table like {{ 10 = 0.1 }} (priority = "
                                "share of callers between 0 and 1)") from None
        threshold = raw.get("service_level_seconds", 20)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
            raise ScenarioError(f"{where}.service_level_seconds: expected seconds >= 0, got {threshold!r}")
        sim_queues.append(_QueueSim(str(raw.get("name")), rate / 3600.0, handle, patience, float(threshold),
                                    priorities))
        engine = {**_DEFAULT_QUEUE, **{k: v for k, v in raw.items() if k not in _SIM_ONLY_QUEUE_KEYS}}
        engine["members"] = members.get(raw.get("name"), [])
        engine_queues.append(engine)
    raw_agents = [{"id": a.id, "skills": a.skills} for a in agents]
    try:
        queue_configs = build_queues({"queues": engine_queues, "agents": raw_agents})
    except RoutingConfigError as err:
        raise ScenarioError(str(err)) from None
    return Scenario(duration, seed, warmup, answer_delay, measure_estimates, sim_queues, queue_configs, agents,
                    sims)


class Simulation:
    """Runs one scenario; :meth:`run` returns the figures as a JSON-able dict."""

    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        # one random stream per queue: a caller's arrival, priority, patience and handle time depend only
        # on the seed and the queue, not on what the router decided for earlier callers
        self.streams = {q.name: random.Random(f"{scenario.seed}:{q.name}") for q in scenario.queues}
        self.router = Router(scenario.queue_configs, scenario.agents, now=0.0, seed=scenario.seed, explain=False)
        self.heap: list[tuple[float, int, str, str]] = []
        self.seq = 0
        self.calls: dict[str, _Call] = {}
        self.queues = {q.name: q for q in scenario.queues}
        self.agents = {a.id: a for a in scenario.agent_sims}
        self.events = 0
        self.now = 0.0

    def push(self, when: float, kind: str, key: str) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (when, self.seq, kind, key))

    def run(self) -> dict[str, Any]:
        s = self.s
        for q in s.queues:
            if q.rate > 0:
                self.push(self.streams[q.name].expovariate(q.rate), "arrive", q.name)
        for agent in s.agent_sims:
            for start, end in agent.shifts:
                self.push(max(0.0, start), "login", agent.id)
                self.push(end, "logout", agent.id)
        router = self.router
        while True:
            timer = router.next_timer()
            head = self.heap[0][0] if self.heap else math.inf
            if timer is not None and timer <= head:
                if timer > s.duration:
                    break
                self.now = timer
                self.events += 1
                self.apply(router.handle_timer(timer))
                continue
            if head > s.duration:
                break
            when, _, kind, key = heapq.heappop(self.heap)
            self.now = when
            self.events += 1
            getattr(self, "on_" + kind)(key)
        for agent in self.agents.values():  # close the books at the end
            self.set_busy(agent, False)
            self.set_login(agent, False)
        return self.figures()

    # events of the world
    def on_arrive(self, name: str) -> None:
        q = self.queues[name]
        rng = self.streams[name]
        self.push(self.now + rng.expovariate(q.rate), "arrive", name)
        iid = f"c{self.seq}"
        counted = self.now >= self.s.warmup
        self.calls[iid] = _Call(name, self.now, counted, handle=q.handle(rng))
        if counted:
            q.offered += 1
        priority = 0
        if q.priorities:
            draw = rng.random()
            for share, value in q.priorities:
                if draw < share:
                    priority = value
                    break
                draw -= share
        if q.patience is not None:
            self.push(self.now + q.patience(rng), "patience", iid)
        self.apply(self.router.enqueue(iid, name, now=self.now, priority=priority))
        call = self.calls.get(iid)
        if self.s.measure_estimates and call is not None and not call.answered:
            try:
                _, low, high = self.router.estimate_wait(iid, now=self.now)
            except RoutingError:  # refused or already gone
                low = high = None
            call.estimate = (low, high) if low is not None and high is not None else None

    def on_patience(self, iid: str) -> None:
        call = self.calls.get(iid)
        if call is not None and not call.answered:
            self.apply(self.router.end(iid, now=self.now, reason="caller"))

    def on_hangup(self, iid: str) -> None:
        self.apply(self.router.end(iid, now=self.now, reason="caller"))

    def on_answer(self, key: str) -> None:
        iid, _, agent = key.partition("|")
        try:
            self.apply(self.router.accept(iid, agent, now=self.now))
        except NoSuchOffer:  # the caller abandoned while it rang: nothing to answer
            pass

    def on_login(self, agent_id: str) -> None:
        self.set_login(self.agents[agent_id], True)
        self.apply(self.router.login(agent_id, now=self.now))

    def on_logout(self, agent_id: str) -> None:
        self.set_login(self.agents[agent_id], False)
        self.apply(self.router.logout(agent_id, now=self.now))

    # bookkeeping
    def set_login(self, agent: _AgentSim, on: bool) -> None:
        if on and agent.login_since is None:
            agent.login_since = self.now
        elif not on and agent.login_since is not None:
            agent.logged_in += self.counted_span(agent.login_since)
            agent.login_since = None

    def set_busy(self, agent: _AgentSim, on: bool) -> None:
        if on and agent.busy_since is None:
            agent.busy_since = self.now
        elif not on and agent.busy_since is not None:
            agent.busy += self.counted_span(agent.busy_since)
            agent.busy_since = None

    def counted_span(self, since: float) -> float:
        return max(0.0, min(self.now, self.s.duration) - max(since, self.s.warmup))

    def apply(self, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, Offer):
                if self.s.answer_delay > 0:
                    self.push(self.now + self.s.answer_delay, "answer", f"{event.interaction}|{event.agent}")
                else:
                    self.apply(self.router.accept(event.interaction, event.agent, now=self.now))
            elif isinstance(event, Connect):
                call = self.calls[event.interaction]
                call.answered = True
                q = self.queues[call.queue]
                wait = self.now - call.arrived
                handle = call.handle
                if call.counted:
                    q.answered += 1
                    q.wait_sum += wait
                    q.handle_sum += handle
                    if wait <= q.threshold:
                        q.answered_within += 1
                    if call.estimate is not None:
                        low, high = call.estimate
                        q.estimates += 1
                        q.estimate_hits += low <= wait <= high
                        q.estimate_error += abs(wait - (low + high) / 2)
                agent = self.agents[event.agent]
                agent.handled += 1 if call.counted else 0
                agent.talk += handle if call.counted else 0.0
                self.set_busy(agent, True)
                self.push(self.now + handle, "hangup", event.interaction)
            elif isinstance(event, AgentComplete):
                self.calls.pop(event.interaction, None)
                if event.wrapup_until <= self.now:
                    self.set_busy(self.agents[event.agent], False)
                else:
                    self.push(event.wrapup_until, "idle", event.agent)
            elif isinstance(event, QueueCallerAbandon):
                call = self.calls.pop(event.interaction)
                if call.counted:
                    q = self.queues[call.queue]
                    q.abandoned += 1
                    if self.now - call.arrived > q.threshold:
                        q.abandoned_after += 1
            elif isinstance(event, (JoinRefused, Overflow)):
                destination = event.destination
                if isinstance(event, Overflow) and destination and destination[0] == "queue":
                    continue  # the router moved the caller; it is still waiting
                call = self.calls.pop(event.interaction, None)
                if call is not None and call.counted:
                    self.queues[call.queue].refused += 1

    def on_idle(self, agent_id: str) -> None:
        agent = self.agents[agent_id]
        if not self.router.agent_status(agent_id)["active"]:
            self.set_busy(agent, False)

    def figures(self) -> dict[str, Any]:
        queues = {}
        for q in self.s.queues:
            denominator = q.answered + q.abandoned_after
            queues[q.name] = {
                "offered": q.offered,
                "answered": q.answered,
                "abandoned": q.abandoned,
                "refused": q.refused,
                "service_level": q.answered_within / denominator if denominator else 1.0,
                "asa": q.wait_sum / q.answered if q.answered else 0.0,
                "abandon_rate": q.abandoned / q.offered if q.offered else 0.0,
                "aht": q.handle_sum / q.answered if q.answered else 0.0,
                **({"wait_estimates": q.estimates,
                    "wait_estimate_coverage": q.estimate_hits / q.estimates if q.estimates else 0.0,
                    "wait_estimate_mean_error": q.estimate_error / q.estimates if q.estimates else 0.0}
                   if self.s.measure_estimates else {}),
            }
        busy = sum(a.busy for a in self.agents.values())
        logged = sum(a.logged_in for a in self.agents.values())
        agents = {a.id: {"handled": a.handled, "talk_time": round(a.talk, 3),
                         "occupancy": a.busy / a.logged_in if a.logged_in else 0.0}
                  for a in self.agents.values()}
        return {"queues": queues, "occupancy": busy / logged if logged else 0.0, "agents": agents,
                "events": self.events, "duration": self.s.duration}


def simulate(data: dict[str, Any]) -> dict[str, Any]:
    """Run the scenario given as a parsed TOML dict and return the figures."""
    return Simulation(load_scenario(data)).run()


def run_cli(argv: list[str]) -> int:
    """``centralita simulate acd SCENARIO.toml [--json]``; exit 2 on a bad scenario."""
    parser = argparse.ArgumentParser(prog="centralita simulate acd")
    parser.add_argument("scenario")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    args = parser.parse_args(argv)
    try:
        data = tomllib.loads(Path(args.scenario).read_text(encoding="utf-8"))
    except OSError as err:
        print(f"{args.scenario}: cannot read: {err.strerror}", file=sys.stderr)
        return 2
    except tomllib.TOMLDecodeError as err:
        print(f"{args.scenario}: invalid TOML: {err}", file=sys.stderr)
        return 2
    if args.seed is not None:
        data["seed"] = args.seed
    started = time.perf_counter()
    try:
        figures = simulate(data)
    except ScenarioError as err:
        print(f"{args.scenario}: {err}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"simulated {figures['duration']:.0f} s, {figures['events']} events in {elapsed:.2f} s")
    for name, q in figures["queues"].items():
        print(f"queue {name}: offered {q['offered']}, answered {q['answered']}, abandoned {q['abandoned']} "
              f"({q['abandon_rate']:.1%}), refused {q['refused']}, service level {q['service_level']:.1%}, "
              f"ASA {q['asa']:.1f} s")
    print(f"occupancy {figures['occupancy']:.1%}")
    for agent_id, a in figures["agents"].items():
        print(f"  {agent_id}: handled {a['handled']}, talk {a['talk_time']:.0f} s, occupancy {a['occupancy']:.1%}")
    return 0
