"""The queue event log: every routing event on the bus, written to the store in batches."""

from __future__ import annotations

import json
import logging
from typing import Any

import trio

from .._events import Event
from .._registry import Migration
from ..abc import Service

log = logging.getLogger("centralita.reporting")

MIGRATIONS = [
    Migration(
        "reporting",
        1,
        """
        CREATE TABLE queue_log (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, event TEXT NOT NULL,
            interaction TEXT, queue TEXT, agent TEXT, fields TEXT NOT NULL
        );
        CREATE INDEX queue_log_ts ON queue_log(ts);
        """,
    )
]

#: The events reports are computed from (Asterisk's queue_log keeps the same facts).
LOGGED = frozenset({"QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled",
                    "AgentRingNoAnswer", "AgentConnect", "AgentComplete", "QueueMemberPause", "QueueMemberStatus",
                    "Hangup"})  # Hangup: the channel, campaign and customer of every finished interaction


class QueueLog(Service):
    """Listens to the bus (never blocking it) and writes routing events in batches."""

    name = "queue-log"

    def __init__(self, store: Any, *, buffer: int = 10_000) -> None:
        self.store = store
        self._send, self._receive = trio.open_memory_channel[Event](buffer)
        self.written = 0
        self.dropped = 0
        self._ready = False

    def listener(self, event: Event) -> None:
        if event.event in LOGGED:
            try:
                self._send.send_nowait(event)
            except trio.WouldBlock:
                self.dropped += 1

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        self._ready = True
        task_status.started()
        while True:
            batch = [await self._receive.receive()]
            while len(batch) < 500:
                try:
                    batch.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            await self.store.write_many([
                ("INSERT INTO queue_log(ts, event, interaction, queue, agent, fields) VALUES (?,?,?,?,?,?)",
                 (e.timestamp, e.event, e.interaction, e.fields.get("Queue"), e.fields.get("Agent"),
                  json.dumps(dict(e.fields), default=str)))
                for e in batch
            ])
            self.written += len(batch)

    def ready(self) -> bool:
        return self._ready

    def statistics(self) -> dict[str, Any]:
        return {"written": self.written, "dropped": self.dropped}

    async def rows(self, since: float, until: float | None = None) -> list[dict[str, Any]]:
        rows = await self.store.fetchall(
            "SELECT ts, event, interaction, fields FROM queue_log WHERE ts >= ? AND ts < ? ORDER BY seq",
            (since, until if until is not None else 1e12),
        )
        return [{"ts": r["ts"], "event": r["event"], "interaction": r["interaction"], "fields": json.loads(r["fields"])}
                for r in rows]
