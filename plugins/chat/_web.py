"""The chat's public routes on the console server (ASGI): the widget script, a paste-in snippet, a
demo page and the visitor WebSocket at ``/chat/ws``."""

from __future__ import annotations

import html
import json
import logging
from importlib import resources
from typing import Any

import trio

from ._channel import ChatChannel, VisitorConnection, VisitorSession
from ._protocol import Hello, Ping, Say, Seen, Transcript, Typing, VisitorError, frame, parse_frame

log = logging.getLogger("centralita.chat.web")

PREFIX = "/chat/"
SNIPPET = '<script src="{base}/chat/widget.js" async></script>'
DEMO_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Centralita chat demo</title></head>
<body><h1>Example shop</h1><p>The chat widget is in the corner. The snippet on this page:</p>
<pre>{snippet_shown}</pre>
{snippet}
</body></html>
"""
Scope = dict[str, Any]


def _widget_source() -> bytes:
    return resources.files(__package__).joinpath("widget.js").read_bytes()


class ChatWeb:
    def __init__(self, channel: ChatChannel) -> None:
        self.channel = channel
        self.widget = _widget_source()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        relative = path.removeprefix("/chat")
        if scope["type"] == "websocket":
            if relative == "/ws":
                await self.visitor_socket(receive, send)
            else:
                await receive()
                await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        if relative == "/upload":
            await self.upload(scope, receive, send)
            return
        base = self._base(scope)
        snippet = SNIPPET.format(base=base)
        if relative == "/widget.js":
            await _respond(send, 200, "application/javascript; charset=utf-8", self.widget,
                           [(b"cache-control", b"max-age=300")])
        elif relative == "/snippet":
            await _respond(send, 200, "text/plain; charset=utf-8", (snippet + "\n").encode())
        elif relative in ("", "/", "/demo"):
            page = DEMO_PAGE.format(snippet=snippet, snippet_shown=html.escape(snippet))
            await _respond(send, 200, "text/html; charset=utf-8", page.encode())
        else:
            await _respond(send, 404, "text/plain; charset=utf-8", b"not found\n")

    @staticmethod
    def _base(scope: Scope) -> str:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "127.0.0.1")
        scheme = "https" if scope.get("scheme") == "https" else "http"
        return f"{scheme}://{host}"

    # ------------------------------------------------------------------------------------ uploads

    async def upload(self, scope: Scope, receive: Any, send: Any) -> None:
        """``POST /chat/upload`` with headers ``X-Chat-Token`` and ``X-Filename``, the file as the body.
        Refused (with the reason) before storing anything: unknown session, wrong type, too large."""
        settings = self.channel.settings
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if scope.get("method") != "POST":
            await _respond(send, 405, "text/plain; charset=utf-8", b"POST a file\n")
            return
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        declared = headers.get("content-length", "")
        problem = ""
        session = await self.channel.session_for_token(headers.get("x-chat-token", ""))
        if session is None or session.conversation is None:
            status, problem = 403, "unknown chat session (write a message first)"
        elif content_type not in settings.upload_types:
            status, problem = 415, f"files of type {content_type or '?'} are not accepted"
        elif declared.isdigit() and int(declared) > settings.max_upload_bytes:
            status, problem = 413, f"file larger than {settings.max_upload_bytes} bytes"
        elif not session.bucket.allow(trio.current_time(), cost=2.0):
            status, problem = 429, "too many messages; wait a moment"
        body = bytearray()
        while not problem:
            message = await receive()
            if message["type"] != "http.request":
                return  # the visitor went away
            body += message.get("body", b"")
            if len(body) > settings.max_upload_bytes:
                status, problem = 413, f"file larger than {settings.max_upload_bytes} bytes"
                break
            if not message.get("more_body"):
                break
        if problem:
            log.info("chat: upload refused: %s", problem)
            await _respond(send, status, "application/json", json.dumps({"error": problem}).encode())
            return
        assert session is not None
        path = await self.channel.visitor_uploads(session, headers.get("x-filename", "file"), content_type, bytes(body))
        await _respond(send, 201, "application/json", json.dumps({"stored": path.rsplit("/", 1)[-1]}).encode())

    # ------------------------------------------------------------------------------------ WebSocket

    async def visitor_socket(self, receive: Any, send: Any) -> None:
        first = await receive()
        if first.get("type") != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        channel = self.channel
        settings = channel.settings
        outgoing, frames = trio.open_memory_channel[str](64)
        session: VisitorSession | None = None

        def given_up(conn: VisitorConnection) -> None:
            # Detach at once: a socket whose send is stuck in the server's (shielded) write must not
            # keep receiving broadcasts while the kernel still holds the TCP connection.
            if session is not None:
                session.connections.discard(conn)
            if conn.close_reason.startswith("not reading"):
                channel.counters["closed_not_reading"] += 1
                log.info("chat: visitor socket given up: %s", conn.close_reason)

        connection = VisitorConnection(outgoing, on_close=given_up)
        violations = 0
        channel.counters["connections"] += 1
        channel.counters["open"] += 1
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, frames, send, connection, settings.send_timeout)

                async def close_when_told() -> None:
                    await connection.closed.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(close_when_told)
                while True:
                    message = await receive()
                    if message["type"] == "websocket.disconnect":
                        connection.close("visitor left")
                        break
                    if message["type"] != "websocket.receive":
                        continue
                    raw = message.get("text")
                    if raw is None:
                        raw = message.get("bytes") or b""
                    try:
                        command = parse_frame(raw, max_chars=settings.max_message_chars)
                        if isinstance(command, Hello):
                            if session is not None:
                                raise VisitorError("hello was already said")
                            session, history = await channel.open_session(command.token, command.name, command.email)
                            if len(session.connections) >= settings.max_connections_per_session:
                                raise VisitorError("too many open windows for this conversation")
                            session.connections.add(connection)
                            connection.push(frame("welcome", token=session.token, history=history))
                            session.last_queue_frame = ""
                            channel._queue_update(session)
                        elif session is None:
                            raise VisitorError("say hello first")
                        elif isinstance(command, Say):
                            if not session.bucket.allow(trio.current_time()):
                                channel.counters["rate_limited"] += 1
                                raise VisitorError(f"too fast: at most {settings.rate:g} messages per second")
                            try:
                                await channel.visitor_says(session, command.text)
                            except (trio.TooSlowError, OSError, RuntimeError) as exc:
                                log.warning("chat: could not take a visitor message: %s", exc)
                                connection.push(frame("error", reason="not stored, please send it again"))
                        elif isinstance(command, Typing):
                            channel.visitor_typing(session, command.on)
                        elif isinstance(command, Seen):
                            # each costs the store a look-up: a flood of them is refused like any other
                            if not session.bucket.allow(trio.current_time(), cost=0.25):
                                channel.counters["rate_limited"] += 1
                                raise VisitorError("too fast: 'seen' frames are rate limited too")
                            await channel.visitor_saw(session, command.message)
                        elif isinstance(command, Ping):
                            connection.push(frame("pong"))
                        elif isinstance(command, Transcript):
                            try:
                                await channel.send_transcript(session, command.email)
                            except ValueError as exc:
                                raise VisitorError(str(exc)) from None
                            connection.push(frame("transcript", queued=True))
                    except VisitorError as exc:
                        violations += 1
                        channel.counters["rejected_frames"] += 1
                        connection.push(frame("error", reason=exc.reason))
                        if violations > settings.max_violations and not connection.closed.is_set():
                            channel.counters["closed_for_abuse"] += 1
                            connection.close(f"too many refused frames (last: {exc.reason})")
                nursery.cancel_scope.cancel()
        finally:
            channel.counters["open"] -= 1
            if session is not None:
                session.connections.discard(connection)
            if connection.close_reason not in ("", "visitor left"):
                log.info("chat: closed a visitor socket: %s", connection.close_reason)
                with trio.move_on_after(1) as scope:
                    scope.shield = True
                    try:
                        await send({"type": "websocket.close", "code": 1008})
                    except Exception:  # noqa: BLE001,S110 (the transport may already be gone; nothing to add)
                        pass

    async def _pump(self, frames: trio.MemoryReceiveChannel[str], send: Any, connection: VisitorConnection,
                    timeout: float) -> None:
        async for text in frames:
            with trio.move_on_after(timeout) as scope:
                try:
                    await send({"type": "websocket.send", "text": text})
                except Exception:  # noqa: BLE001 (whatever the server raises, this visitor is gone)
                    connection.close("visitor connection broken")
                    return
            if scope.cancelled_caught:
                connection.close("not reading (send timed out)")
                return


async def _respond(send: Any, status: int, content_type: str, body: bytes,
                   extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
               (b"x-content-type-options", b"nosniff"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
