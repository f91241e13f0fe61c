"""Backup and restore cost, and what a backup does to the engine's writes while it runs.

A store (the engine's own, ``engine.store.open_store``) is filled with CDR rows; then, in one run:

* durable write latency (concurrent writers, as the engine's services write) with no backup running,
  and again while backups run back to back in a worker thread, as ``GET /api/v1/backup`` does;
* the backup itself (``write_backup``: online-backup-API snapshot + deflate zip): wall and CPU time
  (the worker thread's own ``thread_time``), per MB of database;
* the restore checks and copy (``open_backup`` + ``restore_database`` into a fresh file), per MB.

Prints one JSON object. Usage: ``.venv/bin/python benchmarks/console_backup.py [--rows 100000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import trio

from engine.console._backup import open_backup, restore_database, write_backup
from engine.store import open_store


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _fill(store, rows: int) -> None:
    sql = ('INSERT INTO cdr(src, dst, dcontext, clid, channel, dstchannel, start, "end", duration, billsec, '
           "disposition, uniqueid, userfield) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")
    batch = 2000
    for first in range(0, rows, batch):
        await store.write_many([
            (sql, (f"+3491{n:07d}", "100", "support", f'"Caller {n}" <+3491{n:07d}>', "sip", f"agent{n % 50}",
                   1.7e9 + n, 1.7e9 + n + 120, 120, 100, "ANSWERED", f"bench-{n}", "voice"))
            for n in range(first, min(rows, first + batch))
        ])  # fmt: skip


async def _write_latencies(store, writers: int, per_writer: int, tag: str) -> list[float]:
    latencies: list[float] = []

    async def writer(w: int) -> None:
        for n in range(per_writer):
            started = time.perf_counter()
            await store.write("INSERT OR REPLACE INTO kv (component, key, value) VALUES (?, ?, ?)",
                              ("bench", f"{tag}-{w}-{n}", "x" * 64))
            latencies.append(time.perf_counter() - started)

    async with trio.open_nursery() as nursery:
        for w in range(writers):
            nursery.start_soon(writer, w)
    return latencies


async def main(rows: int, writers: int, per_writer: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="centralita-bench-") as tmp:
        work = Path(tmp)
        db = work / "centralita.db"
        config = work / "centralita.toml"
        config.write_text('[[queues]]\nname = "support"\n')
        async with open_store(db) as store:
            await _fill(store, rows)
            db_mb = db.stat().st_size / 1e6
            quiet = await _write_latencies(store, writers, per_writer, "quiet")

            backups: list[tuple[float, float, int]] = []
            stop = trio.Event()

            def one_backup(n: int) -> tuple[float, float, int]:
                out = work / f"b{n}.zip"
                wall, cpu = time.perf_counter(), time.thread_time()
                write_backup(out, config_path=config, db_path=db)
                result = (time.perf_counter() - wall, time.thread_time() - cpu, out.stat().st_size)
                out.unlink()
                return result

            async def keep_backing_up() -> None:
                n = 0
                while not stop.is_set():
                    backups.append(await trio.to_thread.run_sync(one_backup, n))
                    n += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(keep_backing_up)
                await trio.sleep(0.05)  # the first snapshot has begun
                during = await _write_latencies(store, writers, per_writer, "during")
                stop.set()
            integrity = await store.integrity_check()

        archive = work / "restore.zip"
        write_backup(archive, config_path=config, db_path=db)
        wall, cpu = time.perf_counter(), time.process_time()
        staged = open_backup(archive, work / "staged")
        restore_database(staged.db_path, work / "restored.db")
        restore_wall, restore_cpu = time.perf_counter() - wall, time.process_time() - cpu

    backup_wall = statistics.median(b[0] for b in backups)
    backup_cpu = statistics.median(b[1] for b in backups)
    return {
        "rows": rows,
        "db_mb": round(db_mb, 1),
        "archive_mb": round(statistics.median(b[2] for b in backups) / 1e6, 1),
        "backups_during_writes": len(backups),
        "backup_wall_s": round(backup_wall, 3),
        "backup_cpu_s": round(backup_cpu, 3),
        "backup_cpu_s_per_100mb": round(backup_cpu / db_mb * 100, 3),
        "restore_wall_s": round(restore_wall, 3),
        "restore_cpu_s_per_100mb": round(restore_cpu / db_mb * 100, 3),
        "writes": writers * per_writer,
        "write_p50_ms_quiet": round(_percentile(quiet, 0.5) * 1e3, 2),
        "write_p99_ms_quiet": round(_percentile(quiet, 0.99) * 1e3, 2),
        "write_p50_ms_during_backup": round(_percentile(during, 0.5) * 1e3, 2),
        "write_p99_ms_during_backup": round(_percentile(during, 0.99) * 1e3, 2),
        "write_p50_ratio": round(_percentile(during, 0.5) / _percentile(quiet, 0.5), 2),
        "integrity_after": integrity,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--per-writer", type=int, default=100)
    args = parser.parse_args()
    print(json.dumps(trio.run(main, args.rows, args.writers, args.per_writer)))
