"""The durable store: SQLite through aiosqlite, one writer with group commit.

Rules it enforces:
- WAL, ``synchronous=FULL`` and foreign keys, checked (not just requested) at every open;
- a write is acknowledged only after the transaction holding it has committed, so an acknowledged
  write survives ``kill -9`` and power loss;
- writes queued together commit together (group commit), but each runs in its own savepoint, so one
  failing statement fails only its caller;
- schema migrations are versioned per component; a database newer than the code is refused untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import trio

from .._errors import EngineError, StartupError
from .._registry import Migration
from ._bridge import AsyncioThread

log = logging.getLogger("centralita.store")

Params = Sequence[Any] | dict[str, Any]
Statement = tuple[str, Params]


class StoreError(EngineError):
    """The database cannot be used. The message says what is wrong and how to fix it."""


@dataclass
class _Pending:
    """A write waiting on the trio side for the next hop to the store's thread."""

    statements: list[Statement]
    want_rowid: bool
    done: trio.Event
    result: int | BaseException = 0


@dataclass
class _WriteRequest:
    statements: list[Statement]
    future: asyncio.Future[int]
    want_rowid: bool = False


CORE_MIGRATIONS = [
    Migration(
        "engine",
        1,
        """
        CREATE TABLE interactions (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, direction TEXT NOT NULL, state TEXT NOT NULL,
            from_addr TEXT NOT NULL, to_addr TEXT NOT NULL, channel TEXT NOT NULL,
            queue TEXT, agent TEXT, created REAL NOT NULL, answered REAL, ended REAL,
            data TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX interactions_state ON interactions(state);
        CREATE TABLE cdr (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            accountcode TEXT, src TEXT, dst TEXT, dcontext TEXT, clid TEXT, channel TEXT, dstchannel TEXT,
            lastapp TEXT, lastdata TEXT, start REAL, answer REAL, "end" REAL, duration INTEGER,
            billsec INTEGER, disposition TEXT, amaflags TEXT, uniqueid TEXT UNIQUE, userfield TEXT
        );
        CREATE INDEX cdr_start ON cdr(start);
        CREATE TABLE kv (
            component TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (component, key)
        );
        """,
    ),
]


class Store:
    """An open database. Use :func:`open_store`; all methods are called from trio."""

    def __init__(self, path: Path, runner: AsyncioThread, conn: aiosqlite.Connection, *, max_batch: int) -> None:
        self.path = path
        self._runner = runner
        self._conn = conn
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_WriteRequest | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        # Writes gather here on the trio side; one task forwards each gathered batch in a single hop
        # to the store's thread (a cross-thread wake-up per write was the biggest cost per call).
        self._pending: list[_Pending] = []
        self._wake_forwarder = trio.Event()
        self._forwarder_done = trio.Event()
        self.hops = 0
        self.commits = 0
        self.writes = 0
        self.failed_writes = 0

    # ---------------------------------------------------------------- trio-facing API

    async def write(self, sql: str, params: Params = ()) -> None:
        """Run one statement durably: when this returns, it has been committed. Shielded from cancellation.

        Identical statements from concurrent callers are committed together with ``executemany``.
        """
        await self._submit([(sql, params)], want_rowid=False)

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Like :meth:`write`, and return the new row's ``lastrowid``."""
        return await self._submit([(sql, params)], want_rowid=True)

    async def write_many(self, statements: Sequence[Statement]) -> None:
        """Run statements atomically (all or none), durably."""
        await self._submit(list(statements), want_rowid=False)

    async def _submit(self, batch: list[Statement], *, want_rowid: bool) -> int:
        if self._closed or self._forwarder_done.is_set():
            # Nobody would ever forward this write (the store is closing, or its forwarder task was
            # cancelled with a failing engine): refuse it now rather than wait, shielded, forever.
            raise StoreError("the store is closed")
        item = _Pending(batch, want_rowid, trio.Event())
        self._pending.append(item)
        self._wake_forwarder.set()
        with trio.CancelScope(shield=True):  # acknowledged means durable: never abandon a write half-way
            await item.done.wait()
        if isinstance(item.result, BaseException):
            raise item.result
        return item.result

    async def _forward(self) -> None:
        """Trio task: hand every gathered batch of writes to the store's thread in one hop."""
        try:
            while True:
                await self._wake_forwarder.wait()
                self._wake_forwarder = trio.Event()
                if not self._pending:
                    if self._closed:
                        return
                    continue
                batch, self._pending = self._pending, []
                self.hops += 1
                try:
                    results = await self._runner.run(lambda: self._enqueue_many(batch), shield=True)
                except BaseException as exc:
                    self._fail(batch, exc)
                    raise
                for item, result in zip(batch, results, strict=True):
                    item.result = result
                    item.done.set()
                if self._pending or self._closed:
                    self._wake_forwarder.set()
        finally:
            # whatever ended this task, no writer may wait forever (their wait is shielded)
            self._closed = True
            self._fail(self._pending, StoreError("the store closed before this write was committed"))
            self._pending = []
            self._forwarder_done.set()

    @staticmethod
    def _fail(items: list[_Pending], exc: BaseException) -> None:
        for item in items:
            if not item.done.is_set():
                item.result = exc if isinstance(exc, Exception) else StoreError(f"write interrupted: {exc!r}")
                item.done.set()

    async def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        async def query() -> list[dict[str, Any]]:
            async with self._conn.execute(sql, params) as cursor:
                rows = await cursor.fetchall()
                names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in rows]

        return await self._runner.run(query)

    async def fetchone(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def integrity_check(self) -> str:
        row = await self.fetchone("PRAGMA integrity_check")
        return str(next(iter(row.values()))) if row else "no answer"

    def statistics(self) -> dict[str, Any]:
        return {
            "writes": self.writes,
            "commits": self.commits,
            "failed_writes": self.failed_writes,
            "writes_per_commit": round(self.writes / self.commits, 2) if self.commits else 0.0,
            "writes_per_hop": round(self.writes / self.hops, 2) if self.hops else 0.0,
            "pending": self._queue.qsize() if self._queue else 0,
        }

    # ---------------------------------------------------------------- asyncio side

    async def _enqueue_many(self, items: list[_Pending]) -> list[int | BaseException]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[int]] = []
        for item in items:
            future: asyncio.Future[int] = loop.create_future()
            self._queue.put_nowait(_WriteRequest(item.statements, future, item.want_rowid))
            futures.append(future)
        return list(await asyncio.gather(*futures, return_exceptions=True))

    async def _start_writer(self) -> None:
        self._queue = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def _write_loop(self) -> None:
        try:
            await self._write_loop_body()
        finally:
            # if this loop ever ends (closing, or a bug), no write may be left waiting for it
            while self._queue is not None and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None and not item.future.done():
                    item.future.set_exception(StoreError("the store's writer stopped before this write"))

    async def _write_loop_body(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    await self._commit(batch)
                    return
                batch.append(item)
            await self._commit(batch)

    async def _commit(self, batch: list[_WriteRequest]) -> None:
        """Commit a batch. Optimistic: no savepoints unless a statement fails (each one costs a hop to
        aiosqlite's thread); on failure the batch is rolled back and re-run with one savepoint per write,
        so only the failing caller gets the error."""
        try:
            outcomes = await self._run_batch(batch, isolate=False)
        except sqlite3.Error:
            outcomes = None
        if outcomes is None:
            try:
                outcomes = await self._run_batch(batch, isolate=True)
            except BaseException as exc:
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(StoreError(f"commit failed: {exc}"))
                self.failed_writes += len(batch)
                if not isinstance(exc, Exception):
                    raise
                return
        self.commits += 1
        for request, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self.failed_writes += 1
                request.future.set_exception(outcome)
            else:
                self.writes += 1
                request.future.set_result(outcome)

    async def _run_batch(self, batch: list[_WriteRequest], *, isolate: bool) -> list[int | BaseException]:
        """One transaction for the batch. ``isolate``: a savepoint per request, so a failing request
        gets its error and the others still commit (the slow path, only after a failure)."""
        conn = self._conn
        await conn.execute("BEGIN IMMEDIATE")
        try:
            if isolate:
                outcomes = [await self._run_isolated(index, request) for index, request in enumerate(batch)]
            else:
                outcomes = await self._run_grouped(batch)
            await conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            raise
        return outcomes

    async def _run_isolated(self, index: int, request: _WriteRequest) -> int | BaseException:
        conn = self._conn
        await conn.execute(f"SAVEPOINT w{index}")
        try:
            rowid = 0
            for sql, params in request.statements:
                cursor = await conn.execute(sql, params)
                rowid = cursor.lastrowid or rowid
        except sqlite3.Error as exc:
            await conn.execute(f"ROLLBACK TO w{index}")
            await conn.execute(f"RELEASE w{index}")
            return exc
        await conn.execute(f"RELEASE w{index}")
        return rowid

    async def _run_grouped(self, batch: list[_WriteRequest]) -> list[int | BaseException]:
        """Run a batch with as few hops to aiosqlite's thread as possible: consecutive single-statement
        requests with the same SQL go through one ``executemany``. Any error propagates (the caller
        rolls back and retries with one savepoint per request)."""
        conn = self._conn
        outcomes: list[int | BaseException] = []
        index = 0
        while index < len(batch):
            request = batch[index]
            if len(request.statements) == 1 and not request.want_rowid:
                sql = request.statements[0][0]
                end = index + 1
                while (end < len(batch) and len(batch[end].statements) == 1 and not batch[end].want_rowid
                       and batch[end].statements[0][0] == sql):
                    end += 1
                if end - index > 1:
                    await conn.executemany(sql, [r.statements[0][1] for r in batch[index:end]])
                    outcomes.extend([0] * (end - index))
                    index = end
                    continue
            rowid = 0
            for sql, params in request.statements:
                cursor = await conn.execute(sql, params)
                rowid = cursor.lastrowid or rowid
            outcomes.append(rowid)
            index += 1
        return outcomes

    async def _stop_writer(self) -> None:
        if self._queue is not None and self._writer is not None:
            await self._queue.put(None)
            await self._writer


async def _connect(path: Path, migrations: Sequence[Migration]) -> aiosqlite.Connection:
    """Open, check (read-only) that the file is sound and not from a newer version, then set it up.

    The checks come first so that a database we refuse is left byte-for-byte untouched.
    """
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    try:
        await conn.execute("PRAGMA busy_timeout = 5000")
        check = await (await conn.execute("PRAGMA quick_check")).fetchone()
        if not check or check[0] != "ok":
            raise StoreError(
                f"{path}: the database is damaged (quick_check: {check[0] if check else '?'}); "
                "restore it from a backup or move it aside to start empty. Nothing was changed."
            )
        await _refuse_newer(conn, path, migrations)
        mode = await (await conn.execute("PRAGMA journal_mode = WAL")).fetchone()
        await conn.execute("PRAGMA synchronous = FULL")
        await conn.execute("PRAGMA foreign_keys = ON")
        sync = await (await conn.execute("PRAGMA synchronous")).fetchone()
        fks = await (await conn.execute("PRAGMA foreign_keys")).fetchone()
        if not mode or str(mode[0]).lower() != "wal" or not sync or sync[0] != 2 or not fks or fks[0] != 1:
            raise StoreError(f"{path}: could not enable WAL, synchronous=FULL and foreign keys (got {mode}, {sync}, {fks})")
    except BaseException:
        await conn.close()
        raise
    return conn


def _latest(migrations: Sequence[Migration]) -> dict[str, int]:
    known: dict[str, int] = {}
    for m in migrations:
        known[m.component] = max(known.get(m.component, 0), m.version)
    return known


async def _current_versions(conn: aiosqlite.Connection) -> dict[str, int]:
    exists = await (await conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_versions'")).fetchone()
    if not exists:
        return {}
    rows = await (await conn.execute("SELECT component, version FROM schema_versions")).fetchall()
    return {str(c): int(v) for c, v in rows}


async def _refuse_newer(conn: aiosqlite.Connection, path: Path, migrations: Sequence[Migration]) -> None:
    known = _latest(migrations)
    for component, version in (await _current_versions(conn)).items():
        if component in known and version > known[component]:
            raise StoreError(
                f"{path}: the database was written by a newer Centralita ({component} schema v{version}, this "
                f"version knows up to v{known[component]}); upgrade Centralita or restore an older backup. "
                "Nothing was changed."
            )


async def _migrate(conn: aiosqlite.Connection, path: Path, migrations: Sequence[Migration]) -> None:
    await conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    current = await _current_versions(conn)
    for m in sorted(migrations, key=lambda m: (m.component, m.version)):
        if m.version <= current.get(m.component, 0):
            continue
        if m.version != current.get(m.component, 0) + 1:
            raise StoreError(f"migration {m.component} v{m.version} skips a version (at v{current.get(m.component, 0)})")
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_sql(m.sql):
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_versions(component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                (m.component, m.version),
            )
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        current[m.component] = m.version
        log.info("store: applied migration %s v%d", m.component, m.version)


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (sqlite3.complete_statement knows about quotes)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def check_data_dir(data_dir: Path) -> None:
    """Create the data directory or explain why it cannot be used."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / f".write-test-{time.monotonic_ns()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(
            f"data directory {data_dir} is not writable ({exc.strerror or exc}); "
            "fix its permissions or choose another with --data-dir or [engine] data_dir"
        ) from None


@contextlib.asynccontextmanager
async def open_store(
    path: Path, migrations: Sequence[Migration] = (), *, max_batch: int = 512
) -> AsyncIterator[Store]:
    """Open (creating and migrating) the database at ``path``; close it on exit.

    The engine's own tables (``engine`` component) are always included.
    """
    check_data_dir(path.parent)
    runner = AsyncioThread()
    everything = [*CORE_MIGRATIONS, *migrations]
    try:
        try:
            conn = await runner.run(lambda: _connect(path, everything), shield=True)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{path}: not a usable SQLite database ({exc}); restore it from a backup or move it aside "
                "to start empty. Nothing was changed."
            ) from None
        store = Store(path, runner, conn, max_batch=max_batch)
        try:
            try:
                await runner.run(lambda: _migrate(conn, path, everything), shield=True)
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{path}: migration failed ({exc}); nothing was changed") from None
            await runner.run(store._start_writer, shield=True)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store._forward)
                try:
                    yield store
                finally:
                    store._closed = True  # no new writes; the ones already submitted still commit
                    store._wake_forwarder.set()
                    with trio.CancelScope(shield=True):
                        await store._forwarder_done.wait()
        finally:
            store._closed = True
            await runner.run(store._stop_writer, shield=True)
            await runner.run(conn.close, shield=True)
    finally:
        runner.stop()
