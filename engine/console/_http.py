"""Framework-free ASGI plumbing: a request object, responses, a tiny router.

Why not Starlette: we need about a dozen routes, a body-size limit and cookie handling; a framework
would add a dependency and a second way of doing things that plugin authors would have to learn.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

#: Bodies above this are refused with 413 before they are fully read.
MAX_BODY = 64 * 1024

_CLOSE = {"connection": "close"}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class HttpError(Exception):
    """Something the client got wrong (or may not do): becomes a JSON error response."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class Request:
    scope: Scope
    receive: Receive
    path_params: dict[str, str] = field(default_factory=dict)
    #: set by the auth layer: the authenticated principal, if any
    principal: Any = None
    #: the matched route is an HTML page (errors are then shown as a page, not JSON)
    page: bool = False
    #: the whole body has been received (or the client is gone)
    body_done: bool = False
    _body: bytes | None = None

    @property
    def method(self) -> str:
        return str(self.scope.get("method", "GET")).upper()

    @property
    def path(self) -> str:
        return str(self.scope.get("path", "/"))

    @property
    def client_host(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else "?"

    @property
    def is_https(self) -> bool:
        return self.scope.get("scheme") in ("https", "wss")

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode("latin-1")
        for key, value in self.scope.get("headers", ()):
            if key.lower() == wanted:
                return bytes(value).decode("latin-1")
        return None

    @property
    def query(self) -> dict[str, str]:
        raw = bytes(self.scope.get("query_string", b"")).decode("latin-1")
        return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))

    @property
    def cookies(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in (self.header("cookie") or "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name and name not in out:
                out[name] = value
        return out

    def accepts(self, media_type: str) -> bool:
        return media_type in (self.header("accept") or "")

    async def body(self, limit: int = MAX_BODY) -> bytes:
        """The whole body, refusing (413) anything larger than ``limit`` without buffering it all."""
        if self._body is not None:
            return self._body
        declared = self.header("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HttpError(413, f"request body too large (limit {limit} bytes)", headers=_CLOSE)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.body_done = True
                raise HttpError(400, "client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                # closing is the only way to stop a sender we will not read any further
                raise HttpError(413, f"request body too large (limit {limit} bytes)", headers=_CLOSE)
            chunks.append(chunk)
            if not message.get("more_body", False):
                self.body_done = True
                break
        self._body = b"".join(chunks)
        return self._body

    async def discard_rest(self, timeout: float = 5.0) -> None:
        """Read and drop what is left of a body we answered without reading.

        Why: hypercorn queues body chunks for the app in a bounded channel; if nobody takes them, it
        blocks before it can tell the app the stream closed, and the connection hangs instead of
        closing. Bounded in time; the connection is closed after the response anyway.
        """
        with trio.move_on_after(timeout):
            while not self.body_done:
                message = await self.receive()
                if message["type"] == "http.disconnect" or not message.get("more_body", False):
                    self.body_done = True

    async def json(self) -> dict[str, Any]:
        """The body as a JSON object; 400 with a reason for anything else."""
        raw = await self.body()
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise HttpError(400, f"body must be a JSON object, got {type(value).__name__}")
        return value

    async def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body (or a JSON object of strings)."""
        if (self.header("content-type") or "").startswith("application/json"):
            data = await self.json()
            return {k: v for k, v in data.items() if isinstance(v, str)}
        raw = (await self.body()).decode("utf-8", "replace")
        return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, send: Send) -> None:
        headers = [
            (b"content-type", self.content_type.encode("latin-1")),
            (b"content-length", str(len(self.body)).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-store"),
        ]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def json_response(value: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(value, default=str, separators=(",", ":")).encode()
    return Response(status, body, "application/json", list(headers or []))


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, list((headers or {}).items()))


def text_response(text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, text.encode(), content_type)


def redirect(location: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(303, b"", "text/plain", [("location", location), *(headers or [])])


Handler = Callable[[Request], Awaitable[Response]]

_PARAM = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: Handler
    #: minimum role; None = public
    role: str | None
    #: state-changing routes need a CSRF token when authenticated by cookie
    csrf: bool
    #: an HTML page: without a session it redirects to the login page instead of answering 401
    page: bool = False
    #: still reachable while the user must change a one-time password
    before_password_change: bool = False


class Router:
    """Exact-template routes (``/api/v1/queues/{name}``); a parameter matches one path segment."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        role: str | None,
        csrf: bool | None = None,
        page: bool = False,
        before_password_change: bool = False,
    ) -> None:
        regex = "^" + _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        needs_csrf = method not in ("GET", "HEAD") if csrf is None else csrf
        self.routes.append(
            Route(method, re.compile(regex), template, handler, role, needs_csrf, page, before_password_change)
        )

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for route in self.routes:
            found = route.pattern.match(path)
            if not found:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                params = {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
                return route, params
            allowed.append(route.method)
        if allowed:
            raise HttpError(405, f"method {method} not allowed here", headers={"allow": ", ".join(sorted(set(allowed)))})
        raise HttpError(404, "not found")
