"""The console's ASGI application: routing, authentication, role and CSRF checks, error mapping.

Order of checks for a request: route (404/405) -> credentials (401; pages redirect to the login page)
-> forced password change (403) -> role (403) -> CSRF for cookie-authenticated state changes (403) ->
handler. ``KeyError`` from the engine becomes 404, ``ValueError`` 409; anything else is logged and
answered 500 without details.
"""

from __future__ import annotations

import logging
import secrets
import urllib.parse
from collections import Counter
from typing import Any

import trio

from .._bus import EventBus
from .._events import safe_text
from .._registry import HttpRouteRegistry
from ..abc import EngineAPI
from ._alarms import ActiveAlarms
from ._api import Api
from ._campaign_api import CampaignApi
from ._desk_api import DeskApi
from ._auth import SESSION_COOKIE, SESSION_LIFETIME, Authenticator, Principal
from ._http import HttpError, Receive, Request, Response, Router, Scope, Send, error_response, json_response, redirect
from ._html import page as html_page
from ._html import tag
from ._logs import RingLogHandler
from ._metrics import render_metrics
from ._pages import Pages
from ._pages_admin import AdminPages
from ._recordings import RecordingsPages
from ._device_test import DeviceTestPages
from ._ws import WsStatistics, serve_events

log = logging.getLogger("centralita.console")

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


class ConsoleApp:
    def __init__(
        self,
        engine: EngineAPI,
        bus: EventBus,
        auth: Authenticator,
        plugin_routes: HttpRouteRegistry,
        *,
        ws_buffer: int = 256,
        tls_fingerprint: str | None = None,
        logs: RingLogHandler | None = None,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.auth = auth
        self.plugin_routes = plugin_routes
        self.ws_buffer = ws_buffer
        self.ws_stats = WsStatistics()
        self.responses: Counter[str] = Counter()
        self.router = Router()
        self.router.add("GET", "/livez", self.livez, role=None)
        self.router.add("GET", "/readyz", self.readyz, role=None)
        self.router.add("GET", "/metrics", self.metrics, role=None)
        self.logs = logs or RingLogHandler()
        # the desk's literal routes (/interactions/{id}/notes...) go before the API's generic {action}
        self.desk_api = DeskApi(engine, auth.store)
        self.desk_api.mount(self.router)
        Api(engine, auth, self.set_session_cookie, self.logs).mount(self.router)
        CampaignApi(engine).mount(self.router)  # the outbound dialer: campaigns, leads, previews
        self.alarms = ActiveAlarms()  # the dashboard's alarms and agents' time in state, fed by the bus
        bus.add_listener(self.alarms.listener)
        self.pages = Pages(engine, auth, self.set_session_cookie, tls_fingerprint=tls_fingerprint, logs=self.logs,
                           alarms=self.alarms)
        self.pages.desk_tools = self.desk_api
        self.pages.mount_desk(self.router)
        self.pages.mount(self.router)
        AdminPages(engine, auth.store).mount(self.router)  # technicians: configuration, backup
        RecordingsPages(engine, auth.store).mount(self.router)  # supervisors: recordings, voicemail
        DeviceTestPages(engine).mount(self.router)  # technicians: "Test this device"

    # --------------------------------------------------------------------------------------- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            plugin = self._plugin_route(request.path)
            if plugin is not None:
                started = False

                async def tracking_send(message: dict[str, Any]) -> None:
                    nonlocal started
                    started = True
                    await send(message)

                try:
                    await self._plugin(plugin, request, scope, receive, tracking_send)
                    return
                except Exception:
                    if not started:
                        raise
                    # the plugin already answered part of a response: nothing sane left to send
                    log.exception("console: plugin route %s failed mid-response", plugin.prefix)
                    return
            response = await self._dispatch(request)
        except HttpError as exc:
            response = error_response(exc.status, exc.message, exc.headers)
        except KeyError as exc:
            response = error_response(404, f"not found: {exc.args[0] if exc.args else ''}")
        except ValueError as exc:
            response = error_response(409, str(exc))
        except Exception:
            log.exception("console: %s %s failed", request.method, request.path[:200])
            response = error_response(500, "internal error (logged)")
        if response.status in (400, 405, 413):
            # refused input is logged (escaped, bounded) so an attack leaves a trace
            log.info("console: refused %s %s from %s: %d %s", request.method, safe_text(request.path, 120),
                     request.client_host, response.status, safe_text(response.body.decode("utf-8", "replace"), 200))
        if request.page and response.content_type == "application/json" and response.status >= 400:
            response = error_page(response, request.principal)
        self.responses[f"{response.status // 100}xx"] += 1
        if not request.body_done and request.method not in ("GET", "HEAD"):
            response.headers.append(("connection", "close"))
        if request.body_done:
            await response.send(send)
        else:
            # drain concurrently: hypercorn may block inside our send until its body queue has room
            async with trio.open_nursery() as nursery:
                nursery.start_soon(request.discard_rest)
                await response.send(send)

    async def _dispatch(self, request: Request) -> Response:
        route, params = self.router.match(request.method, request.path)
        request.path_params = params
        request.page = route.page
        if route.role is None:
            if route.template in ("/api/v1/login", "/login"):
                request.principal = await self._authenticate(request)
            return await route.handler(request)
        principal = await self._authenticate(request)
        if principal is None:
            if route.page:
                return redirect("/login?next=" + urllib.parse.quote(request.path))
            raise HttpError(401, "authentication required", headers={"www-authenticate": 'Bearer realm="centralita"'})
        request.principal = principal
        if principal.must_change and not route.before_password_change:
            if route.page:
                return redirect("/password")
            raise HttpError(403, "change the one-time password first (POST /api/v1/password)")
        if not principal.has_role(route.role):
            raise HttpError(403, f"this needs the {route.role} role; {principal.name} is {principal.role}")
        if route.csrf and principal.via == "cookie":
            await self._check_csrf(request, principal)
        return await route.handler(request)

    async def _authenticate(self, request: Request) -> Principal | None:
        authorization = request.header("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
                return None
            return await self.auth.from_bearer(token.strip())
        session = request.cookies.get(SESSION_COOKIE)
        return await self.auth.from_session(session) if session else None

    async def _check_csrf(self, request: Request, principal: Principal) -> None:
        supplied = request.header(CSRF_HEADER)
        if supplied is None and (request.header("content-type") or "").startswith("application/x-www-form-urlencoded"):
            supplied = (await request.form()).get(CSRF_FIELD)
        if not supplied or not secrets.compare_digest(supplied.encode(), principal.csrf.encode()):
            log.warning("console: CSRF token missing or wrong for %s %s (%s)", request.method, request.path[:200], principal.name)
            raise HttpError(403, "missing or wrong CSRF token (send the X-CSRF-Token header)")

    def set_session_cookie(self, request: Request, response: Response, session_id: str) -> None:
        attributes = ["Path=/", "HttpOnly", "SameSite=Strict"]
        if request.is_https:
            attributes.append("Secure")
        attributes.append(f"Max-Age={int(SESSION_LIFETIME) if session_id else 0}")
        response.headers.append(("set-cookie", f"{SESSION_COOKIE}={session_id}; " + "; ".join(attributes)))

    # ---------------------------------------------------------------------------------- plugins

    def _plugin_route(self, path: str) -> Any:
        # the engine's own routes always win: a plugin cannot shadow the API, the login page or assets
        if path == "/api/v1/events" or any(route.pattern.match(path) for route in self.router.routes):
            return None
        best = None
        for prefix, route in self.plugin_routes.items():
            if path == prefix.rstrip("/") or path.startswith(prefix if prefix.endswith("/") else prefix + "/"):
                if best is None or len(prefix) > len(best.prefix):
                    best = route
        return best

    async def _plugin(self, route: Any, request: Request, scope: Scope, receive: Receive, send: Send) -> None:
        inner = dict(scope)
        if not route.public:
            principal = await self._authenticate(request)
            if principal is None:
                raise HttpError(401, "authentication required", headers={"www-authenticate": 'Bearer realm="centralita"'})
            if principal.must_change:
                raise HttpError(403, "change the one-time password first")
            if principal.via == "cookie" and request.method not in ("GET", "HEAD", "OPTIONS"):
                if not secrets.compare_digest((request.header(CSRF_HEADER) or "").encode(), principal.csrf.encode()):
                    raise HttpError(403, "missing or wrong CSRF token (send the X-CSRF-Token header)")
            inner["centralita.principal"] = principal
        inner["root_path"] = scope.get("root_path", "") + route.prefix.rstrip("/")
        await route.app(inner, receive, send)

    # ---------------------------------------------------------------------------------- probes

    async def livez(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        ok, reasons = self.engine.ready()
        return json_response({"ready": ok, "reasons": list(reasons)}, 200 if ok else 503)

    async def metrics(self, request: Request) -> Response:
        body = render_metrics(self.engine.status, self.statistics)
        return Response(200, body, "text/plain; version=0.0.4; charset=utf-8")

    def statistics(self) -> dict[str, Any]:
        return {
            "responses": dict(self.responses),
            "ws_connections": self.ws_stats.connections,
            "ws_open": self.ws_stats.open,
            "ws_messages": self.ws_stats.messages,
            "ws_closed_too_slow": self.ws_stats.closed_too_slow,
            **self.auth.statistics(),
        }

    # --------------------------------------------------------------------------------- websocket

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        plugin = self._plugin_route(request.path)
        if plugin is not None and plugin.public:
            await plugin.app(scope, receive, send)
            return
        principal = await self._authenticate(request)
        if principal is None or principal.must_change:
            await _deny_websocket(receive, send, 401 if principal is None else 403)
            return
        if plugin is not None:
            await plugin.app({**scope, "centralita.principal": principal}, receive, send)
        elif request.path == "/api/v1/events":
            if principal.via == "cookie" and not _same_origin(request):
                # browsers do not apply SameSite to WebSockets from another site; check Origin instead
                await _deny_websocket(receive, send, 403)
                return
            visible = None if principal.has_role("supervisor") else self._agent_filter(principal)
            await serve_events(receive, send, self.bus, principal, self.ws_stats, buffer=self.ws_buffer, visible=visible)
        else:
            await _deny_websocket(receive, send, 404)


    def _agent_filter(self, principal: Principal) -> Any:
        """An agent sees every event except message text of conversations that are not theirs."""

        def visible(event: Any) -> bool:
            if "Message" not in event.fields or event.interaction is None:
                return True
            owner = next((i.get("agent") for i in self.engine.list_interactions() if i.get("id") == event.interaction), None)
            return owner == principal.name

        return visible


def _same_origin(request: Request) -> bool:
    origin = request.header("origin")
    if origin is None:
        return True  # not a browser
    host = request.header("host") or ""
    return urllib.parse.urlsplit(origin).netloc == host


async def _deny_websocket(receive: Receive, send: Send, status: int) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    # the ASGI WebSocket Denial Response extension answers a real HTTP status before the upgrade
    await send({"type": "websocket.http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "websocket.http.response.body", "body": b'{"error":"%d"}' % status})


def error_page(response: Response, principal: Principal | None) -> Response:
    import json

    message = json.loads(response.body).get("error", "error")
    rendered = html_page(f"Error {response.status}", tag("p", message, class_="error"), principal=principal, status=response.status)
    rendered.headers.extend(h for h in response.headers if h[0] in ("retry-after", "connection", "allow"))
    return rendered
