"""The agent desk: my state, my offers (accept/reject), my conversations (reply, end)."""

from __future__ import annotations

import urllib.parse
from typing import Any

from ..abc import EngineAPI
from ._auth import Principal
from ._html import Markup, csrf_field, esc, join, page, post_button, table, tag
from ._http import HttpError, Request, Response, redirect
from ._pages_common import interaction_row, state_buttons

MAX_REPLY = 16 * 1024
#: offered in the disposition box; any other code may be typed
DISPOSITION_SUGGESTIONS = ("resolved", "not-resolved", "callback", "sale", "no-sale", "wrong-number", "spam")


class DeskPages:
    engine: EngineAPI

    async def desk(self, request: Request) -> Response:
        principal: Principal = request.principal
        me = next((a for a in self.engine.list_agents() if a.get("id") == principal.name), None)
        mine = [i for i in self.engine.list_interactions() if i.get("agent") == principal.name and i.get("state") != "ended"]
        offers = [i for i in mine if i.get("state") == "offered"]
        active = [i for i in mine if i.get("state") in ("active", "wrapup")]
        state_section = (
            tag("section", tag("h2", "My state"), tag("p", "State: ", tag("strong", me.get("state"), id="my-state"),
                                                          " ", me.get("reason") or ""),
                state_buttons(principal, principal.name, "/desk"))
            if me else tag("p", f"There is no agent with id {principal.name!r} in the configuration.", class_="error")
        )  # fmt: skip
        offer_rows = [
            [*interaction_row(i)[:5], join([self._desk_button(principal, i, "accept", "Accept"),
                                             self._desk_button(principal, i, "reject", "Reject")])]
            for i in offers
        ]  # fmt: skip
        conversations = [self._conversation(principal, i) for i in active]
        body = join(
            [
                state_section,
                tag("section", tag("h2", "Offers"), table(["id", "kind", "state", "from", "to", ""], offer_rows, id="offers")),
                tag("section", tag("h2", "My conversations"), *conversations or [tag("p", "None right now.", class_="muted")]),
                tag("section", tag("h2", "Live events"), tag("ol", id="events", class_="events")),
            ]
        )
        return page("Agent desk", body, principal=principal, page_id="desk")

    def _desk_button(self, principal: Principal, item: dict[str, Any], action: str, label: str) -> Markup:
        return post_button(f"/desk/{urllib.parse.quote(str(item.get('id')), safe='')}/{action}", label, principal.csrf)

    def _conversation(self, principal: Principal, item: dict[str, Any]) -> Markup:
        ident = urllib.parse.quote(str(item.get("id")), safe="")
        reply = Markup("")
        if item.get("kind") in ("chat", "sms", "email"):
            reply = Markup(
                f'<form method="post" action="/desk/{esc(ident)}/reply" class="reply">{csrf_field(principal.csrf)}'
                '<textarea name="text" required maxlength="16384" rows="3"></textarea><button type="submit">Send</button></form>'
            )
        who = f"{item.get('caller_name')} <{item.get('from')}>" if item.get("caller_name") else str(item.get("from"))
        return tag(
            "article",
            tag("h3", f"{item.get('kind')} from {who}"),
            tag("p", f"{item.get('state')} · queue {item.get('queue')} · {item.get('id')}", class_="muted"),
            tag("ol", class_="transcript", aria_live="polite"),
            reply,
            self._wrapup_forms(principal, item),
            self._desk_button(principal, item, "hangup", "End"),
            class_="conversation",
            data_interaction=str(item.get("id")),
        )

    def _wrapup_forms(self, principal: Principal, item: dict[str, Any]) -> Markup:
        """Disposition (with a note) and transfer to another queue."""
        ident = esc(urllib.parse.quote(str(item.get("id")), safe=""))
        codes = "".join(f'<option value="{esc(c)}">' for c in DISPOSITION_SUGGESTIONS)
        queues = "".join(
            f'<option value="{esc(q.get("name"))}">{esc(q.get("name"))}</option>'
            for q in self.engine.list_queues() if q.get("name") != item.get("queue")
        )  # fmt: skip
        forms = [
            f'<form method="post" action="/desk/{ident}/disposition" class="inline">{csrf_field(principal.csrf)}'
            f'<input name="disposition" list="disposition-codes-{ident}" placeholder="disposition" required maxlength="64">'
            f'<datalist id="disposition-codes-{ident}">{codes}</datalist>'
            '<input name="notes" placeholder="note" maxlength="2000"><button type="submit">Set disposition</button></form>'
        ]
        if queues:
            forms.append(
                f'<form method="post" action="/desk/{ident}/transfer" class="inline">{csrf_field(principal.csrf)}'
                f'<select name="queue">{queues}</select><button type="submit">Transfer</button></form>'
            )
        return Markup("<div class=\"wrapup\">" + "".join(forms) + "</div>")

    async def desk_action(self, request: Request) -> Response:
        principal: Principal = request.principal
        action = request.path_params["action"]
        if action not in ("accept", "reject", "reply", "hangup", "disposition", "transfer"):
            raise HttpError(404, "unknown action")
        interaction = request.path_params["interaction"]
        current = next((i for i in self.engine.list_interactions() if i.get("id") == interaction), None)
        if current is None:
            raise HttpError(404, "no such interaction")
        if current.get("agent") != principal.name and not principal.has_role("supervisor"):
            raise HttpError(403, "this interaction is not yours")
        form = await request.form()
        body: dict[str, Any] = {}
        if action in ("accept", "reject"):
            body["agent"] = principal.name
        elif action == "reply":
            text = form.get("text", "")
            if not text.strip() or len(text) > MAX_REPLY:
                raise HttpError(400, f"a reply needs 1 to {MAX_REPLY} characters")
            body["text"] = text
        elif action == "disposition":
            code = form.get("disposition", "").strip()
            if not code or len(code) > 64:
                raise HttpError(400, "a disposition needs 1 to 64 characters")
            body["disposition"] = code
            if form.get("notes", "").strip():
                body["notes"] = form["notes"][:2000]
        elif action == "transfer":
            body["queue"] = form.get("queue", "")[:64]
        await self.engine.interaction_action(interaction, action, body)
        return redirect("/desk")

