"""``centralita simulate dialer SCENARIO.toml [--json]``: the real pacer on a virtual clock.

Simulated called parties answer with a probability that may drift over the day (a list of rates is
spread evenly over the run and interpolated), after a ring time drawn from a distribution; a share of the
answers are machines, which the dialer hangs up on. Simulated agents talk for a drawn time, then wrap up.
The :class:`~engine.dialing.Dialer` under test is exactly the one the engine runs; only its clock and
its counterparts are simulated.

Scenario keys (CONTRACT.md, plus the optional ones marked +)::

    duration = 28800
    seed = 1
    agents = 20
    mode = "predictive"            # preview | progressive | predictive
    max_abandon_rate = 0.03        # the hard cap per run
    target_abandon_rate = 0.025    # + the aim (default: cap - 0.005)
    lines_per_agent = 1.0          # + progressive only
    ring_timeout = 25              # + seconds before giving up (the US rule needs >= 15)
    abandon_after = 2              # + seconds a person may wait for an agent after the greeting
    wrapup = 0                     # + seconds, or a distribution table
    baselines = true               # + also run progressive 1:1 and the best fixed ratio in hindsight
    [called_party]
    answer_rate = 0.30             # or a list, e.g. [0.40, 0.15]
    machine_rate = 0.0             # share of answers that are machines
    ring_time = { dist = "uniform", low = 4, high = 20 }
    talk_time = { dist = "exponential", mean = 180 }
    amd_live_as_machine = 0.0      # + detector error: people classed as machines (hung up on)
    fail_rate = 0.0                # + share of calls that fail fast (busy, congestion, invalid)

``--json`` prints one object: ``utilization``, ``abandon_rate``, ``dialed``, ``answered``,
``abandoned``, ``calls_per_agent_hour``, and also ``avg_agent_wait``, ``abandon_rate_by_rule``,
``live_answers``, ``machine_answers`` and, with baselines, ``baselines``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._pacing import Abandon, Connect, Dial, Dialer, PacingSettings

Sampler = Callable[[random.Random], float]


class ScenarioError(ValueError):
    """The scenario file is invalid; the message names the key, what was expected and what was found."""


def make_sampler(spec: Any, key: str) -> Sampler:
    """A distribution table (``exponential``/``lognormal``/``fixed``/``uniform``) or a plain number."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        value = float(spec)
        return lambda rng: value
    if not isinstance(spec, dict):
        raise ScenarioError(f"{key}: expected a number or a distribution table, got {spec!r}")
    dist = spec.get("dist")
    try:
        if dist == "exponential":
            rate = 1.0 / float(spec["mean"])
            return lambda rng: rng.expovariate(rate)
        if dist == "lognormal":
            sigma = float(spec.get("sigma", 0.5))
            mu = math.log(float(spec["mean"])) - sigma * sigma / 2  # so that the mean is `mean`
            return lambda rng: rng.lognormvariate(mu, sigma)
        if dist == "fixed":
            value = float(spec["value"])
            return lambda rng: value
        if dist == "uniform":
            low, high = float(spec["low"]), float(spec["high"])
            return lambda rng: rng.uniform(low, high)
    except KeyError as missing:
        raise ScenarioError(f"{key}: distribution {dist!r} needs key {missing.args[0]!r}") from None
    raise ScenarioError(f"{key}.dist: expected exponential | lognormal | fixed | uniform, got {dist!r}")


@dataclass(frozen=True)
class Scenario:
    duration: float = 28800.0
    seed: int = 1
    agents: int = 20
    mode: str = "predictive"
    max_abandon_rate: float = 0.03
    target_abandon_rate: float | None = None
    lines_per_agent: float = 1.0
    ring_timeout: float = 25.0
    abandon_after: float = 2.0
    answer_rate: tuple[float, ...] = (0.30,)
    machine_rate: float = 0.0
    amd_live_as_machine: float = 0.0
    fail_rate: float = 0.0
    ring_time: Any = field(default_factory=lambda: {"dist": "uniform", "low": 4, "high": 20})
    talk_time: Any = field(default_factory=lambda: {"dist": "exponential", "mean": 180})
    wrapup: Any = 0.0
    baselines: bool = False

    @property
    def aim(self) -> float:
        if self.target_abandon_rate is not None:
            return self.target_abandon_rate
        return max(self.max_abandon_rate - 0.005, self.max_abandon_rate * 0.8)

    def answer_rate_at(self, t: float) -> float:
        rates = self.answer_rate
        if len(rates) == 1:
            return rates[0]
        position = min(max(t / self.duration, 0.0), 1.0) * (len(rates) - 1)
        i = min(int(position), len(rates) - 2)
        frac = position - i
        return rates[i] * (1 - frac) + rates[i + 1] * frac


_TOP_KEYS = {f for f in Scenario.__dataclass_fields__} - {"answer_rate", "machine_rate", "ring_time",
                                                          "talk_time", "amd_live_as_machine", "fail_rate"}
_PARTY_KEYS = {"answer_rate", "machine_rate", "ring_time", "talk_time", "amd_live_as_machine", "fail_rate"}


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    import difflib

    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "called_party":
            if not isinstance(value, dict):
                problems.append("called_party: expected a table")
                continue
            for pkey, pvalue in value.items():
                if pkey not in _PARTY_KEYS:
                    hint = difflib.get_close_matches(pkey, sorted(_PARTY_KEYS), n=1)
                    problems.append(f"called_party.{pkey}: unknown key" + (f"; did you mean {hint[0]!r}?" if hint else ""))
                else:
                    values[pkey] = pvalue
        elif key in _TOP_KEYS:
            values[key] = value
        else:
            hint = difflib.get_close_matches(key, sorted(_TOP_KEYS | {"called_party"}), n=1)
            problems.append(f"{key}: unknown key" + (f"; did you mean {hint[0]!r}?" if hint else ""))
    rates = values.get("answer_rate", 0.30)
    rates = rates if isinstance(rates, list) else [rates]
    if not rates or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and 0 <= r <= 1 for r in rates):
        problems.append(f"called_party.answer_rate: expected a fraction or a list of fractions, got {rates!r}")
    values["answer_rate"] = tuple(float(r) for r in rates) if not problems else (0.3,)
    numbers = {"duration": (1, 10**8), "agents": (1, 10000), "max_abandon_rate": (0.0001, 0.5),
               "target_abandon_rate": (0.0001, 0.5), "lines_per_agent": (1, 20), "ring_timeout": (1, 600),
               "abandon_after": (0, 60), "machine_rate": (0, 1), "amd_live_as_machine": (0, 1),
               "fail_rate": (0, 1), "seed": (-(2**63), 2**63)}
    for key, (low, high) in numbers.items():
        if key in values:
            v = values[key]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not low <= v <= high:
                problems.append(f"{key}: expected a number from {low} to {high}, got {v!r}")
    if values.get("mode", "predictive") not in ("preview", "progressive", "predictive"):
        problems.append(f"mode: expected preview | progressive | predictive, got {values['mode']!r}")
    for key in ("ring_time", "talk_time", "wrapup"):
        if key in values:
            try:
                make_sampler(values[key], key)
            except ScenarioError as error:
                problems.append(str(error))
    if problems:
        raise ScenarioError("\n".join(problems))
    return Scenario(**values)


def load_scenario(path: str | Path) -> Scenario:
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as error:
            raise ScenarioError(f"not valid TOML: {error}") from None
    return scenario_from_dict(data)


# ---------------------------------------------------------------------------------- simulation


@dataclass
class SimulationResult:
    agents: int
    duration: float
    dialed: int = 0
    answered: int = 0
    live_answers: int = 0
    machine_answers: int = 0
    live_as_machine: int = 0
    connected: int = 0
    abandoned: int = 0
    talk_time: float = 0.0
    ready_time: float = 0.0
    hourly: list[tuple[int, int]] = field(default_factory=list)  # (live answers, abandoned) per hour

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live_answers if self.live_answers else 0.0

    @property
    def uk_abandon_rate(self) -> float:
        """UK-style: people hung up on as machines count as abandoned live calls too."""
        live = self.live_answers + self.live_as_machine
        return (self.abandoned + self.live_as_machine) / live if live else 0.0

    @property
    def utilization(self) -> float:
        return self.talk_time / (self.agents * self.duration)

    def as_json(self) -> dict[str, Any]:
        hours = self.agents * self.duration / 3600.0
        return {
            "utilization": round(self.utilization, 4),
            "abandon_rate": round(self.abandon_rate, 5),
            "dialed": self.dialed,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "calls_per_agent_hour": round(self.connected / hours, 3),
            "live_answers": self.live_answers,
            "machine_answers": self.machine_answers,
            "connected": self.connected,
            "avg_agent_wait": round(self.ready_time / self.connected, 2) if self.connected else None,
            "abandon_rate_by_rule": {"us-fcc": round(self.abandon_rate, 5),
                                     "uk-ofcom": round(self.uk_abandon_rate, 5)},
            "max_hourly_abandon_rate": round(max((a / l for l, a in self.hourly if l >= 30), default=0.0), 4),
        }


def simulate(scenario: Scenario, *, mode: str | None = None, lines_per_agent: float | None = None,
             seed: int | None = None) -> SimulationResult:
    """Run one day of the scenario against the real :class:`Dialer`."""
    s = scenario
    rng = random.Random(s.seed if seed is None else seed)
    ring_time = make_sampler(s.ring_time, "ring_time")
    talk_time = make_sampler(s.talk_time, "talk_time")
    wrapup = make_sampler(s.wrapup, "wrapup")
    settings = PacingSettings(
        mode=mode or s.mode,  # type: ignore[arg-type]
        lines_per_agent=lines_per_agent if lines_per_agent is not None else s.lines_per_agent,
        max_lines_per_agent=max(6.0, lines_per_agent or 0.0),
        ring_timeout=s.ring_timeout,
        abandon_after=s.abandon_after,
        target_abandon_rate=min(s.aim, s.max_abandon_rate),
        max_abandon_rate=s.max_abandon_rate,
        expected_answer_rate=s.answer_rate[0],
        cap_guard=lines_per_agent is None,  # a baseline's fixed ratio stays fixed
    )
    dialer = Dialer(settings, now=0.0)
    result = SimulationResult(agents=s.agents, duration=s.duration)
    events: list[tuple[float, int, str, str]] = []
    seq = 0
    ready_since: dict[str, float] = {}
    hour_live = [0] * (int(s.duration // 3600) + 1)
    hour_abandoned = [0] * len(hour_live)

    def push(t: float, kind: str, ref: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, ref))

    now = 0.0
    for i in range(s.agents):
        agent = f"a{i}"
        dialer.agent_ready(agent, now)
        ready_since[agent] = now
    while True:
        for action in dialer.poll(now):
            if isinstance(action, Dial):
                result.dialed += 1
                draw = rng.random()
                if draw < s.fail_rate:
                    push(now + rng.uniform(1.0, 4.0), "fail", action.call)
                elif rng.random() < s.answer_rate_at(now):
                    t = ring_time(rng)
                    if t < s.ring_timeout:
                        if rng.random() < s.machine_rate:
                            push(now + t, "machine", action.call)
                        elif rng.random() < s.amd_live_as_machine:
                            push(now + t, "live_as_machine", action.call)
                        else:
                            push(now + t, "live", action.call)
            elif isinstance(action, Connect):
                result.connected += 1
                result.ready_time += now - ready_since.pop(action.agent, now)
                talk = talk_time(rng)
                result.talk_time += max(0.0, min(now + talk, s.duration) - now)
                push(now + talk + wrapup(rng), "ready", action.agent)
            elif isinstance(action, Abandon):
                hour_abandoned[min(int(now // 3600), len(hour_live) - 1)] += 1
        timer = dialer.next_timer()
        t_next = events[0][0] if events else math.inf
        if timer is not None and timer < t_next:
            t_next = timer
            if t_next > s.duration:
                break
            now = max(now, t_next)
            continue
        if t_next > s.duration:
            break
        now, _, kind, ref = heapq.heappop(events)
        if kind == "ready":
            dialer.agent_ready(ref, now)
            ready_since[ref] = now
        elif kind == "live":
            result.answered += 1
            hour_live[min(int(now // 3600), len(hour_live) - 1)] += 1
            dialer.call_answered(ref, now)
        elif kind in ("machine", "live_as_machine"):
            result.answered += 1
            if kind == "live_as_machine":
                result.live_as_machine += 1
            dialer.call_answered(ref, now, machine=True)
            dialer.call_ended(ref, now)
        elif kind == "fail":
            dialer.call_failed(ref, now)
    stats = dialer.statistics()
    result.live_answers = stats.live_answers
    result.machine_answers = stats.machine_answers - result.live_as_machine
    result.abandoned = stats.abandoned
    result.hourly = list(zip(hour_live, hour_abandoned))
    return result


def best_fixed_ratio(scenario: Scenario, *, seeds: Sequence[int] | None = None, low: float = 1.0,
                     high: float = 8.0, steps: int = 8) -> tuple[float, list[SimulationResult]]:
    """The highest fixed lines-per-ready-agent ratio that kept every given seed under the cap.

    Found by bisection *after the fact* on the very same random draws: a baseline no real dialer can
    have, since it needs tomorrow's answer rate today.
    """
    seeds = list(seeds) if seeds is not None else [scenario.seed]

    def runs(ratio: float) -> list[SimulationResult]:
        return [simulate(scenario, mode="progressive", lines_per_agent=ratio, seed=seed) for seed in seeds]

    best_runs = runs(low)
    for _ in range(steps):
        middle = (low + high) / 2
        trial = runs(middle)
        if all(r.abandon_rate <= scenario.max_abandon_rate for r in trial):
            low, best_runs = middle, trial
        else:
            high = middle
    return low, best_runs


def run_scenario(scenario: Scenario, *, baselines: bool | None = None) -> dict[str, Any]:
    out = simulate(scenario).as_json()
    out["mode"] = scenario.mode
    if baselines if baselines is not None else scenario.baselines:
        progressive = simulate(scenario, mode="progressive", lines_per_agent=1.0).as_json()
        ratio, fixed = best_fixed_ratio(scenario)
        out["baselines"] = {
            "progressive": progressive,
            "best_fixed_ratio": {"lines_per_agent": round(ratio, 3), **fixed[0].as_json()},
        }
    return out


def _format_text(figures: dict[str, Any]) -> str:
    lines = [f"mode {figures['mode']}: utilization {figures['utilization']:.1%}, "
             f"abandon rate {figures['abandon_rate']:.2%} (UK rule {figures['abandon_rate_by_rule']['uk-ofcom']:.2%})",
             f"  dialed {figures['dialed']}, answered {figures['answered']} "
             f"({figures['live_answers']} live, {figures['machine_answers']} machine), "
             f"abandoned {figures['abandoned']}, {figures['calls_per_agent_hour']} calls per agent hour, "
             f"average agent wait {figures['avg_agent_wait']} s"]
    for name, base in figures.get("baselines", {}).items():
        extra = f" at {base['lines_per_agent']} lines per agent" if "lines_per_agent" in base else ""
        lines.append(f"baseline {name}{extra}: utilization {base['utilization']:.1%}, "
                     f"abandon rate {base['abandon_rate']:.2%}")
    return "\n".join(lines)


def run_cli(argv: Sequence[str] | None = None) -> int:
    """``centralita simulate dialer SCENARIO.toml [--json] [--baselines]``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="centralita simulate dialer",
                                     description="run the real pacing code on a virtual clock")
    parser.add_argument("scenario", help="scenario TOML file")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    parser.add_argument("--baselines", action="store_true",
                        help="also run progressive 1:1 and the best fixed ratio found in hindsight")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        scenario = load_scenario(args.scenario)
    except OSError as error:
        print(f"{args.scenario}: {error.strerror or error}", file=sys.stderr)
        return 2
    except ScenarioError as error:
        for line in str(error).splitlines():
            print(f"{args.scenario}: {line}", file=sys.stderr)
        return 2
    figures = run_scenario(scenario, baselines=True if args.baselines else None)
    print(json.dumps(figures) if args.json else _format_text(figures))
    return 0


__all__ = ["Scenario", "ScenarioError", "SimulationResult", "best_fixed_ratio", "load_scenario",
           "run_cli", "run_scenario", "scenario_from_dict", "simulate"]

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(run_cli())
