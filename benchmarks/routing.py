"""Routing benchmark: decision latency of the real Router at scale, and simulator speed.

    .venv/bin/python benchmarks/routing.py [--decisions 5000] [--seed 1]

1. Decision latency. 1,000 agents with 5 of 50 skills each, 100 queues of 50 members with skill
   targets (``sN >= 30 or sM >= 50``) and mixed strategies, 10,000 waiting interactions; every agent
   busy. One measured decision = a call ends, the router picks the best waiting interaction across
   the freed agent's queues (priority, then age, skill targets and relaxation stage) and makes the
   offer with its explanation. The caller is then answered and a new caller arrives (not measured),
   so the backlog stays at 10,000. Also measured: an arrival when nobody is free.
2. Simulator speed: an 8-hour day of a 50-agent center (two queues, ~85% occupancy, patience),
   wall time and simulated events per second.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.routing import AgentConfig, Connect, Offer, Router, build_queues  # noqa: E402
from engine.routing.simulate import simulate  # noqa: E402

STRATEGIES = ["longest-idle", "skills", "round-robin", "fewest-calls", "least-talk-time", "linear"]


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def build(rng: random.Random) -> tuple[Router, list[str]]:
    skills = [f"s{i}" for i in range(50)]
    agents = []
    for i in range(1000):
        chosen = rng.sample(skills, 5)
        agents.append(AgentConfig(id=f"a{i}", skills={s: rng.randint(20, 100) for s in chosen}, wrapup=0))
    queues = []
    for q in range(100):
        members = rng.sample([a.id for a in agents], 50)
        s1, s2 = rng.sample(skills, 2)
        queues.append({"name": f"q{q}", "strategy": STRATEGIES[q % len(STRATEGIES)], "members": members,
                       "target": f"{s1} >= 30 or {s2} >= 50", "wrapup": 0, "timeout": 20,
                       "relax": [{"after": 120, "lower_by": 20}, {"after": 600, "target": f"{s1} >= 0"}]})
    raw_agents = [{"id": a.id, "skills": a.skills} for a in agents]
    router = Router(build_queues({"queues": queues, "agents": raw_agents}), agents, now=0.0, seed=1)
    return router, [q["name"] for q in queues]


def decision_latency(decisions: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    router, queues = build(rng)
    now = 0.0
    counter = 0
    active: dict[str, str] = {}  # agent -> interaction

    def settle(events: list) -> None:
        """Agents answer every offer at once (not measured)."""
        pending = [e for e in events if isinstance(e, Offer)]
        while pending:
            offer = pending.pop()
            more = router.accept(offer.interaction, offer.agent, now=now)
            for event in more:
                if isinstance(event, Connect):
                    active[event.agent] = event.interaction
            pending.extend(e for e in more if isinstance(e, Offer))

    # fill: first the agents get busy, then 10,000 callers wait
    while len(active) < 1000 and router.statistics()["waiting"] < 10_000:
        counter += 1
        now += 0.01
        settle(router.enqueue(f"c{counter}", rng.choice(queues), now=now, priority=rng.choice([0, 0, 0, 5])))
    waiting_target = 10_000
    while router.statistics()["waiting"] < waiting_target:
        counter += 1
        now += 0.01
        settle(router.enqueue(f"c{counter}", rng.choice(queues), now=now, priority=rng.choice([0, 0, 0, 5])))
    arrival_samples: list[float] = []
    end_samples: list[float] = []
    end_cpu: list[float] = []
    # the 10,000-caller backlog is long-lived: move it out of the cyclic GC's way, as a long-running
    # engine would after start-up; collections of young objects still run during the measurement
    gc.collect()
    gc.freeze()
    busy_agents = list(active)
    for _ in range(decisions):
        now += 0.05
        agent = rng.choice(busy_agents)
        interaction = active.pop(agent, None)
        if interaction is None:
            continue
        started, cpu = time.perf_counter(), time.thread_time()
        events = router.end(interaction, now=now)  # frees the agent: it picks the next caller
        end_samples.append(time.perf_counter() - started)
        end_cpu.append(time.thread_time() - cpu)
        settle(events)
        counter += 1
        started = time.perf_counter()
        events = router.enqueue(f"c{counter}", rng.choice(queues), now=now)
        arrival_samples.append(time.perf_counter() - started)
        settle(events)
        busy_agents = [a for a in busy_agents if a in active] or list(active)
    gc.unfreeze()
    stats = router.statistics()
    return {
        "agents": 1000, "skills": 50, "queues": 100, "waiting": stats["waiting"],
        "decision_p50_ms": percentile(end_samples, 50) * 1e3,
        "decision_p99_ms": percentile(end_samples, 99) * 1e3,
        "decision_mean_ms": statistics.fmean(end_samples) * 1e3,
        "decision_cpu_p50_ms": percentile(end_cpu, 50) * 1e3,
        "decision_cpu_p99_ms": percentile(end_cpu, 99) * 1e3,
        "arrival_p50_ms": percentile(arrival_samples, 50) * 1e3,
        "arrival_p99_ms": percentile(arrival_samples, 99) * 1e3,
        "samples": len(end_samples),
    }


def simulator_speed(seed: int) -> dict[str, float]:
    scenario = {
        "duration": 8 * 3600, "seed": seed,
        "queues": [
            {"name": "sales", "strategy": "longest-idle", "arrival_rate": 500.0,
             "handle_time": {"dist": "lognormal", "mean": 180, "sigma": 0.6},
             "patience": {"dist": "exponential", "mean": 240}, "wrapup": 10},
            {"name": "support", "strategy": "skills", "target": "tech >= 50", "arrival_rate": 300.0,
             "handle_time": {"dist": "exponential", "mean": 240},
             "patience": {"dist": "exponential", "mean": 300}, "wrapup": 15},
        ],
        "agents": [
            {"name": "sales", "count": 20, "queues": ["sales"]},
            {"name": "tech", "count": 20, "queues": ["support", "sales"], "skills": {"tech": 80}},
            {"name": "late", "count": 10, "queues": ["support", "sales"], "skills": {"tech": 60},
             "shifts": [[3600, 8 * 3600]]},
        ],
    }
    started = time.perf_counter()
    figures = simulate(scenario)
    elapsed = time.perf_counter() - started
    calls = sum(q["offered"] for q in figures["queues"].values())
    return {"sim_agents": 50, "sim_hours": 8, "sim_calls": calls, "sim_events": figures["events"],
            "sim_seconds": elapsed, "sim_events_per_s": figures["events"] / elapsed,
            "sim_occupancy": figures["occupancy"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = {"benchmark": "routing", "python": platform.python_version(), "machine": platform.machine()}
    result.update(decision_latency(args.decisions, args.seed))
    result.update(simulator_speed(args.seed))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
