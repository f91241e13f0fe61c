"""A minimal WebSocket client (trio + wsproto) for the chat tests, plus the engine config."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request, TextMessage

CHAT_CONFIG = """
[[agents]]
id = "alice"
endpoint = "sip:1001"
channels = { chat = 3 }

[[queues]]
name = "web"
members = ["alice"]

[[routes]]
match = "webchat"
queue = "web"

[chat]
queue_update_interval = 0.2
rate = 5.0
burst = 5
max_violations = 5
send_timeout = 2.0
"""


class WsClient:
    """Speaks just enough WebSocket to be a chat visitor; ``read_frames=False`` never reads."""

    def __init__(self, stream: trio.SocketStream, ws: WSConnection) -> None:
        self.stream = stream
        self.ws = ws
        self.inbox: list[dict[str, Any]] = []
        self.closed = False
        self._pending = ""

    @classmethod
    async def connect(cls, base_url: str, path: str = "/chat/ws") -> WsClient:
        parts = urlsplit(base_url)
        stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host=parts.netloc, target=path)))
        client = cls(stream, ws)
        with trio.fail_after(10):
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    raise ConnectionError("closed during handshake")
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        return client
                    raise ConnectionError(f"handshake refused: {event!r}")

    async def send_json(self, obj: Any) -> None:
        await self.send_text(json.dumps(obj))

    async def send_text(self, text: str) -> None:
        await self.stream.send_all(self.ws.send(Message(data=text)))

    async def receive(self, kind: str | None = None, timeout: float = 10) -> dict[str, Any]:
        """The next frame (of ``kind`` if given)."""
        with trio.fail_after(timeout):
            while True:
                for index, item in enumerate(self.inbox):
                    if kind is None or item.get("type") == kind:
                        return self.inbox.pop(index)
                if self.closed:
                    raise ConnectionError("closed")
                await self._read_more()

    async def wait_closed(self, timeout: float = 10) -> None:
        with trio.fail_after(timeout):
            while not self.closed:
                await self._read_more()

    async def _read_more(self) -> None:
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.closed = True
            return
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                self._pending += event.data
                if event.message_finished:
                    self.inbox.append(json.loads(self._pending))
                    self._pending = ""
            elif isinstance(event, CloseConnection):
                self.closed = True
            elif isinstance(event, Ping):
                await self.stream.send_all(self.ws.send(event.response()))

    async def aclose(self) -> None:
        await self.stream.aclose()


import pytest


@pytest.fixture
def chat_config() -> str:
    return CHAT_CONFIG


@pytest.fixture
def ws_client() -> type[WsClient]:
    return WsClient
