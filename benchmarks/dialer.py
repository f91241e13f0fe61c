"""Predictive pacing against the baselines, on the real pacer and a virtual clock.

    .venv/bin/python benchmarks/dialer.py [--duration 14400] [--seeds 3] [--workers 2]

For 10, 20 and 50 agents and answer rates 15/30/50% (talk exponential, mean 180 s; answer after
U(4, 20) s; ring timeout 25 s; abandoned = no agent within 2 s): the predictive pacer's utilization and
abandonment on every seed, progressive 1:1, and the best fixed lines-per-ready-agent ratio found in
hindsight (bisection on the very same seeds, every seed <= 3%). Then a drifting day (answer rate 40% ->
15%): the predictive pacer, the ratio that was best for a steady list at the day's average or at its end,
and the hindsight-best ratio for the drifting day itself. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.dialing.simulate import best_fixed_ratio, scenario_from_dict, simulate  # noqa: E402

CAP = 0.03


def scenario(agents: int, answer_rate, duration: float, seed: int = 1):
    return scenario_from_dict({
        "duration": duration, "seed": seed, "agents": agents, "mode": "predictive", "max_abandon_rate": CAP,
        "target_abandon_rate": 0.025, "ring_timeout": 25,
        "called_party": {"answer_rate": answer_rate, "ring_time": {"dist": "uniform", "low": 4, "high": 20},
                         "talk_time": {"dist": "exponential", "mean": 180}},
    })


def _predictive(job):
    agents, rate, duration, seed = job
    result = simulate(scenario(agents, rate, duration, seed))
    return job, result.utilization, result.abandon_rate


def _progressive(job):
    agents, rate, duration, seed = job
    result = simulate(scenario(agents, rate, duration, seed), mode="progressive", lines_per_agent=1.0)
    return job, result.utilization, result.abandon_rate


def _fixed(job):
    agents, rate, duration, seeds = job
    ratio, runs = best_fixed_ratio(scenario(agents, rate, duration), seeds=seeds, high=8.0, steps=7)
    return job, ratio, statistics.mean(r.utilization for r in runs), max(r.abandon_rate for r in runs)


def _fixed_on(job):
    agents, rate, duration, seed, ratio = job
    result = simulate(scenario(agents, rate, duration, seed), mode="progressive", lines_per_agent=ratio)
    return job, result.utilization, result.abandon_rate, result.as_json()["max_hourly_abandon_rate"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10800.0, help="simulated seconds per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    seeds = list(range(1, args.seeds + 1))
    started = time.perf_counter()
    grid = [(a, r) for a in (10, 20, 50) for r in (0.15, 0.30, 0.50)]
    drift = [0.40, 0.15]
    with Pool(args.workers) as pool:
        pred = pool.map_async(_predictive, [(a, r, args.duration, s) for a, r in grid for s in seeds])
        prog = pool.map_async(_progressive, [(a, r, args.duration, s) for a, r in grid for s in seeds])
        fixed = pool.map_async(_fixed, [(a, r, args.duration, tuple(seeds)) for a, r in grid]
                               + [(20, drift, args.duration, tuple(seeds)),
                                  (20, 0.275, args.duration, tuple(seeds))])
        drift_pred = pool.map_async(_predictive, [(20, drift, args.duration, s) for s in seeds])
        pred, prog, fixed, drift_pred = pred.get(), prog.get(), fixed.get(), drift_pred.get()
        grid_fixed, (drift_fixed_best, average_fixed) = fixed[:len(grid)], fixed[len(grid):]
        end_fixed = grid_fixed[grid.index((20, 0.15))]
        tuned = {"steady_average_27.5%": average_fixed[1], "steady_end_15%": end_fixed[1]}
        drift_fixed = pool.map(_fixed_on, [(20, drift, args.duration, s, ratio)
                                           for ratio in tuned.values() for s in seeds])
    out: dict = {"method": "engine.dialing.simulate on a virtual clock; talk exp(180 s), answer after U(4,20) s, "
                           "ring timeout 25 s, abandon after 2 s, cap 3%, aim 2.5%",
                 "duration_s": args.duration, "seeds": seeds, "machine": f"{platform.machine()}, "
                 f"Python {platform.python_version()}", "grid": {}}
    for agents, rate in grid:
        p = [(u, a) for job, u, a in pred if job[:2] == (agents, rate)]
        q = [(u, a) for job, u, a in prog if job[:2] == (agents, rate)]
        _, ratio, fixed_util, fixed_abandon = grid_fixed[grid.index((agents, rate))]
        out["grid"][f"{agents}_agents_{int(rate * 100)}pct"] = {
            "predictive_utilization_mean": round(statistics.mean(u for u, _ in p), 4),
            "predictive_utilization_min": round(min(u for u, _ in p), 4),
            "predictive_abandon_max": round(max(a for _, a in p), 4),
            "predictive_abandon_mean": round(statistics.mean(a for _, a in p), 4),
            "progressive_utilization": round(statistics.mean(u for u, _ in q), 4),
            "best_fixed_ratio": round(ratio, 3),
            "best_fixed_utilization": round(fixed_util, 4),
            "best_fixed_abandon_max": round(fixed_abandon, 4),
        }
    _, drift_ratio, drift_fixed_util, drift_fixed_abandon = drift_fixed_best
    out["drift_40_to_15pct_20_agents"] = {
        "predictive_utilization_mean": round(statistics.mean(u for _, u, _ in drift_pred), 4),
        "predictive_abandon_max": round(max(a for _, _, a in drift_pred), 4),
        "hindsight_best_fixed_ratio": round(drift_ratio, 3),
        "hindsight_best_fixed_utilization": round(drift_fixed_util, 4),
        "hindsight_best_fixed_abandon_max": round(drift_fixed_abandon, 4),
        "fixed_ratios_tuned_on_steady_lists": {
            name: {"lines_per_agent": round(ratio, 3),
                   "abandon_max": round(max(a for job, _, a, _ in drift_fixed if job[4] == ratio), 4),
                   "worst_hour_abandon": round(max(h for job, _, _, h in drift_fixed if job[4] == ratio), 4)}
            for name, ratio in tuned.items()},
    }
    out["wall_seconds"] = round(time.perf_counter() - started, 1)
    out["cpu_seconds_all_processes"] = round(
        time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
