"""Store throughput: acknowledged durable writes per second with group commit.

N concurrent writers each insert rows one `await store.write(...)` at a time (each acknowledged only
after its transaction committed with synchronous=FULL in WAL mode). Also measures one writer alone
(no batching possible) to show what group commit buys.

    .venv/bin/python benchmarks/store.py [--writers 200] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import trio

from engine.store import open_store


async def measure(path: Path, writers: int, seconds: float) -> dict[str, float]:
    async with open_store(path) as store:
        done = 0
        deadline = trio.current_time() + seconds

        async def writer(w: int) -> None:
            nonlocal done
            n = 0
            while trio.current_time() < deadline:
                await store.write("INSERT INTO kv(component, key, value) VALUES ('bench', ?, 'x')", (f"{w}-{n}",))
                n += 1
                done += 1

        start = time.perf_counter()
        cpu0 = time.process_time()
        async with trio.open_nursery() as nursery:
            for w in range(writers):
                nursery.start_soon(writer, w)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        stats = store.statistics()
    return {
        "writers": writers,
        "writes": done,
        "seconds": round(elapsed, 3),
        "writes_per_second": round(done / elapsed, 1),
        "writes_per_commit": stats["writes_per_commit"],
        "cpu_seconds": round(cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        single = trio.run(measure, Path(tmp) / "single.db", 1, min(args.seconds, 3.0))
        grouped = trio.run(measure, Path(tmp) / "grouped.db", args.writers, args.seconds)
    print(json.dumps({
        "benchmark": "store",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "single_writer": single,
        "group_commit": grouped,
        "speedup": round(grouped["writes_per_second"] / max(single["writes_per_second"], 1e-9), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
