"""The web chat channel: visitor sessions over WebSocket, one conversation per session token.

A visitor's token lives in their browser's localStorage; it maps (hashed) to the conversation, so a
reload or a dropped connection resumes the same conversation with its history. Every visitor frame
passes the protocol validator and a per-session token bucket; a socket that floods, keeps sending
garbage or never reads is closed with the reason logged. Nothing a visitor sends is shown as HTML.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from engine import Interaction, InteractionKind, InteractionState, PluginContext
from engine.abc import MessagingChannel
from engine.messaging import (
    ConversationReplies,
    InteractionBinder,
    MessageStore,
    OutboundMessage,
    Outbox,
    RetryPolicy,
)

from ._protocol import TokenBucket, estimate_wait, frame
from ._settings import ChatSettings

log = logging.getLogger("centralita.chat")


def _safe_filename(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip(" .")
    return (name or "file")[:100]


def token_alias(token: str) -> str:
    return "token:" + hashlib.sha256(token.encode()).hexdigest()


@dataclass(eq=False)
class VisitorConnection:
    outgoing: trio.MemorySendChannel[str]
    closed: trio.Event = field(default_factory=trio.Event)
    close_reason: str = ""
    #: Called once when the connection is given up (detach it from its session, count why).
    on_close: Any = None

    def push(self, text: str) -> None:
        """Queue a frame; a visitor whose queue is full is not reading: close them."""
        try:
            self.outgoing.send_nowait(text)
        except trio.WouldBlock:
            self.close("not reading (outgoing queue full)")
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def close(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
            if self.on_close is not None:
                self.on_close(self)


@dataclass(eq=False)
class VisitorSession:
    token: str
    customer: str
    name: str
    bucket: TokenBucket
    #: what the website said the visitor is (``data-email`` on the widget's script tag): unverified
    email: str = ""
    conversation: str | None = None
    connections: set[VisitorConnection] = field(default_factory=set)
    last_queue_frame: str = ""
    last_transcript: float = float("-inf")

    def broadcast(self, text: str) -> None:
        for connection in list(self.connections):
            connection.push(text)


class ChatChannel(ConversationReplies, MessagingChannel):
    name = "chat"
    kinds = frozenset({InteractionKind.CHAT})

    def __init__(self, context: PluginContext) -> None:
        self.settings: ChatSettings = context.settings or ChatSettings()
        self.context = context
        self.engine = context.engine
        self.messages = MessageStore(context.store, "chat")
        self.binder = InteractionBinder(context.engine, "chat", InteractionKind.CHAT)
        self.outbox = Outbox(self.messages, self._deliver,
                             policy=RetryPolicy(first=self.settings.retry_first, cap=self.settings.retry_max))
        self.sessions: dict[str, VisitorSession] = {}  # by token alias
        self.by_conversation: dict[str, VisitorSession] = {}
        self.engine_started = trio.Event()
        self._ready = trio.Event()
        self._positions_cache: tuple[float, dict[str, int], dict[str, int]] | None = None
        self.counters = {"connections": 0, "open": 0, "received": 0, "sent": 0, "rejected_frames": 0,
                         "rate_limited": 0, "closed_for_abuse": 0, "closed_not_reading": 0, "read": 0}

    # ------------------------------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.outbox.run)
            task_status.started()
            await self.resume(nursery, reoffer_after=self.settings.reoffer_after)
            self._ready.set()
            await self._serve_queue_updates()

    def ready(self) -> bool:
        return self._ready.is_set()

    def statistics(self) -> dict[str, Any]:
        return {**self.counters, "sessions": len(self.sessions), "outbox": self.outbox.statistics()}

    # ------------------------------------------------------------------------------------ visitors

    async def open_session(self, token: str | None, name: str, email: str = "") -> tuple[VisitorSession, list[dict[str, Any]]]:
        """The visitor's session for ``token`` (a new one if unknown) and its history."""
        session, history = await self._open_session(token, name)
        if email:
            session.email = email
        return session, history

    async def _open_session(self, token: str | None, name: str) -> tuple[VisitorSession, list[dict[str, Any]]]:
        if token:
            alias = token_alias(token)
            session = self.sessions.get(alias)
            if session is None:
                conversation = await self.messages.find_by_alias([alias])
                if conversation is not None:
                    row = await self.messages.conversation(conversation)
                    session = self._new_session(token, name, customer=row["customer"] if row else None)
                    session.conversation = conversation
                    self.by_conversation[conversation] = session
            if session is not None:
                history = await self._history(session)
                return session, history
        session = self._new_session(secrets.token_urlsafe(24), name)
        return session, []

    async def session_for_token(self, token: str) -> VisitorSession | None:
        """An existing session (a known token), never a new one."""
        if not 10 <= len(token) <= 100:
            return None
        session = self.sessions.get(token_alias(token))
        if session is None and await self.messages.find_by_alias([token_alias(token)]) is not None:
            session, _ = await self.open_session(token, "")
        return session

    def _new_session(self, token: str, name: str, customer: str | None = None) -> VisitorSession:
        alias = token_alias(token)
        session = VisitorSession(token, customer or f"visitor:{alias[6:18]}", name,
                                 TokenBucket(self.settings.rate, self.settings.burst))
        self.sessions[alias] = session
        return session

    async def _history(self, session: VisitorSession) -> list[dict[str, Any]]:
        if session.conversation is None:
            return []
        rows = await self.messages.history(session.conversation)
        return [{"id": r["id"], "direction": r["direction"], "text": r["body"], "created": r["created"]}
                for r in rows[-self.settings.history_limit:]]

    async def visitor_says(self, session: VisitorSession, text: str, meta: dict[str, Any] | None = None) -> None:
        with trio.fail_after(30):  # a visitor who writes while the engine is still starting waits a moment
            await self._ready.wait()
        first = session.conversation is None
        result = await self.messages.record_inbound(
            customer=session.customer, address=self.settings.address, body=text,
            external_id=f"chat:{uuid.uuid4().hex}", conversation=session.conversation,
            aliases=[token_alias(session.token)] if first else [], meta={"name": session.name, **(meta or {})}, unique=True,
        )
        session.conversation = result.conversation
        self.by_conversation[result.conversation] = session
        self.counters["received"] += 1
        session.broadcast(frame("message", direction="inbound", text=text, id=result.message, created=time.time()))
        await self.binder.inbound(result.conversation, customer=session.customer, address=self.settings.address,
                                  caller_name=session.name, message=text[:500],
                                  attributes={"claimed_email": session.email} if session.email else None)
        self._queue_update(session)

    async def visitor_uploads(self, session: VisitorSession, filename: str, content_type: str, data: bytes) -> str:
        """Store a file the visitor sent (type and size already checked) and post it as a message."""
        safe = _safe_filename(filename)
        folder = Path(self.context.data_dir) / "chat" / "uploads" / secrets.token_hex(8)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / safe
        await trio.to_thread.run_sync(path.write_bytes, data)
        relative = str(path.relative_to(self.context.data_dir))
        await self.visitor_says(session, f"[file] {safe} ({len(data)} bytes)",
                                meta={"attachment": {"path": relative, "content_type": content_type, "size": len(data)}})
        return relative

    async def send_transcript(self, session: VisitorSession, email: str) -> None:
        """Mail the conversation to the visitor through the email channel (found via the engine, never
        imported). Raises ValueError with a reason the visitor may see."""
        mailer = getattr(self.engine.channels.get("email"), "send_transcript", None)
        if mailer is None:
            raise ValueError("transcripts by email are not available here")
        if session.conversation is None:
            raise ValueError("nothing to send yet")
        now = trio.current_time()
        if now - session.last_transcript < self.settings.transcript_interval:
            raise ValueError("a transcript was sent a moment ago")
        session.last_transcript = now
        lines = []
        for row in await self.messages.history(session.conversation):
            who = (session.name or "You") if row["direction"] == "inbound" else "Agent"
            stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row["created"]))
            lines.append(f"[{stamp} UTC] {who}: {row['body']}")
        await mailer(email, "Your chat transcript", "\n".join(lines) + "\n")

    async def visitor_saw(self, session: VisitorSession, message: str) -> None:
        """The widget showed the agent's messages up to ``message``: they are ``read``. An id from another
        conversation, or an inbound one, changes nothing (a visitor can only mark what was sent to them)."""
        if session.conversation is None:
            return
        if await self.messages.mark_read(session.conversation, "outbound", up_to=message):
            self.counters["read"] += 1

    def visitor_typing(self, session: VisitorSession, on: bool) -> None:
        interaction = self.binder.interaction_for(session.conversation) if session.conversation else None
        if interaction is not None:
            self.engine.bus.publish("ChatTyping", interaction=interaction.id, Party="visitor", Typing=on)

    def agent_typing(self, interaction: Interaction, on: bool) -> None:
        """For the console/API: show the visitor that the agent is typing."""
        session = self.by_conversation.get(self.binder.conversation_of(interaction))
        if session is not None:
            session.broadcast(frame("typing", on=on))

    async def announce(self, interaction: Interaction, position: int, wait_low: float, wait_high: float) -> None:
        """The routing core's periodic announcement (position and expected wait)."""
        session = self.by_conversation.get(str(interaction.attributes.get("conversation", "")))
        if session is not None:
            self._push_queue(session, position, (wait_low + wait_high) / 2)

    # ------------------------------------------------------------------------------------ queue info

    def _queue_update(self, session: VisitorSession) -> None:
        interaction = self.binder.interaction_for(session.conversation) if session.conversation else None
        if interaction is None:
            return
        if interaction.state in (InteractionState.QUEUED, InteractionState.OFFERED, InteractionState.NEW):
            positions, lengths = self._positions()
            position = positions.get(interaction.id, lengths.get(interaction.queue or "", 0) + 1)
            agents = self._available_agents(interaction.queue)
            self._push_queue(session, position, estimate_wait(position, agents, self.settings.assumed_handle_time))
        else:
            self._push_queue(session, 0, 0.0)

    def _positions(self) -> tuple[dict[str, int], dict[str, int]]:
        """Queue position of every waiting chat, recomputed at most every 0.25 s: with a thousand
        visitors, sorting the queue for each of them on every message would cost O(n^2 log n)."""
        now = trio.current_time()
        if self._positions_cache is not None and now - self._positions_cache[0] < 0.25:
            return self._positions_cache[1], self._positions_cache[2]
        by_queue: dict[str, list[Interaction]] = {}
        for i in self.engine.interactions.values():
            if i.state in (InteractionState.QUEUED, InteractionState.OFFERED):
                by_queue.setdefault(i.queue or "", []).append(i)
        positions: dict[str, int] = {}
        for waiting in by_queue.values():
            waiting.sort(key=lambda i: i.created)
            positions.update((i.id, n) for n, i in enumerate(waiting, 1))
        lengths = {q: len(w) for q, w in by_queue.items()}
        self._positions_cache = (now, positions, lengths)
        return positions, lengths

    def _available_agents(self, queue: str | None) -> int:
        if not queue:
            return 1
        try:
            return int(self.engine.queue_detail(queue).get("available", 1)) or 1
        except (KeyError, ValueError, TypeError, AttributeError):
            return 1

    def _push_queue(self, session: VisitorSession, position: int, wait: float) -> None:
        text = frame("queue", position=position, wait=wait)
        if text != session.last_queue_frame:
            session.last_queue_frame = text
            session.broadcast(text)

    async def _serve_queue_updates(self) -> None:
        while True:
            for session in list(self.by_conversation.values()):
                if session.connections:
                    self._queue_update(session)
            await trio.sleep(self.settings.queue_update_interval)

    # ------------------------------------------------------------------------------------ outbound

    async def _deliver(self, message: OutboundMessage) -> str:
        # Stored first (the outbox row), so a visitor who is offline sees it in the history on return.
        session = self.by_conversation.get(message.conversation)
        if session is not None:
            session.broadcast(frame("message", direction="outbound", text=message.body, id=message.id,
                                    created=time.time()))
            self._queue_update(session)
        self.counters["sent"] += 1
        return f"chat:{message.id}"
