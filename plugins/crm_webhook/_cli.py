"""``centralita crm-webhook-outbox``: what the outbox holds, and putting dead letters back in the queue.

Works on the database directly, with or without a running engine (SQLite serialises the writers; a
running engine notices re-queued records within ``IDLE_POLL`` seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import trio

from engine.store import open_store

from ._outbox import DEAD, MIGRATIONS, PENDING

DATABASE = "centralita.db"


class UsageError(Exception):
    """The command line or the configuration it points at is wrong (the operator's to fix)."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="configuration file; its [engine] data_dir is used")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (overrides the configuration)")
    parser.add_argument("--redeliver-dead", action="store_true",
                        help="put every dead letter back in the queue (after fixing the CRM or the secret)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    try:
        data_dir = _data_dir(args)
    except UsageError as exc:
        print(f"crm-webhook-outbox: {exc}", file=sys.stderr)
        return 2
    if not (data_dir / DATABASE).exists():
        print(f"crm-webhook-outbox: no database at {data_dir / DATABASE}", file=sys.stderr)
        return 2
    report = trio.run(outbox_report, data_dir / DATABASE, args.redeliver_dead)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"pending: {report['pending']}  dead: {report['dead']}  delivered (kept): {report['delivered']}")
    if args.redeliver_dead:
        print(f"re-queued {report['requeued']} dead letter(s)")
    for letter in report["dead_letters"]:
        print(f"dead {letter['delivery']} {letter['event']} after {letter['attempts']} attempt(s): {letter['last_error']}")
    return 0


async def outbox_report(database: Path, redeliver_dead: bool = False) -> dict[str, Any]:
    """Counts by state and the dead letters; with ``redeliver_dead`` they are re-queued first."""
    async with open_store(database, MIGRATIONS) as store:
        requeued = 0
        if redeliver_dead:
            rows = await store.fetchall("SELECT count(*) AS n FROM crm_webhook_outbox WHERE state = ?", (DEAD,))
            requeued = int(rows[0]["n"])
            await store.write("UPDATE crm_webhook_outbox SET state = ?, attempts = 0, next_attempt = ?, finished = NULL "
                              "WHERE state = ?", (PENDING, time.time(), DEAD))
        counts = {r["state"]: int(r["n"]) for r in await store.fetchall(
            "SELECT state, count(*) AS n FROM crm_webhook_outbox GROUP BY state")}
        letters = await store.fetchall(
            "SELECT delivery, event, attempts, last_error, created, finished FROM crm_webhook_outbox WHERE state = ? "
            "ORDER BY id LIMIT 1000", (DEAD,))
    return {"pending": counts.get(PENDING, 0), "dead": counts.get(DEAD, 0), "delivered": counts.get("delivered", 0),
            "requeued": requeued, "dead_letters": letters}


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir:
        return Path(args.data_dir)
    if not args.config:
        raise UsageError("give --config FILE or --data-dir DIR")
    path = Path(args.config)
    try:
        with path.open("rb") as file:
            config = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    data_dir = config.get("engine", {}).get("data_dir", "var")
    if not isinstance(data_dir, str):
        raise UsageError(f"{path}: [engine] data_dir is not a string")
    return (path.parent / data_dir) if not Path(data_dir).is_absolute() else Path(data_dir)
