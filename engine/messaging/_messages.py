"""Durable conversations and messages for one messaging channel, over the engine's store.

Every write that must survive a crash goes through ``write_many`` (one transaction): an inbound message
with its conversation and thread aliases, an outbound message with its outbox row. Callers record first,
then acknowledge to the peer or advance their read mark, so a crash in between repeats a read (which
``(channel, external_id)`` recognises) but never loses a message.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..store import Store


def new_id() -> str:
    """Short, unguessable, safe in a subject tag (``[#1f3a9c04be]``) and a URL."""
    return secrets.token_hex(5)


@dataclass(frozen=True)
class InboundResult:
    message: str
    conversation: str
    duplicate: bool
    new_conversation: bool


@dataclass(frozen=True)
class OutboundMessage:
    """What a channel's deliver function receives from the outbox."""

    id: str
    conversation: str
    body: str
    customer: str
    address: str
    subject: str
    attempts: int
    meta: Mapping[str, Any]
    conversation_meta: Mapping[str, Any]


class MessageStore:
    """Conversations of one channel (``"email"``, ``"sms"``, ``"chat"``)."""

    def __init__(self, store: Store, channel: str) -> None:
        self.store = store
        self.channel = channel

    # ------------------------------------------------------------------------------ per-channel marks

    async def mark(self, key: str) -> str | None:
        row = await self.store.fetchone("SELECT value FROM msg_marks WHERE channel=? AND key=?", (self.channel, key))
        return None if row is None else str(row["value"])

    async def set_mark(self, key: str, value: str) -> None:
        await self.store.write(
            "INSERT INTO msg_marks(channel, key, value) VALUES (?,?,?) "
            "ON CONFLICT(channel, key) DO UPDATE SET value=excluded.value",
            (self.channel, key, value),
        )

    # ---------------------------------------------------------------------------------- conversations

    async def conversation(self, conversation: str) -> dict[str, Any] | None:
        row = await self.store.fetchone(
            "SELECT * FROM msg_conversations WHERE id=? AND channel=?", (conversation, self.channel)
        )
        return _decode(row)

    async def find_by_alias(self, aliases: Iterable[str]) -> str | None:
        for alias in aliases:
            row = await self.store.fetchone(
                "SELECT conversation FROM msg_aliases WHERE channel=? AND alias=?", (self.channel, alias)
            )
            if row is not None:
                return str(row["conversation"])
        return None

    async def open_conversation_of(self, customer: str, address: str) -> str | None:
        row = await self.store.fetchone(
            "SELECT id FROM msg_conversations WHERE channel=? AND customer=? AND address=? AND state='open' "
            "ORDER BY updated DESC LIMIT 1",
            (self.channel, customer, address),
        )
        return None if row is None else str(row["id"])

    async def open_conversations(self) -> list[dict[str, Any]]:
        rows = await self.store.fetchall(
            "SELECT * FROM msg_conversations WHERE channel=? AND state='open' ORDER BY created", (self.channel,)
        )
        return [r for r in map(_decode, rows) if r is not None]

    async def start_conversation(self, customer: str, address: str, subject: str = "",
                                 meta: Mapping[str, Any] | None = None) -> str:
        """A conversation we begin (an outbound message, a transcript), with no inbound message yet."""
        now = time.time()
        conversation = new_id()
        await self.store.write(
            "INSERT INTO msg_conversations(id, channel, customer, address, subject, state, created, updated, meta) "
            "VALUES (?,?,?,?,?,'open',?,?,?)",
            (conversation, self.channel, customer, address, subject, now, now, json.dumps(dict(meta or {}))),
        )
        return conversation

    async def close(self, conversation: str) -> None:
        await self.store.write(
            "UPDATE msg_conversations SET state='closed', updated=? WHERE id=? AND channel=?",
            (time.time(), conversation, self.channel),
        )

    async def add_aliases(self, conversation: str, aliases: Iterable[str]) -> None:
        statements = [
            ("INSERT OR IGNORE INTO msg_aliases(channel, alias, conversation) VALUES (?,?,?)", (self.channel, a, conversation))
            for a in aliases
        ]
        if statements:
            await self.store.write_many(statements)

    async def history(self, conversation: str) -> list[dict[str, Any]]:
        rows = await self.store.fetchall(
            "SELECT id, direction, status, body, external_id, created, meta FROM msg_messages "
            "WHERE conversation=? ORDER BY seq",
            (conversation,),
        )
        return [r for r in map(_decode, rows) if r is not None]

    # ------------------------------------------------------------------------------------- inbound

    async def is_duplicate(self, external_id: str) -> bool:
        row = await self.store.fetchone(
            "SELECT 1 FROM msg_messages WHERE channel=? AND external_id=?", (self.channel, external_id)
        )
        return row is not None

    async def record_inbound(
        self,
        *,
        customer: str,
        address: str,
        body: str,
        external_id: str,
        conversation: str | None = None,
        subject: str = "",
        aliases: Iterable[str] = (),
        meta: Mapping[str, Any] | None = None,
        conversation_meta: Mapping[str, Any] | None = None,
        unique: bool = False,
        mark: tuple[str, str] | None = None,
    ) -> InboundResult:
        """Record a received message durably (once per ``external_id``).

        ``unique=True`` says the caller made ``external_id`` itself (a fresh UUID), so there is nothing to
        look up first: one store round trip fewer on the chat hot path. ``mark`` = (key, value) sets a
        read mark in the same transaction (the message and "read up to here" are durable together).
        """
        if not unique:
            existing = await self.store.fetchone(
                "SELECT id, conversation FROM msg_messages WHERE channel=? AND external_id=?", (self.channel, external_id)
            )
            if existing is not None:
                return InboundResult(str(existing["id"]), str(existing["conversation"]), True, False)
        now = time.time()
        statements: list[tuple[str, tuple[Any, ...]]] = []
        new_conversation = conversation is None
        if conversation is None:
            conversation = new_id()
            statements.append((
                ("INSERT INTO msg_conversations(id, channel, customer, address, subject, state, created, updated, meta) "
                 "VALUES (?,?,?,?,?,'open',?,?,?)"),
                (conversation, self.channel, customer, address, subject, now, now, json.dumps(dict(conversation_meta or {}))),
            ))
        else:
            statements.append((
                "UPDATE msg_conversations SET state='open', updated=? WHERE id=?", (now, conversation)
            ))
        message = new_id()
        statements.append((
            ("INSERT INTO msg_messages(id, conversation, channel, direction, status, body, external_id, created, updated, meta) "
             "VALUES (?,?,?,'inbound','received',?,?,?,?,?)"),
            (message, conversation, self.channel, body, external_id, now, now, json.dumps(dict(meta or {}))),
        ))
        statements.extend(
            ("INSERT OR IGNORE INTO msg_aliases(channel, alias, conversation) VALUES (?,?,?)", (self.channel, a, conversation))
            for a in aliases
        )
        if mark is not None:
            statements.append((
                ("INSERT INTO msg_marks(channel, key, value) VALUES (?,?,?) "
                 "ON CONFLICT(channel, key) DO UPDATE SET value=excluded.value"),
                (self.channel, mark[0], mark[1]),
            ))
        await self.store.write_many(statements)
        return InboundResult(message, conversation, False, new_conversation)

    # ------------------------------------------------------------------------------------ outbound

    async def queue_outbound(
        self,
        conversation: str,
        body: str,
        *,
        meta: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
    ) -> str:
        """Store an outbound message and its outbox row in one transaction; returns the message id.

        The message's meta records ``response_seconds`` (since the oldest customer message this reply
        answers) and ``first_response`` (no earlier reply in the conversation): the service-level data
        for first- and next-response times.
        """
        now = time.time()
        message = new_id()
        meta = dict(meta or {})
        if not meta.get("auto"):  # automatic messages (acknowledgements, confirmations) answer nobody
            meta.update(await self._response_time(conversation, now))
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (
                ("INSERT INTO msg_messages(id, conversation, channel, direction, status, body, external_id, created, updated, meta) "
                 "VALUES (?,?,?,'outbound','queued',?,NULL,?,?,?)"),
                (message, conversation, self.channel, body, now, now, json.dumps(dict(meta or {}))),
            ),
            ("INSERT INTO msg_outbox(message, channel, attempts, next_attempt) VALUES (?,?,0,?)", (message, self.channel, now)),
            ("UPDATE msg_conversations SET updated=? WHERE id=?", (now, conversation)),
        ]
        statements.extend(
            ("INSERT OR IGNORE INTO msg_aliases(channel, alias, conversation) VALUES (?,?,?)", (self.channel, a, conversation))
            for a in aliases
        )
        await self.store.write_many(statements)
        return message

    async def _heads(self, limit: int) -> list[dict[str, Any]]:
        """The oldest outbox row of each conversation: only it may be sent (messages keep their order)."""
        rows = await self.store.fetchall(
            "SELECT m.id, m.conversation, m.body, m.meta, o.attempts, o.next_attempt, c.customer, c.address, "
            "c.subject, c.meta AS conversation_meta FROM msg_outbox o JOIN msg_messages m ON m.id = o.message "
            "JOIN msg_conversations c ON c.id = m.conversation WHERE o.channel=? ORDER BY m.seq LIMIT ?",
            (self.channel, limit * 20),
        )
        heads: dict[str, dict[str, Any]] = {}
        for row in rows:
            heads.setdefault(str(row["conversation"]), row)
        return list(heads.values())[:limit]

    async def _response_time(self, conversation: str, now: float) -> dict[str, Any]:
        row = await self.store.fetchone(
            "SELECT MAX(seq) AS seq FROM msg_messages WHERE conversation=? AND direction='outbound' "
            "AND COALESCE(json_extract(meta, '$.auto'), 0) = 0",
            (conversation,),
        )
        last_reply = row["seq"] if row and row["seq"] is not None else None
        waiting = await self.store.fetchone(
            "SELECT MIN(created) AS t FROM msg_messages WHERE conversation=? AND direction='inbound' AND seq > ?",
            (conversation, last_reply or 0),
        )
        if waiting is None or waiting["t"] is None:
            return {}
        return {"response_seconds": round(now - float(waiting["t"]), 3), "first_response": last_reply is None}

    async def response_times(self) -> list[dict[str, Any]]:
        """Every measured reply: conversation, seconds, first or next response (for service levels)."""
        rows = await self.store.fetchall(
            "SELECT conversation, created, json_extract(meta, '$.response_seconds') AS seconds, "
            "json_extract(meta, '$.first_response') AS first FROM msg_messages "
            "WHERE channel=? AND direction='outbound' AND json_extract(meta, '$.response_seconds') IS NOT NULL "
            "ORDER BY seq",
            (self.channel,),
        )
        return [{"conversation": r["conversation"], "created": r["created"], "seconds": r["seconds"],
                 "first": bool(r["first"])} for r in rows]

    async def due(self, now: float, limit: int = 50) -> list[OutboundMessage]:
        """Messages to try now: the head of each conversation's queue, if its retry time has come."""
        return [
            OutboundMessage(
                id=str(r["id"]),
                conversation=str(r["conversation"]),
                body=str(r["body"]),
                customer=str(r["customer"]),
                address=str(r["address"]),
                subject=str(r["subject"]),
                attempts=int(r["attempts"]),
                meta=json.loads(r["meta"] or "{}"),
                conversation_meta=json.loads(r["conversation_meta"] or "{}"),
            )
            for r in await self._heads(limit)
            if float(r["next_attempt"]) <= now
        ]

    async def next_due(self) -> float | None:
        heads = await self._heads(1000)
        return min((float(r["next_attempt"]) for r in heads), default=None)

    async def pending_count(self) -> int:
        row = await self.store.fetchone("SELECT COUNT(*) AS n FROM msg_outbox WHERE channel=?", (self.channel,))
        return int(row["n"]) if row else 0

    async def delivered(self, message: str, external_id: str | None, status: str = "sent") -> None:
        now = time.time()
        await self.store.write_many([
            ("DELETE FROM msg_outbox WHERE message=?", (message,)),
            (
                # 'read' is the last word: a visitor's "seen" may be stored before the outbox records 'sent'
                ("UPDATE msg_messages SET status=CASE WHEN status='read' THEN 'read' ELSE ? END, "
                 "external_id=COALESCE(?, external_id), updated=? WHERE id=?"),
                (status, external_id, now, message),
            ),
        ])

    async def retry_later(self, message: str, attempts: int, next_attempt: float, error: str) -> None:
        await self.store.write(
            "UPDATE msg_outbox SET attempts=?, next_attempt=?, last_error=? WHERE message=?",
            (attempts, next_attempt, error[:500], message),
        )

    async def failed(self, message: str, error: str) -> None:
        now = time.time()
        await self.store.write_many([
            ("DELETE FROM msg_outbox WHERE message=?", (message,)),
            (
                "UPDATE msg_messages SET status='failed', meta=json_set(meta, '$.error', ?), updated=? WHERE id=?",
                (error[:500], now, message),
            ),
        ])

    async def set_status_by_external(self, external_id: str, status: str) -> bool:
        """A delivery receipt or bounce: update the outbound message the peer knows as ``external_id``."""
        row = await self.store.fetchone(
            "SELECT id FROM msg_messages WHERE channel=? AND external_id=? AND direction='outbound'",
            (self.channel, external_id),
        )
        if row is None:
            return False
        await self.store.write(
            "UPDATE msg_messages SET status=?, updated=? WHERE id=? AND status <> 'read'", (status, time.time(), row["id"])
        )
        return True

    async def mark_read(self, conversation: str, direction: str, up_to: str | None = None) -> int:
        """Messages of ``direction`` in ``conversation`` become ``read``: all of them, or those up to and
        including message ``up_to`` (which must belong to this conversation and direction, else nothing
        changes: a visitor cannot mark someone else's messages). Failed messages stay failed.
        Returns how many changed."""
        if direction not in ("inbound", "outbound"):
            raise ValueError(f"direction must be inbound or outbound, not {direction!r}")
        limit = 2**62
        if up_to is not None:
            row = await self.store.fetchone(
                "SELECT seq FROM msg_messages WHERE id=? AND conversation=? AND direction=?", (up_to, conversation, direction)
            )
            if row is None:
                return 0
            limit = int(row["seq"])
        unread = await self.store.fetchone(
            "SELECT COUNT(*) AS n FROM msg_messages WHERE conversation=? AND direction=? AND seq<=? "
            "AND status NOT IN ('read', 'failed')",
            (conversation, direction, limit),
        )
        if not unread or not unread["n"]:
            return 0  # the common case (a widget repeating "seen"): no write at all
        await self.store.write(
            "UPDATE msg_messages SET status='read', updated=? WHERE conversation=? AND direction=? AND seq<=? "
            "AND status NOT IN ('read', 'failed')",
            (time.time(), conversation, direction, limit),
        )
        return int(unread["n"])

    async def message(self, message: str) -> dict[str, Any] | None:
        return _decode(await self.store.fetchone("SELECT * FROM msg_messages WHERE id=?", (message,)))

    # --------------------------------------------------------------------------------- opt-outs

    async def opt_out(self, address: str, reason: str) -> None:
        await self.store.write(
            "INSERT OR IGNORE INTO msg_do_not_contact(channel, address, reason, created) VALUES (?,?,?,?)",
            (self.channel, address, reason, time.time()),
        )

    async def opted_out(self, address: str) -> bool:
        row = await self.store.fetchone(
            "SELECT 1 FROM msg_do_not_contact WHERE channel=? AND address=?", (self.channel, address)
        )
        return row is not None


def _decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    for key in ("meta",):
        if isinstance(out.get(key), str):
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                out[key] = {}
    return out
