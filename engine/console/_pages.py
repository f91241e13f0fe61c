"""Server-rendered console pages: login, password change, dashboard, agents, queues, plugins, users,
agent desk. They work without JavaScript (plain forms with a CSRF field); ``static/console.js`` adds
live updates from ``WS /api/v1/events``.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from importlib import resources
from typing import Any

from .._events import safe_text
from .._model import AgentState
from ..abc import EngineAPI
from ._auth import (
    ROLES,
    Authenticator,
    AuthError,
    Principal,
    add_user,
    delete_user,
    list_tokens,
    list_users,
    revoke_token,
    set_role,
)
from ._html import Markup, csrf_field, esc, join, page, post_button, table, tag
from ._alarms import ActiveAlarms, Alarm
from ._charts import agent_states_today, calls_per_hour, messages_per_hour, service_by_half_hour
from ._http import HttpError, Request, Response, Router, json_response, redirect
from ._logs import RingLogHandler
from ._pages_common import INTERACTION_HEADERS, clock, interaction_row, member_summary, safe_next, seconds, state_buttons
from ._pages_desk import DeskPages
from ._pages_ops import OperationsPages

log = logging.getLogger("centralita.console.pages")


def percent(value: Any) -> str:
    return f"{float(value) * 100:.0f}%" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def duration(value: float) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 05 min``: how long someone has been in a state."""
    total = max(0, int(value))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"

STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


class Pages(DeskPages, OperationsPages):
    def __init__(
        self,
        engine: EngineAPI,
        auth: Authenticator,
        set_cookie: Any,
        *,
        tls_fingerprint: str | None = None,
        logs: RingLogHandler | None = None,
        alarms: ActiveAlarms | None = None,
    ) -> None:
        self.logs = logs or RingLogHandler()
        self.alarms = alarms or ActiveAlarms()
        self.engine = engine
        self.auth = auth
        self._set_cookie = set_cookie
        self.tls_fingerprint = tls_fingerprint
        self._static: dict[str, bytes] = {}

    def mount(self, router: Router) -> None:
        add = router.add
        add("GET", "/static/{name}", self.static, role=None)
        add("GET", "/login", self.login_form, role=None)
        add("POST", "/login", self.login, role=None, csrf=False)
        add("GET", "/password", self.password_form, role="agent", page=True, before_password_change=True)
        add("POST", "/password", self.password, role="agent", page=True, before_password_change=True)
        add("POST", "/logout", self.logout, role="agent", page=True, before_password_change=True)
        add("GET", "/", self.dashboard, role="agent", page=True)
        add("GET", "/agents", self.agents, role="supervisor", page=True)
        add("POST", "/alarms/clear", self.clear_alarm, role="supervisor", page=True)
        add("GET", "/api/v1/alarms", self.alarms_json, role="supervisor")
        add("POST", "/agents/{agent}/state", self.agent_state, role="agent", page=True)
        add("GET", "/queues", self.queues, role="supervisor", page=True)
        add("GET", "/plugins", self.plugins, role="admin", page=True)
        add("GET", "/users", self.users, role="admin", page=True)
        add("POST", "/users", self.create_user, role="admin", page=True)
        add("POST", "/users/{name}/{action}", self.user_action, role="admin", page=True)
        add("POST", "/tokens/{token}/revoke", self.revoke, role="admin", page=True)
        add("GET", "/desk", self.desk, role="agent", page=True)
        add("GET", "/wallboard", self.wallboard, role="supervisor", page=True)
        add("GET", "/reports", self.reports, role="supervisor", page=True)
        add("GET", "/logs", self.log_page, role="admin", page=True)
        add("GET", "/devices", self.devices, role="admin", page=True)
        add("POST", "/desk/{interaction}/{action}", self.desk_action, role="agent", page=True)

    # ----------------------------------------------------------------------------------- assets

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        if suffix not in STATIC_TYPES or "/" in name or name.startswith("."):
            raise HttpError(404, "not found")
        if name not in self._static:
            try:
                self._static[name] = resources.files("engine.console").joinpath("static", name).read_bytes()
            except (FileNotFoundError, IsADirectoryError, OSError):
                raise HttpError(404, "not found") from None
        return Response(200, self._static[name], STATIC_TYPES[suffix], [("cache-control", "max-age=300")])

    # ------------------------------------------------------------------------------------ login

    def _login_page(self, message: str = "", next_path: str = "/", status: int = 200) -> Response:
        body = join(
            [
                tag("p", message, class_="error", role="alert") if message else "",
                Markup(
                    '<form method="post" action="/login" class="card">'
                    f'<input type="hidden" name="next" value="{esc(next_path)}">'
                    '<label>User <input name="user" autocomplete="username" required maxlength="64" autofocus></label>'
                    '<label>Password <input name="password" type="password" autocomplete="current-password" required></label>'
                    '<button type="submit">Log in</button></form>'
                ),
                tag("p", f"Certificate SHA-256: {self.tls_fingerprint}", class_="muted") if self.tls_fingerprint else "",
            ]
        )
        return page("Log in", body, status=status, page_id="login")

    async def login_form(self, request: Request) -> Response:
        return self._login_page(next_path=safe_next(request.query.get("next")))

    async def login(self, request: Request) -> Response:
        origin = request.header("origin")
        if origin and urllib.parse.urlsplit(origin).netloc != (request.header("host") or ""):
            raise HttpError(403, "login from another site refused")
        form = await request.form()
        user, password = form.get("user", "")[:64], form.get("password", "")[:1024]
        next_path = safe_next(form.get("next"))
        try:
            session_id, principal = await self.auth.login(user, password, request.client_host, replaces=request.principal)
        except AuthError as exc:
            response = self._login_page(exc.message, next_path, exc.status)
            if exc.retry_after:
                response.headers.append(("retry-after", str(int(exc.retry_after) + 1)))
            return response
        target = "/password" if principal.must_change else ("/desk" if principal.role == "agent" and next_path == "/" else next_path)
        response = redirect(target)
        self._set_cookie(request, response, session_id)
        return response

    def _password_page(self, principal: Principal, message: str = "", status: int = 200) -> Response:
        intro = "Choose your own password to replace the one-time password." if principal.must_change else ""
        body = join(
            [
                tag("p", intro) if intro else "",
                tag("p", message, class_="error", role="alert") if message else "",
                Markup(
                    f'<form method="post" action="/password" class="card">{csrf_field(principal.csrf)}'
                    '<label>Current password <input name="current" type="password" autocomplete="current-password" required></label>'
                    '<label>New password <input name="new" type="password" autocomplete="new-password" minlength="10" required></label>'
                    '<label>Repeat it <input name="confirm" type="password" autocomplete="new-password" minlength="10" required></label>'
                    '<button type="submit">Change password</button></form>'
                ),
            ]
        )
        return page("Change password", body, principal=principal, status=status, page_id="password")

    async def password_form(self, request: Request) -> Response:
        return self._password_page(request.principal)

    async def password(self, request: Request) -> Response:
        form = await request.form()
        principal: Principal = request.principal
        if form.get("new", "") != form.get("confirm", ""):
            return self._password_page(principal, "The two new passwords differ.", 400)
        try:
            session_id = await self.auth.change_password(principal, form.get("current", ""), form.get("new", ""), request.client_host)
        except AuthError as exc:
            return self._password_page(principal, exc.message, exc.status)
        response = redirect("/desk" if principal.role == "agent" else "/")
        self._set_cookie(request, response, session_id)
        return response

    async def logout(self, request: Request) -> Response:
        await self.auth.logout(request.principal)
        response = redirect("/login")
        self._set_cookie(request, response, "")
        return response

    # ------------------------------------------------------------------------------- dashboards

    #: how long the dashboard, wallboard and agents pages reuse today's report: computing it reads the
    #: whole day's queue log (about 0.5 s of CPU for 10,000 calls), and live refreshes do not need it
    TODAY_REPORT_TTL = 10.0

    async def _today_report(self, now: float) -> dict[str, Any]:
        """The engine's report since midnight (UTC); empty when this engine has no reporting."""
        report = getattr(self.engine, "report", None)
        if report is None:
            return {}
        midnight = now - now % 86400
        cached = getattr(self, "_today_cache", None)
        if cached is not None and cached[0] == midnight and 0 <= now - cached[1] < self.TODAY_REPORT_TTL:
            return cached[2]  # type: ignore[no-any-return]
        try:
            result = dict(await report(midnight))
        except NotImplementedError:
            return {}
        except Exception:  # the dashboard must still show live queues when reporting fails
            log.exception("today's report for the dashboard failed")
            return {}
        self._today_cache = (midnight, now, result)
        return result

    def _queues_table(self, today: dict[str, Any] | None = None) -> Markup:
        figures = (today or {}).get("queues") or {}
        rows = [
            [q.get("name"), q.get("waiting", ""), seconds(q.get("longest_wait")), member_summary(q.get("members")),
             percent((figures.get(str(q.get("name"))) or {}).get("service_level")), q.get("answered", ""), q.get("abandoned", "")]
            for q in self.engine.list_queues()
        ]  # fmt: skip
        return table(["queue", "waiting", "longest wait", "agents", "SL today", "answered", "abandoned"], rows, id="queues")

    def _state_since(self, agent: dict[str, Any], today: dict[str, Any] | None) -> float | None:
        """When the agent entered their current activity: seen live on the bus, else from today's log."""
        current = agent.get("status") or agent.get("state")
        seen = self.alarms.agent_since.get(str(agent.get("id")))
        if seen is not None and seen[0] == current:
            return seen[1]
        logged = ((today or {}).get("agents") or {}).get(str(agent.get("id"))) or {}
        since = logged.get("state_since")
        if logged.get("state") == current and isinstance(since, int | float):
            return float(since)
        return None

    def _agents_table(self, principal: Principal, *, controls: bool, today: dict[str, Any] | None = None) -> Markup:
        rows = []
        now = time.time()
        for agent in self.engine.list_agents():
            since = self._state_since(agent, today)
            in_state = tag("span", duration(now - since), class_="since", data_since=f"{since:.0f}") if since else ""
            row = [agent.get("id"), agent.get("name", ""), agent.get("state"), agent.get("status", ""), agent.get("reason", ""),
                   in_state]  # fmt: skip
            if controls:
                row.append(state_buttons(principal, str(agent.get("id")), "/agents"))
            rows.append(row)
        headers = ["agent", "name", "state", "activity", "reason", "in state"] + (["change"] if controls else [])
        return table(headers, rows, id="agents")

    def _alarms_section(self, principal: Principal) -> Markup:
        alarms = self.alarms.active(self.engine.status())
        if not alarms:
            return tag("section", tag("h2", "Alarms"), tag("p", "No active alarms.", class_="muted", id="alarms-none"), id="alarms")

        def row(alarm: Alarm) -> list[Any]:
            clear = post_button("/alarms/clear", "Clear", principal.csrf, key=alarm.key) if alarm.clearable else "clears itself"
            count = f" (×{alarm.count})" if alarm.count > 1 else ""
            return [tag("span", alarm.severity, class_=f"severity {alarm.severity}"), alarm.source, alarm.message + count,
                    clock(alarm.since), clear]  # fmt: skip

        dropped = tag("p", f"{self.alarms.dropped} older alarms were dropped.", class_="muted") if self.alarms.dropped else ""
        return tag("section", tag("h2", f"Alarms ({len(alarms)})"),
                   table(["severity", "source", "what", "since (UTC)", ""], map(row, alarms), id="alarm-list"), dropped,
                   id="alarms", class_="alarms")  # fmt: skip

    async def alarms_json(self, request: Request) -> Response:
        return json_response({"alarms": [a.to_json() for a in self.alarms.active(self.engine.status())],
                              "dropped": self.alarms.dropped})

    async def clear_alarm(self, request: Request) -> Response:
        key = (await request.form()).get("key", "")[:256]
        if self.alarms.clear(key):
            log.info("alarm %s cleared by %s", safe_text(key), request.principal.name)
        return redirect("/")

    async def dashboard(self, request: Request) -> Response:
        principal: Principal = request.principal
        if not principal.has_role("supervisor"):
            return redirect("/desk")
        now = time.time()
        today = await self._today_report(now)
        recent = await self.engine.cdr(now - 24 * 3600)
        body = join(
            [
                self._alarms_section(principal),
                tag("section", tag("h2", "Queues"), self._queues_table(today)),
                tag("section", tag("h2", "Service level and abandonment today"),
                    service_by_half_hour(today.get("intervals") or [], title="Service level and abandoned, by half hour today (UTC)")),
                tag("section", tag("h2", "Calls"), calls_per_hour(recent, now=now)),
                tag("section", tag("h2", "Messages"), messages_per_hour(recent, now=now)),
                tag("section", tag("h2", "Interactions"),
                    table(INTERACTION_HEADERS, map(interaction_row, self.engine.list_interactions()), id="interactions")),
                tag("section", tag("h2", "Agents"), self._agents_table(principal, controls=False, today=today),
                    agent_states_today(today.get("agents") or {})),
                tag("section", tag("h2", "Live events"), tag("ol", id="events", class_="events")),
            ]
        )  # fmt: skip
        return page("Dashboard", body, principal=principal, page_id="dashboard")

    async def agents(self, request: Request) -> Response:
        today = await self._today_report(time.time())
        return page("Agents", self._agents_table(request.principal, controls=True, today=today), principal=request.principal,
                    page_id="agents")

    async def agent_state(self, request: Request) -> Response:
        principal: Principal = request.principal
        agent = request.path_params["agent"]
        form = await request.form()
        if not principal.has_role("supervisor") and agent != principal.name:
            raise HttpError(403, "agents may only change their own state")
        state = form.get("state", "")
        if state not in {s.value for s in AgentState}:
            raise HttpError(400, "unknown agent state")
        self.engine.set_agent_state(agent, state, form.get("reason", "")[:64])
        return redirect("/agents" if form.get("back") == "/agents" and principal.has_role("supervisor") else "/desk")

    async def queues(self, request: Request) -> Response:
        sections = []
        for queue in self.engine.list_queues():
            detail = self.engine.queue_detail(str(queue.get("name")))
            rows = [[key, value] for key, value in detail.items() if not isinstance(value, dict | list)]
            members = detail.get("members") or {}
            member_rows = [[m, s] for m, s in members.items()] if isinstance(members, dict) else [[m, ""] for m in members]
            sections.append(tag("section", tag("h2", queue.get("name")), table(["field", "value"], rows),
                                table(["member", "status"], member_rows)))  # fmt: skip
        return page("Queues", join(sections), principal=request.principal, page_id="queues")

    async def plugins(self, request: Request) -> Response:
        status = self.engine.status()
        plugins = [[p.get("name"), p.get("kind", ""), p.get("version", ""), p.get("enabled", ""), p.get("error") or ""]
                   for p in status.get("plugins") or []]  # fmt: skip
        services = [[s.get("name"), s.get("plugin", ""), s.get("ready"), s.get("restarts", 0), s.get("last_error") or ""]
                    for s in status.get("services") or []]  # fmt: skip
        body = join(
            [
                tag("section", tag("h2", "Plugins"), table(["plugin", "kind", "version", "enabled", "error"], plugins, id="plugins")),
                tag("section", tag("h2", "Services"), table(["service", "plugin", "ready", "restarts", "last error"], services)),
                tag("section", tag("h2", "Not ready because"), tag("ul", *(tag("li", r) for r in status.get("not_ready") or []))),
                tag("p", f"Console certificate SHA-256: {self.tls_fingerprint}") if self.tls_fingerprint else "",
            ]
        )
        return page("Plugins", body, principal=request.principal, page_id="plugins")

    async def users(self, request: Request, created: tuple[str, str] | None = None, message: str = "") -> Response:
        principal: Principal = request.principal
        options = "".join(f'<option value="{esc(r)}">{esc(r)}</option>' for r in ROLES)
        rows = []
        for user in await list_users(self.auth.store):
            name = user["name"]
            path = "/users/" + urllib.parse.quote(name, safe="")
            controls: Any = "(you)"
            if name != principal.name:
                choices = "".join(
                    f'<option value="{esc(r)}"{" selected" if r == user["role"] else ""}>{esc(r)}</option>' for r in ROLES
                )
                controls = join([
                    Markup(f'<form method="post" action="{esc(path)}/role" class="inline">{csrf_field(principal.csrf)}'
                           f'<select name="role">{choices}</select><button type="submit">Set role</button></form>'),
                    post_button(f"{path}/delete", "Delete", principal.csrf),
                ])  # fmt: skip
            rows.append([name, user["role"], "yes" if user["must_change_password"] else "no", controls])
        token_rows = [
            [t["id"], t["name"], t["role"], clock(t["created"]), post_button(f"/tokens/{t['id']}/revoke", "Revoke", principal.csrf)]
            for t in await list_tokens(self.auth.store)
        ]
        body = join(
            [
                tag("p", f"One-time password for {created[0]}: ", tag("code", created[1]), class_="notice") if created else "",
                tag("p", message, class_="error", role="alert") if message else "",
                table(["user", "role", "must change password", ""], rows, id="users"),
                Markup(
                    f'<form method="post" action="/users" class="card">{csrf_field(principal.csrf)}'
                    '<label>New user <input name="name" required maxlength="64" pattern="[A-Za-z0-9_.@-]+"></label>'
                    f'<label>Role <select name="role">{options}</select></label><button type="submit">Add user</button></form>'
                ),
                tag("h2", "API tokens"),
                tag("p", "Make one with ", tag("code", "centralita token add NAME --role ROLE"), ".", class_="muted"),
                table(["id", "name", "role", "created (UTC)", ""], token_rows, id="tokens"),
            ]
        )
        return page("Users", body, principal=principal, page_id="users", status=400 if message else 200)

    async def user_action(self, request: Request) -> Response:
        principal: Principal = request.principal
        name, action = request.path_params["name"], request.path_params["action"]
        if name == principal.name:
            return await self.users(request, message="Ask another admin to change or delete your own account.")
        try:
            if action == "delete":
                await delete_user(self.auth.store, name)
            elif action == "role":
                await set_role(self.auth.store, name, (await request.form()).get("role", ""))
            else:
                raise HttpError(404, "unknown action")
        except ValueError as exc:
            return await self.users(request, message=str(exc))
        log.info("console user %s: %s by %s", name, action, principal.name)
        return redirect("/users")

    async def revoke(self, request: Request) -> Response:
        await revoke_token(self.auth.store, request.path_params["token"])
        log.info("console token %s revoked by %s", request.path_params["token"], request.principal.name)
        return redirect("/users")

    async def create_user(self, request: Request) -> Response:
        form = await request.form()
        name, role = form.get("name", ""), form.get("role", "")
        try:
            password = await add_user(self.auth.store, name, role)
        except ValueError as exc:
            return await self.users(request, message=str(exc))
        log.info("console user %s (%s) added by %s", name, role, request.principal.name)
        return await self.users(request, created=(name, password))
