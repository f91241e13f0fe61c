"""A real HTTP server on 127.0.0.1 (raw trio sockets) playing an external CRM, hostile when told to.

Raw sockets rather than a framework so a test can answer anything at all: wrong JSON, a body of
megabytes, a lie in Content-Length, nothing (it sleeps), or no server (it is stopped and restarted on the
same port to simulate an outage).
"""

from __future__ import annotations

import functools
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from plugins.crm_webhook import SignatureError, verify

SECRET = "s3cret-shared-with-the-crm"
MAX_REQUEST = 1024 * 1024


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    status: int = 0

    @property
    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.target).query))


@dataclass
class FakeCrmServer:
    """``contacts``: lookup value -> JSON-able answer; ``lookup_raw`` overrides with exact bytes."""

    contacts: dict[str, Any] = field(default_factory=dict)
    lookup_raw: bytes | None = None
    lookup_delay: float = 0.0
    lookup_headers: str = "Content-Type: application/json\r\n"
    push_delay: float = 0.0
    #: statuses for the next pushes, one each, before ``push_status`` applies again
    push_script: list[int] = field(default_factory=list)
    push_status: int = 200
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    #: pushes whose signature verified, in arrival order (duplicates kept: tests count them)
    pushes: list[Request] = field(default_factory=list)
    bad_signatures: int = 0
    secret: str = SECRET
    _scope: trio.CancelScope | None = None
    _nursery: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def accepted(self) -> list[dict[str, Any]]:
        """Bodies of the pushes this CRM answered 2xx to, in arrival order."""
        return [json.loads(r.body) for r in self.pushes if 200 <= r.status < 300]

    async def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._scope = await nursery.start(self._serve)

    async def start_again(self) -> None:
        """The CRM comes back on the same port."""
        self._scope = await self._nursery.start(self._serve)

    def stop(self) -> None:
        """The CRM goes away: the listening socket is closed (connections are refused)."""
        assert self._scope is not None
        self._scope.cancel()
        self._scope = None

    async def _serve(self, task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                listeners = await nursery.start(functools.partial(trio.serve_tcp, self._handle, self.port, host="127.0.0.1"))
                self.port = listeners[0].socket.getsockname()[1]
                task_status.started(scope)

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            request = await _read_request(stream)
            if request is None:
                return
            self.requests.append(request)
            status, body, extra = await self._respond(request)
            head = f"HTTP/1.1 {status} X\r\nConnection: close\r\n{extra}"
            if "Content-Length" not in extra:
                head += f"Content-Length: {len(body)}\r\n"
            await stream.send_all(head.encode() + b"\r\n" + body)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await stream.aclose()

    async def _respond(self, request: Request) -> tuple[int, bytes, str]:
        if request.target.startswith("/broken"):
            return 500, b"Internal Server Error", ""
        if request.method == "GET" and request.target.startswith("/lookup"):
            if self.lookup_delay:
                await trio.sleep(self.lookup_delay)
            if self.lookup_raw is not None:
                return 200, self.lookup_raw, self.lookup_headers
            query = request.query
            key = query.get("phone") or query.get("email") or ""
            if key not in self.contacts:
                return 404, b"{}", ""
            return 200, json.dumps(self.contacts[key]).encode(), "Content-Type: application/json\r\n"
        if request.method == "POST" and request.target == "/push":
            try:
                verify(self.secret, request.headers, request.body, now=time.time())
            except SignatureError:
                self.bad_signatures += 1
                return 401, b"bad signature", ""
            if self.push_delay:
                await trio.sleep(self.push_delay)
            request.status = self.push_script.pop(0) if self.push_script else self.push_status
            self.pushes.append(request)
            return request.status, b"", ""
        return 404, b"", ""


async def _read_request(stream: trio.SocketStream) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk or len(data) > MAX_REQUEST:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        body += chunk
    return Request(method, target, headers, body)


@pytest.fixture
async def crm_server(nursery: trio.Nursery) -> AsyncIterator[FakeCrmServer]:
    server = FakeCrmServer()
    await server.start(nursery)
    yield server


@pytest.fixture
def crm_server_class() -> type[FakeCrmServer]:
    """For tests that start their own servers (hypothesis examples run their own ``trio.run``)."""
    return FakeCrmServer
