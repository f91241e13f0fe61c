"""Supervisor pages: agents with their state, times and queues (move them between queues), live calls
to listen to, whisper into or barge in on, and the canned responses agents insert in replies."""

from __future__ import annotations

import urllib.parse
from typing import Any

from ._auth import Principal
from ._canned import PLACEHOLDERS, CannedError, add_canned, delete_canned, list_canned
from ._html import Markup, csrf_field, esc, join, page, post_button, table, tag
from ._http import HttpError, Request, Response, redirect
from ._pages_common import seconds
from ._supervise import MODES


class SupervisePages:
    engine: Any
    desk_tools: Any

    def mount_supervise(self, router: Any) -> None:
        add = router.add
        add("GET", "/supervise", self.supervise_page, role="supervisor", page=True)
        add("POST", "/supervise/members", self.supervise_members, role="supervisor", page=True)
        add("POST", "/supervise/calls/{interaction}/{mode}", self.supervise_call, role="supervisor", page=True)
        add("GET", "/canned", self.canned_page, role="supervisor", page=True)
        add("POST", "/canned", self.canned_add, role="supervisor", page=True)
        add("POST", "/canned/{canned}/delete", self.canned_delete, role="supervisor", page=True)

    # ------------------------------------------------------------------------------- agents and calls

    async def supervise_page(self, request: Request) -> Response:
        principal: Principal = request.principal
        tools = self.desk_tools
        queues = [str(q.get("name")) for q in self.engine.list_queues()]
        membership = {q: tools.desk.routing.queue_members(q) for q in queues}
        csrf = csrf_field(principal.csrf)
        rows = []
        for agent in self.engine.list_agents():
            ident = str(agent.get("id"))
            mine = [q for q in queues if ident in membership[q]]
            leave = join(post_button("/supervise/members", f"leave {q}", principal.csrf, agent=ident, queue=q, member="0")
                         for q in mine)
            others = "".join(f'<option value="{esc(q)}">{esc(q)}</option>' for q in queues if q not in mine)
            join_form = Markup(
                f'<form method="post" action="/supervise/members" class="inline">{csrf}'
                f'<input type="hidden" name="agent" value="{esc(ident)}"><input type="hidden" name="member" value="1">'
                f'<select name="queue" aria-label="queue for {esc(ident)}">{others}</select><button type="submit">Add to queue</button></form>'
            ) if others else Markup("")
            held, exact = tools.desk.in_status_for(ident, str(agent.get("status", "")))
            rows.append([ident, agent.get("name", ""), agent.get("state"), agent.get("status", ""),
                         _duration(held) if exact else f"≥ {_duration(held)}", agent.get("reason", ""),
                         agent.get("answered", ""), seconds(agent.get("talk_time")), ", ".join(mine) or "none",
                         join([leave, join_form])])
        own = getattr(getattr(self.engine, "agent_settings", {}).get(principal.name), "endpoint", "") or ""
        calls = []
        supervisors_legs = {i.id for i in getattr(self.engine, "interactions", {}).values()
                            if hasattr(i, "attributes") and i.attributes.get("supervising")}
        for item in self.engine.list_interactions("active"):
            if item.get("kind") != "voice" or item.get("id") in supervisors_legs:
                continue  # a supervisor's own phone leg is not a call to supervise
            ident = esc(urllib.parse.quote(str(item.get("id")), safe=""))
            state = tools.supervision.state(str(item.get("id")))
            buttons = "".join(
                f'<form method="post" action="/supervise/calls/{ident}/{mode}" class="inline">{csrf}'
                f'<input name="endpoint" value="{esc(own)}" placeholder="your phone, e.g. sip:2001" required maxlength="128">'
                f'<button type="submit">{esc(mode.capitalize())}</button></form>' for mode in MODES)
            calls.append([item.get("id"), item.get("from"), item.get("queue"), item.get("agent"),
                          f"{state['mode']} by {state['supervisor']}" if state else "", Markup(buttons)])
        body = join([
            tag("p", "Queue changes made here last until the next configuration apply (reload or restart).", class_="muted"),
            tag("section", tag("h2", "Agents"), table(["agent", "name", "state", "status", "for", "reason", "answered", "talk time",
                                                       "queues", "move"], rows, id="supervise-agents")),
            tag("section", tag("h2", "Live calls"),
                table(["id", "from", "queue", "agent", "supervised", "join with my phone"], calls, id="live-calls")),
        ])
        return page("Supervise", body, principal=principal, page_id="supervise")

    async def supervise_members(self, request: Request) -> Response:
        form = await request.form()
        agent, queue = form.get("agent", "")[:64], form.get("queue", "")[:64]
        if form.get("member") not in ("0", "1"):
            raise HttpError(400, "member must be 0 or 1")
        self.desk_tools.desk.routing.set_member(agent, queue, form.get("member") == "1")
        return redirect("/supervise")

    async def supervise_call(self, request: Request) -> Response:
        form = await request.form()
        mode = request.path_params["mode"]
        if mode not in MODES:
            raise HttpError(404, "unknown mode")
        await self.desk_tools.supervision.start(request.path_params["interaction"], mode, request.principal.name,
                                                form.get("endpoint", "").strip()[:128])
        return redirect("/supervise")

    # ------------------------------------------------------------------------------- canned responses

    async def canned_page(self, request: Request) -> Response:
        principal: Principal = request.principal
        store = self.desk_tools.store
        rows = [[r["title"], r["queue"] or "every queue", tag("pre", r["body"]), r["author"],
                 post_button(f"/canned/{r['id']}/delete", "Delete", principal.csrf)]
                for r in await list_canned(store, all_queues=True)]
        queues = "".join(f'<option value="{esc(q.get("name"))}">{esc(q.get("name"))}</option>' for q in self.engine.list_queues())
        form = Markup(
            f'<form method="post" action="/canned" class="card">{csrf_field(principal.csrf)}'
            '<label>Title <input name="title" required maxlength="80"></label>'
            f'<label>Queue <select name="queue"><option value="">every queue</option>{queues}</select></label>'
            '<label>Text <textarea name="body" required maxlength="4000" rows="4"></textarea></label>'
            '<button type="submit">Add</button></form>'
        )
        hint = "Placeholders: " + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        body = join([tag("section", tag("h2", "Responses"), table(["title", "queue", "text", "by", ""], rows, id="canned")),
                     tag("section", tag("h2", "New response"), tag("p", hint, class_="muted"), form)])
        return page("Canned responses", body, principal=principal, page_id="canned")

    async def canned_add(self, request: Request) -> Response:
        form = await request.form()
        try:
            await add_canned(self.desk_tools.store, form.get("title"), form.get("body"), form.get("queue") or None,
                             request.principal.name)
        except CannedError as exc:
            raise HttpError(400, str(exc)) from None
        return redirect("/canned")

    async def canned_delete(self, request: Request) -> Response:
        raw = request.path_params["canned"]
        if not raw.isdigit() or len(raw) > 12:
            raise HttpError(404, "no such canned response")
        await delete_canned(self.desk_tools.store, int(raw))
        return redirect("/canned")


def _duration(value: float) -> str:
    value = max(0, int(value))
    hours, rest = divmod(value, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"
