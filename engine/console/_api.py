"""``/api/v1/...``: CONTRACT.md's HTTP API mapped onto :class:`engine.abc.EngineAPI`.

Input is checked here, before the engine sees it: every body field must have the type the route
expects (``{"password": {"$ne": 1}}`` is a 400, never a query). ``KeyError`` from the engine is a 404
and ``ValueError`` a 409, as ``EngineAPI`` documents.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from .._model import AgentState, InteractionState
from ..abc import EngineAPI
from ._auth import (
    Authenticator,
    AuthError,
    Principal,
    add_token,
    add_user,
    delete_user,
    list_tokens,
    list_users,
    revoke_token,
    set_role,
)
from ._cdr import cdr_csv, neutralise
from ._logs import LEVELS, RingLogHandler
from ._http import HttpError, Request, Response, Router, json_response, text_response

INTERACTION_ACTIONS = frozenset({"accept", "reject", "hangup", "transfer", "disposition", "reply", "record", "read"})
AGENT_STATES = frozenset(s.value for s in AgentState)
INTERACTION_STATES = frozenset(s.value for s in InteractionState)
MAX_TEXT = 16 * 1024
_SCALARS = (str, int, float, bool, type(None))


def _string(body: Mapping[str, Any], key: str, *, required: bool = False, limit: int = 256) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise HttpError(400, f"'{key}' is required (a string)")
        return None
    if not isinstance(value, str):
        raise HttpError(400, f"'{key}' must be a string, got {_json_type(value)}")
    if len(value) > limit:
        raise HttpError(400, f"'{key}' is too long (limit {limit} characters)")
    return value


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _flat(body: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse nested objects and arrays: every API body is a flat object of scalars."""
    for key, value in body.items():
        if not isinstance(value, _SCALARS):
            raise HttpError(400, f"'{key}' must be a string, number, boolean or null, got {_json_type(value)}")
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise HttpError(400, f"'{key}' is too long (limit {MAX_TEXT} characters)")
    return dict(body)


def parse_since(raw: str | None) -> float | None:
    """``since`` as a Unix time or an ISO 8601 date/time (UTC when no offset is given)."""
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = _dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise HttpError(400, f"'since' must be a Unix time or an ISO 8601 date, got {raw[:64]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.UTC)
    return parsed.timestamp()


class Api:
    def __init__(self, engine: EngineAPI, auth: Authenticator, set_cookie: Any, logs: RingLogHandler) -> None:
        self.logs = logs
        self.engine = engine
        self.auth = auth
        self._set_cookie = set_cookie

    def mount(self, router: Router) -> None:
        add = router.add
        add("POST", "/api/v1/login", self.login, role=None, csrf=False)
        add("POST", "/api/v1/logout", self.logout, role="agent", before_password_change=True)
        add("POST", "/api/v1/password", self.change_password, role="agent", before_password_change=True)
        add("GET", "/api/v1/me", self.me, role="agent", before_password_change=True)
        add("GET", "/api/v1/status", self.status, role="supervisor")
        add("GET", "/api/v1/agents", self.agents, role="agent")
        add("POST", "/api/v1/agents/{agent}/state", self.agent_state, role="agent")
        add("GET", "/api/v1/queues", self.queues, role="agent")
        add("GET", "/api/v1/queues/{name}", self.queue, role="agent")
        add("GET", "/api/v1/interactions", self.interactions, role="agent")
        add("POST", "/api/v1/interactions/{interaction}/{action}", self.interaction_action, role="agent")
        add("POST", "/api/v1/calls", self.originate, role="supervisor")
        add("GET", "/api/v1/cdr", self.cdr, role="supervisor")
        add("GET", "/api/v1/voicemail", self.voicemail, role="supervisor")
        add("GET", "/api/v1/voicemail/{message}/audio", self.voicemail_audio, role="supervisor")
        add("GET", "/api/v1/reports", self.report, role="supervisor")
        add("GET", "/api/v1/staffing", self.staffing, role="supervisor")
        add("GET", "/api/v1/users", self.users, role="admin")
        add("POST", "/api/v1/users", self.create_user, role="admin")
        add("POST", "/api/v1/tokens", self.create_token, role="admin")
        add("GET", "/api/v1/tokens", self.tokens, role="admin")
        add("DELETE", "/api/v1/tokens/{token}", self.delete_token, role="admin")
        add("DELETE", "/api/v1/users/{name}", self.delete_user, role="admin")
        add("POST", "/api/v1/users/{name}/role", self.change_role, role="admin")
        add("GET", "/api/v1/logs", self.recent_logs, role="admin")

    # ------------------------------------------------------------------------------------ session

    async def login(self, request: Request) -> Response:
        body = await request.json()
        user = _string(body, "user", required=True, limit=64)
        password = _string(body, "password", required=True, limit=1024)
        assert user is not None and password is not None
        try:
            session_id, principal = await self.auth.login(user, password, request.client_host, replaces=request.principal)
        except AuthError as exc:
            headers = [("retry-after", str(int(exc.retry_after) + 1))] if exc.retry_after else []
            return json_response({"error": exc.message}, exc.status, headers)
        response = json_response({**principal.to_json(), "csrf": principal.csrf})
        self._set_cookie(request, response, session_id)
        return response

    async def logout(self, request: Request) -> Response:
        await self.auth.logout(request.principal)
        response = json_response({"ok": True})
        self._set_cookie(request, response, "")
        return response

    async def change_password(self, request: Request) -> Response:
        body = await request.json()
        current = _string(body, "current", required=True, limit=1024)
        new = _string(body, "new", required=True, limit=1024)
        assert current is not None and new is not None
        try:
            session_id = await self.auth.change_password(request.principal, current, new, request.client_host)
        except AuthError as exc:
            return json_response({"error": exc.message}, exc.status)
        principal = await self.auth.from_session(session_id)
        assert principal is not None
        response = json_response({**principal.to_json(), "csrf": principal.csrf})
        self._set_cookie(request, response, session_id)
        return response

    async def me(self, request: Request) -> Response:
        principal: Principal = request.principal
        return json_response({**principal.to_json(), "csrf": principal.csrf or None})

    # ------------------------------------------------------------------------------------ engine

    async def status(self, request: Request) -> Response:
        return json_response(self.engine.status())

    async def agents(self, request: Request) -> Response:
        return json_response(self.engine.list_agents())

    async def agent_state(self, request: Request) -> Response:
        agent = request.path_params["agent"]
        principal: Principal = request.principal
        if not principal.has_role("supervisor") and agent != principal.name:
            raise HttpError(403, "agents may only change their own state")
        body = _flat(await request.json())
        state = _string(body, "state", required=True)
        reason = _string(body, "reason") or ""
        if state not in AGENT_STATES:
            raise HttpError(400, f"'state' must be one of {', '.join(sorted(AGENT_STATES))}, got {state!r}")
        return json_response(self.engine.set_agent_state(agent, state, reason))

    async def queues(self, request: Request) -> Response:
        return json_response(self.engine.list_queues())

    async def queue(self, request: Request) -> Response:
        return json_response(self.engine.queue_detail(request.path_params["name"]))

    async def interactions(self, request: Request) -> Response:
        state = request.query.get("state") or None
        if state is not None and state not in INTERACTION_STATES:
            raise HttpError(400, f"'state' must be one of {', '.join(sorted(INTERACTION_STATES))}, got {state[:32]!r}")
        return json_response(self.engine.list_interactions(state))

    async def interaction_action(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in INTERACTION_ACTIONS:
            raise HttpError(404, f"unknown action {action[:32]!r}; one of {', '.join(sorted(INTERACTION_ACTIONS))}")
        principal: Principal = request.principal
        body = _flat(await request.json())
        if action in ("accept", "reject"):
            agent = _string(body, "agent", limit=64)
            if not principal.has_role("supervisor"):
                if agent not in (None, principal.name):
                    raise HttpError(403, f"agents may only {action} offers for themselves")
                agent = principal.name
            if agent is None:
                raise HttpError(400, "'agent' is required (a string)")
            body["agent"] = agent
        else:
            if not principal.has_role("supervisor"):
                current = next((i for i in self.engine.list_interactions() if i.get("id") == request.path_params["interaction"]), None)
                if current is None:
                    raise HttpError(404, "no such interaction")
                if current.get("agent") != principal.name:
                    raise HttpError(403, "agents may only act on their own interactions")
            if action == "reply":
                _string(body, "text", required=True, limit=MAX_TEXT)
            if action == "record" and _string(body, "action", required=True, limit=16) not in ("start", "stop"):
                raise HttpError(400, "'action' must be 'start' or 'stop'")
        return json_response(await self.engine.interaction_action(request.path_params["interaction"], action, body))

    async def originate(self, request: Request) -> Response:
        body = _flat(await request.json())
        _string(body, "to", required=True)
        for key in ("from", "agent"):
            _string(body, key)
        return json_response(await self.engine.originate(body))

    async def cdr(self, request: Request) -> Response:
        since = parse_since(request.query.get("since"))
        rows = await self.engine.cdr(since)
        if request.accepts("text/csv") or request.query.get("format") == "csv":
            response = text_response(cdr_csv(rows), content_type="text/csv; charset=utf-8")
            response.headers.append(("content-disposition", 'attachment; filename="Master.csv"'))
            return response
        return json_response(rows)

    async def voicemail(self, request: Request) -> Response:
        box = request.query.get("box") or None
        return json_response(await self.engine.list_voicemail(box))

    async def voicemail_audio(self, request: Request) -> Response:
        message = request.path_params["message"]
        if not message.isalnum() or len(message) > 32:
            raise HttpError(404, "no such message")
        audio = await self.engine.voicemail_audio(message)
        return Response(200, audio, "audio/wav", [("content-disposition", f'inline; filename="{message}.wav"')])

    async def report(self, request: Request) -> Response:
        report = await run_report(self.engine, request.query)
        if request.query.get("format") == "csv" or (request.query.get("format") != "json" and request.accepts("text/csv")):
            response = text_response(report_csv(report), content_type="text/csv; charset=utf-8")
            response.headers.append(("content-disposition", 'attachment; filename="report.csv"'))
            return response
        return json_response(report)

    async def staffing(self, request: Request) -> Response:
        return json_response(await run_staffing(self.engine, request.query))

    # ------------------------------------------------------------------------------------ admin

    async def users(self, request: Request) -> Response:
        return json_response(await list_users(self.auth.store))

    async def create_user(self, request: Request) -> Response:
        body = _flat(await request.json())
        name = _string(body, "name", required=True, limit=64)
        role = _string(body, "role", required=True, limit=32)
        assert name is not None and role is not None
        try:
            password = await add_user(self.auth.store, name, role)
        except ValueError as exc:
            raise HttpError(409 if "exists" in str(exc) else 400, str(exc)) from None
        return json_response({"name": name, "role": role, "password": password}, 201)

    async def create_token(self, request: Request) -> Response:
        body = _flat(await request.json())
        name = _string(body, "name", required=True, limit=64)
        role = _string(body, "role", limit=32) or "admin"
        assert name is not None
        try:
            token = await add_token(self.auth.store, name, role)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        return json_response({"name": name, "role": role, "token": token}, 201)

    async def tokens(self, request: Request) -> Response:
        return json_response(await list_tokens(self.auth.store))

    async def delete_token(self, request: Request) -> Response:
        await revoke_token(self.auth.store, request.path_params["token"])
        return json_response({"ok": True})

    async def delete_user(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name == request.principal.name:
            raise HttpError(409, "you cannot delete yourself; ask another admin")
        await delete_user(self.auth.store, name)
        return json_response({"ok": True})

    async def change_role(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = _flat(await request.json())
        role = _string(body, "role", required=True, limit=32)
        assert role is not None
        if name == request.principal.name and role != "admin":
            raise HttpError(409, "you cannot take away your own admin role; ask another admin")
        try:
            await set_role(self.auth.store, name, role)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        return json_response({"name": name, "role": role})

    # ------------------------------------------------------------------------------------ logs

    async def recent_logs(self, request: Request) -> Response:
        return json_response([r.to_json() for r in query_logs(self.logs, request.query)])


def query_logs(logs: RingLogHandler, query: Mapping[str, str]) -> list[Any]:
    """``?level=WARNING&logger=centralita.sip&q=text&after=SEQ`` -> matching records, oldest first."""
    level = query.get("level", "") or "DEBUG"
    if level.upper() not in LEVELS:
        raise HttpError(400, f"'level' must be one of {', '.join(LEVELS)}, got {level[:16]!r}")
    after = query.get("after", "") or "0"
    if not after.isdigit():
        raise HttpError(400, "'after' must be a record number")
    return logs.query(after=int(after), min_level=LEVELS[level.upper()], logger=query.get("logger", "")[:100],
                      text=query.get("q", "")[:200])


def _number(query: Mapping[str, str], key: str, default: float, low: float, high: float) -> float:
    raw = query.get(key, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise HttpError(400, f"'{key}' must be a number, got {raw[:32]!r}") from None
    if not low <= value <= high:
        raise HttpError(400, f"'{key}' must be between {low:g} and {high:g}, got {value:g}")
    return value


def _engine_method(engine: EngineAPI, name: str) -> Any:
    method = getattr(engine, name, None)
    if method is None:
        raise HttpError(501, f"this engine has no {name} (reporting is not available)")
    return method


async def run_report(engine: EngineAPI, query: Mapping[str, str], *, now: float | None = None) -> dict[str, Any]:
    """``since`` (default: 24 h ago), ``until``, ``interval`` seconds (default 1800), ``short_abandon``."""
    import time

    report = _engine_method(engine, "report")
    current = time.time() if now is None else now
    since = parse_since(query.get("since")) or current - 86400
    until = parse_since(query.get("until"))
    interval = _number(query, "interval", 1800.0, 60.0, 86400.0)
    short_abandon = _number(query, "short_abandon", 5.0, 0.0, 3600.0)
    options: dict[str, Any] = {"interval": interval, "short_abandon": short_abandon}
    if query.get("fcr_days") is not None:  # first-contact resolution window (default 7 days)
        options["fcr_window"] = _number(query, "fcr_days", 7.0, 0.0, 90.0) * 86400
    return dict(await report(since, until, **options))


def report_csv(report: Mapping[str, Any]) -> str:
    """The report as CSV, one row per queue/agent/channel/campaign/interval, formulas neutralised."""
    import csv
    import io

    from ..reporting import report_table

    header, rows = report_table(report)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return out.getvalue()


async def run_staffing(engine: EngineAPI, query: Mapping[str, str]) -> list[dict[str, Any]]:
    """Erlang C forecast: ``days`` of history (28), ``target`` service level (0.8), ``threshold`` s (20)."""
    staffing = _engine_method(engine, "staffing")
    days = int(_number(query, "days", 28, 1, 365))
    target = _number(query, "target", 0.8, 0.01, 0.999)
    threshold = _number(query, "threshold", 20.0, 1.0, 3600.0)
    return list(await staffing(days=days, target=target, threshold=threshold))
