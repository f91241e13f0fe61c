"""The store: durable acknowledged writes, atomic batches, clear refusals, survival of kill -9."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from engine import Migration, StartupError
from engine.store import StoreError, open_store

WRITER = textwrap.dedent(
    """
    import sys, trio
    from pathlib import Path
    from engine.store import open_store

    async def main():
        base = int(sys.argv[2])
        async with open_store(Path(sys.argv[1])) as store:
            async def writer(w):
                for i in range(10**6):
                    n = base + w * 10**6 + i
                    await store.write("INSERT INTO kv(component, key, value) VALUES ('t', ?, 'v')", (str(n),))
                    print(n, flush=True)  # acknowledged: the write has committed
            async with trio.open_nursery() as nursery:
                for w in range(100):  # 100 concurrent writers, as a busy engine would have
                    nursery.start_soon(writer, w)
    trio.run(main)
    """
)


async def test_concurrent_writes_group_commit_and_read_back(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite") as store:
        async with trio.open_nursery() as nursery:
            for n in range(500):
                nursery.start_soon(store.write, "INSERT INTO kv VALUES ('c', ?, ?)", (str(n), "x"))
        rows = await store.fetchall("SELECT count(*) AS n FROM kv WHERE component = 'c'")
        assert rows == [{"n": 500}]
        assert store.statistics()["commits"] < 500  # writes were grouped


async def test_failing_statement_fails_only_its_caller(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite") as store:
        await store.write("INSERT INTO kv VALUES ('c', 'k', 'v')")
        results: dict[str, object] = {}

        async def attempt(key: str) -> None:
            try:
                await store.write("INSERT INTO kv VALUES ('c', ?, 'v')", (key,))
                results[key] = "ok"
            except sqlite3.IntegrityError:
                results[key] = "duplicate"

        async with trio.open_nursery() as nursery:
            for key in ("k", "a", "b"):
                nursery.start_soon(attempt, key)
        assert results == {"k": "duplicate", "a": "ok", "b": "ok"}


async def test_write_many_is_atomic(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite") as store:
        with pytest.raises(sqlite3.IntegrityError):
            await store.write_many([("INSERT INTO kv VALUES ('c','1','v')", ()), ("INSERT INTO kv VALUES ('c','1','v')", ())])
        assert await store.fetchall("SELECT * FROM kv") == []


async def test_cancelled_writer_still_gets_a_durable_write(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite") as store:
        with trio.CancelScope() as scope:
            scope.cancel()
            await store.write("INSERT INTO kv VALUES ('c', 'shielded', 'v')")
        assert await store.fetchone("SELECT value FROM kv WHERE key = 'shielded'") == {"value": "v"}


async def test_a_write_after_the_store_was_cancelled_is_refused_not_left_waiting(tmp_path: Path) -> None:
    # An engine torn down by an error cancels the store's forwarder; a service closing afterwards (its
    # last snapshot, shielded) must get an error, not wait forever for a write nobody will forward.
    with trio.CancelScope() as outer:
        async with open_store(tmp_path / "db.sqlite") as store:
            outer.cancel()
            with trio.CancelScope(shield=True):
                with trio.fail_after(10):
                    await store._forwarder_done.wait()
                    with pytest.raises(StoreError, match="closed"):
                        await store.write("INSERT INTO kv VALUES ('c', 'late', 'v')")
    assert outer.cancelled_caught


async def test_pragmas_and_migrations(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    steps = [Migration("demo", 1, "CREATE TABLE demo (x INTEGER);"), Migration("demo", 2, "ALTER TABLE demo ADD y TEXT;")]
    async with open_store(path, steps) as store:
        assert await store.fetchone("PRAGMA journal_mode") == {"journal_mode": "wal"}
        assert await store.fetchone("PRAGMA synchronous") == {"synchronous": 2}
        assert await store.fetchone("PRAGMA foreign_keys") == {"foreign_keys": 1}
        await store.write("INSERT INTO demo VALUES (1, 'a')")
    async with open_store(path, steps) as store:  # reopening applies nothing twice
        assert await store.fetchall("SELECT * FROM demo") == [{"x": 1, "y": "a"}]


async def test_database_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    async with open_store(path, [Migration("demo", 1, "CREATE TABLE demo (x);"), Migration("demo", 2, "CREATE TABLE d2 (x);")]):
        pass
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer Centralita"):
        async with open_store(path, [Migration("demo", 1, "CREATE TABLE demo (x);")]):
            pass
    assert path.read_bytes() == before


async def test_corrupted_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="restore it from a backup"):
        async with open_store(path):
            pass
    assert path.read_bytes() == b"this is not sqlite" * 100


async def test_unwritable_data_dir_says_how_to_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StartupError, match="--data-dir"):
        async with open_store(blocker / "sub" / "db.sqlite"):
            pass


def test_kill_9_during_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """kill -9 the writer at random points; every write it acknowledged must be there afterwards."""
    path = tmp_path / "db.sqlite"
    rng = random.Random(7)
    acknowledged: set[int] = set()
    start = 0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    for _round in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(start)], stdout=subprocess.PIPE, env=env, text=True)
        assert proc.stdout is not None
        stop_after = rng.randint(50, 2000)
        seen = 0
        for line in proc.stdout:
            acknowledged.add(int(line))
            seen += 1
            if seen >= stop_after:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        start += 10**9
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        present = {int(k) for (k,) in conn.execute("SELECT key FROM kv WHERE component = 't'")}
        conn.close()
        assert acknowledged <= present, f"lost {len(acknowledged - present)} acknowledged writes"
