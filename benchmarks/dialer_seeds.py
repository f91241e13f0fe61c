"""The predictive pacer alone over many seeds, for the cells where a goal is close (no baselines).

    .venv/bin/python benchmarks/dialer_seeds.py [--cells 20x0.3,50x0.3] [--seeds 1-9] [--duration 10800]
        [--horizon-step 2.0]

Same scenario as ``benchmarks/dialer.py`` (talk exponential, mean 180 s; answer after U(4, 20) s; ring
timeout 25 s; 2-second rule; aim 2.5%, cap 3%). ``--horizon-step`` changes the spacing of the pacer's
look-ahead grid (an experiment knob: the engine uses 2 s). Prints one JSON object: per cell the mean and
minimum utilization, the highest abandonment rate over the seeds, and CPU seconds per simulated hour.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dialer import scenario

import engine.dialing._pacing as pacing
from engine.dialing.simulate import simulate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", default="20x0.3,50x0.3", help="AGENTSxANSWER_RATE,...")
    parser.add_argument("--seeds", default="1-9", help="FIRST-LAST")
    parser.add_argument("--duration", type=float, default=10800.0)
    parser.add_argument("--horizon-step", type=float, default=2.0)
    args = parser.parse_args()
    first, last = (int(x) for x in args.seeds.split("-"))
    if args.horizon_step != 2.0:
        built = pacing.Dialer.__init__

        def with_step(self, settings, *, now, call_prefix="c"):  # type: ignore[no-untyped-def]
            built(self, settings, now=now, call_prefix=call_prefix)
            self._horizons = np.arange(0.0, settings.ring_timeout + 2.0, args.horizon_step)

        pacing.Dialer.__init__ = with_step  # type: ignore[method-assign]
    cells = {}
    for cell in args.cells.split(","):
        agents, rate = cell.split("x")
        started = time.process_time()
        runs = [simulate(scenario(int(agents), float(rate), args.duration, seed)) for seed in range(first, last + 1)]
        cpu = time.process_time() - started
        cells[cell] = {
            "utilization_mean": round(statistics.mean(r.utilization for r in runs), 4),
            "utilization_min": round(min(r.utilization for r in runs), 4),
            "abandon_max": round(max(r.abandon_rate for r in runs), 4),
            "cpu_s_per_simulated_hour": round(cpu / (len(runs) * args.duration / 3600.0), 2),
        }
    print(json.dumps({"seeds": [first, last], "duration_s": args.duration, "horizon_step": args.horizon_step,
                      "load_average": os.getloadavg(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                      "cells": cells}))


if __name__ == "__main__":
    main()
