"""The agent desk: my state, my offers with the screen pop (accept/reject), my conversations (transcript,
reply with canned responses, notes, disposition, callback, transfer, end).

Works without JavaScript (plain forms, each answered with a redirect back to ``/desk``).
``static/desk.js`` makes it live: it fetches ``GET /desk/live`` (the same server-rendered, escaped
sections) when an event arrives on ``/api/v1/events``, swaps offers in and merges conversations by id
(a half-typed reply survives), submits the forms in the background and carries typing both ways.
"""

from __future__ import annotations

import datetime as _dt
import urllib.parse
from typing import Any

from ._auth import Principal
from ._campaign_api import PREVIEW_ACTIONS, previews_of
from ._canned import fill, list_canned
from ._desk_api import DeskApi, placeholder_values
from ._html import Markup, csrf_field, esc, join, page, tag
from ._http import HttpError, Request, Response, redirect
from ._pages_common import clock, state_buttons
from ._pages_supervise import SupervisePages

MAX_REPLY = 16 * 1024
#: offered in the disposition box; any other code may be typed
DISPOSITION_SUGGESTIONS = ("resolved", "not-resolved", "callback", "sale", "no-sale", "wrong-number", "spam")
DESK_ACTIONS = ("accept", "reject", "reply", "hangup", "disposition", "transfer", "notes", "callback")


class DeskPages(SupervisePages):
    engine: Any
    desk_tools: DeskApi

    def mount_desk(self, router: Any) -> None:
        """Routes of the desk and supervisor pages that ``Pages.mount`` does not know about."""
        router.add("GET", "/desk/live", self.desk_live, role="agent", page=True)
        router.add("POST", "/desk/preview/{name}/{lead}/{action}", self.desk_preview, role="agent", page=True)
        self.mount_supervise(router)

    # ------------------------------------------------------------------------------- page

    async def desk(self, request: Request) -> Response:
        principal: Principal = request.principal
        body = join([
            tag("div", await self._live_sections(principal), id="desk-live"),
            tag("section", tag("h2", "Live events"), tag("ol", id="events", class_="events")),
            Markup('<script src="/static/desk.js" defer></script>'),
        ])
        return page("Agent desk", body, principal=principal, page_id="desk")

    async def desk_live(self, request: Request) -> Response:
        """The live sections alone, for desk.js (same escaping as the page)."""
        markup = await self._live_sections(request.principal)
        return Response(200, markup.encode(), "text/html; charset=utf-8", [("cache-control", "no-store")])

    async def _live_sections(self, principal: Principal) -> Markup:
        me = next((a for a in self.engine.list_agents() if a.get("id") == principal.name), None)
        offered = {str(i) for i in (me or {}).get("offers", [])}
        everything = self.engine.list_interactions()
        mine = [i for i in everything if i.get("agent") == principal.name and i.get("state") != "ended"]
        offers = [i for i in everything if i.get("state") == "offered" and (i.get("id") in offered or i.get("agent") == principal.name)]
        active = [i for i in mine if i.get("state") in ("active", "wrapup")]
        state_section = (
            tag("section", tag("h2", "My state"), tag("p", "State: ", tag("strong", me.get("state"), id="my-state"),
                                                          " ", me.get("reason") or ""),
                state_buttons(principal, principal.name, "/desk"), id="state-section")
            if me else tag("p", f"There is no agent with id {principal.name!r} in the configuration.", class_="error")
        )  # fmt: skip
        offer_cards = [await self._offer(principal, i) for i in offers]
        conversations = [await self._conversation(principal, i) for i in active]
        callbacks = self._callbacks(principal)
        return join([
            state_section,
            tag("section", tag("h2", "Lead to call"), self._previews(principal), id="preview-section"),
            tag("section", tag("h2", "Offers"), *offer_cards or [tag("p", "No offers.", class_="muted")], id="offers"),
            tag("section", tag("h2", "My conversations"), *conversations or [tag("p", "None right now.", class_="muted")],
                id="conversations"),
            tag("section", tag("h2", "Callbacks"), callbacks, id="callbacks-section"),
        ])

    # ------------------------------------------------------------------------------- pieces

    def _tools(self) -> DeskApi | None:
        return getattr(self, "desk_tools", None)

    def _item(self, interaction_id: str) -> Any:
        find = getattr(self.engine, "find_interaction", None)
        if find is None:
            return None
        try:
            return find(interaction_id)
        except KeyError:
            return None

    def _button(self, principal: Principal, item: dict[str, Any], action: str, label: str) -> Markup:
        ident = esc(urllib.parse.quote(str(item.get("id")), safe=""))
        return Markup(f'<form method="post" action="/desk/{ident}/{action}" class="inline" data-live>'
                      f'{csrf_field(principal.csrf)}<button type="submit" name="do" value="{action}">{esc(label)}</button></form>')

    async def _pop(self, item: dict[str, Any]) -> Markup:
        tools, engine_item = self._tools(), self._item(str(item.get("id")))
        if tools is None or engine_item is None:
            return Markup("")
        pop = await tools.desk.screen_pop(engine_item)
        if pop is None:
            return tag("div", tag("p", "Not in the CRM.", class_="muted"), class_="pop")
        contact = pop["contact"]
        facts = [tag("li", f"{key}: {value}") for key, value in (
            ("phone", ", ".join(contact["phones"])), ("email", ", ".join(contact["emails"])),
            ("segments", ", ".join(contact["segments"])), *sorted(contact["fields"].items())) if value not in ("", None)]
        history = [tag("li", f"{_day(h.get('started'))} {h.get('kind')} · {h.get('queue') or ''} · "
                             f"{h.get('agent') or ''} · {h.get('disposition') or ''}") for h in pop["history"]]
        notes = [tag("li", tag("strong", f"{n.get('author')}: "), n.get("text")) for n in pop["notes"]]
        return tag(
            "div",
            tag("h4", contact["name"] or contact["id"], class_="contact-name"),
            tag("p", "identity given by the website, not verified", class_="muted") if pop["identity_claimed"] else "",
            tag("ul", *facts, class_="contact-facts"),
            tag("details", tag("summary", f"History ({len(history)})"), tag("ol", *history, class_="history")) if history else "",
            tag("details", tag("summary", f"Notes ({len(notes)})"), tag("ul", *notes, class_="notes"), open=True) if notes else "",
            class_="pop", data_crm=pop["crm"],
        )

    async def _offer(self, principal: Principal, item: dict[str, Any]) -> Markup:
        return tag(
            "article",
            tag("h3", f"{item.get('kind')} from {_who(item)}"),
            tag("p", f"queue {item.get('queue')} · {item.get('id')}", class_="muted"),
            await self._pop(item),
            self._button(principal, item, "accept", "Accept"), self._button(principal, item, "reject", "Reject"),
            class_="offer", data_interaction=str(item.get("id")),
        )

    async def _conversation(self, principal: Principal, item: dict[str, Any]) -> Markup:
        ident = esc(urllib.parse.quote(str(item.get("id")), safe=""))
        engine_item = self._item(str(item.get("id")))
        tools = self._tools()
        lines: list[Markup] = []
        reply = Markup("")
        if item.get("kind") in ("chat", "sms", "email"):
            if tools is not None and engine_item is not None:
                for message in await tools.desk.transcript(engine_item, limit=100):
                    who = "me" if message["direction"] == "outbound" else (item.get("caller_name") or "customer")
                    lines.append(tag("li", tag("strong", f"{who}: "), message["text"], class_=message["direction"]))
            canned = await self._canned_options(principal, engine_item)
            reply = Markup(
                f'<form method="post" action="/desk/{ident}/reply" class="reply" data-live>{csrf_field(principal.csrf)}'
                f'{canned}<textarea name="text" required maxlength="{MAX_REPLY}" rows="3"></textarea>'
                '<button type="submit">Send</button></form>'
            )
        return tag(
            "article",
            tag("h3", f"{item.get('kind')} from {_who(item)}"),
            tag("p", f"{item.get('state')} · queue {item.get('queue')} · {item.get('id')}", class_="muted status"),
            await self._pop(item),
            tag("ol", *lines, class_="transcript", aria_live="polite"),
            tag("p", "", class_="typing muted", aria_live="polite"),
            reply,
            self._wrapup_forms(principal, item),
            self._button(principal, item, "hangup", "End"),
            class_="conversation", data_interaction=str(item.get("id")),
        )

    async def _canned_options(self, principal: Principal, engine_item: Any) -> Markup:
        tools = self._tools()
        if tools is None or engine_item is None:
            return Markup("")
        values = placeholder_values(engine_item, principal, self.engine)
        rows = await list_canned(tools.store, engine_item.queue)
        if not rows:
            return Markup("")
        options = "".join(f'<option value="{esc(r["id"])}" data-text="{esc(fill(r["body"], values))}">{esc(r["title"])}</option>'
                          for r in rows)
        return Markup(f'<select class="canned" aria-label="Canned response"><option value="">Canned response…</option>'
                      f"{options}</select>")

    def _wrapup_forms(self, principal: Principal, item: dict[str, Any]) -> Markup:
        """Disposition (with a note), a note on its own, a callback, and transfer to another queue."""
        ident = esc(urllib.parse.quote(str(item.get("id")), safe=""))
        codes = "".join(f'<option value="{esc(c)}">' for c in DISPOSITION_SUGGESTIONS)
        queues = "".join(
            f'<option value="{esc(q.get("name"))}">{esc(q.get("name"))}</option>'
            for q in self.engine.list_queues() if q.get("name") != item.get("queue")
        )  # fmt: skip
        csrf = csrf_field(principal.csrf)
        forms = [
            (f'<form method="post" action="/desk/{ident}/disposition" class="inline disposition" data-live>{csrf}'
            f'<input name="disposition" list="disposition-codes-{ident}" placeholder="disposition" required maxlength="64">'
            f'<datalist id="disposition-codes-{ident}">{codes}</datalist>'
            '<input name="notes" placeholder="note" maxlength="2000"><button type="submit">Set disposition</button></form>'),
            (f'<form method="post" action="/desk/{ident}/notes" class="inline notes" data-live>{csrf}'
            '<input name="text" placeholder="note for the CRM" required maxlength="2000"><button type="submit">Add note</button></form>'),
            (f'<form method="post" action="/desk/{ident}/callback" class="inline callback" data-live>{csrf}'
            '<input name="at" type="datetime-local" required aria-label="callback time (UTC)">'
            '<input name="number" placeholder="number (default: theirs)" maxlength="32">'
            '<select name="owner"><option value="me">for me</option><option value="anyone">for anyone in the queue</option></select>'
            '<button type="submit">Schedule callback</button></form>'),
        ]
        if queues:
            forms.append(
                f'<form method="post" action="/desk/{ident}/transfer" class="inline" data-live>{csrf}'
                f'<select name="queue">{queues}</select><button type="submit">Transfer</button></form>'
            )
        return Markup("<div class=\"wrapup\">" + "".join(forms) + "</div>")

    def _previews(self, principal: Principal) -> Markup:
        """Preview campaigns: the lead on show to me, with Start (dial it) and Skip."""
        leads = previews_of(self.engine, principal.name)
        if not leads:
            return tag("p", "No lead to preview.", class_="muted")
        cards = []
        for lead in leads:
            base = "/desk/preview/" + "/".join(esc(urllib.parse.quote(str(lead[k]), safe="")) for k in ("campaign", "lead"))
            buttons = "".join(
                f'<form method="post" action="{base}/{action}" class="inline" data-live>{csrf_field(principal.csrf)}'
                f'<button type="submit">{label}</button></form>' for action, label in (("start", "Start call"), ("skip", "Skip")))
            fields = [tag("li", f"{key}: {value}") for key, value in sorted(lead["fields"].items())]
            cards.append(tag(
                "article",
                tag("h3", f"Call {lead['number']}"),
                tag("p", f"campaign {lead['campaign']} · lead {lead['lead']}", class_="muted"),
                tag("ul", *fields, class_="lead-fields") if fields else "",
                tag("p", lead["script"], class_="script") if lead.get("script") else "",
                Markup(buttons),
                class_="preview", data_campaign=str(lead["campaign"]), data_lead=str(lead["lead"]),
            ))
        return join(cards)

    def _callbacks(self, principal: Principal) -> Markup:
        tools = self._tools()
        rows = tools.desk.callbacks(principal) if tools is not None else []
        if not rows:
            return tag("p", "No callbacks scheduled.", class_="muted")
        return tag("ol", *(tag("li", f"{clock(c['callback'].get('at', 0))} UTC · {c.get('to')} · "
                                     f"{c['callback'].get('owner') or 'anyone'} · {c['callback'].get('note') or ''}")
                           for c in rows), id="callbacks")

    # ------------------------------------------------------------------------------- actions

    async def desk_action(self, request: Request) -> Response:
        principal: Principal = request.principal
        action = request.path_params["action"]
        if action not in DESK_ACTIONS:
            raise HttpError(404, "unknown action")
        interaction = request.path_params["interaction"]
        current = next((i for i in self.engine.list_interactions() if i.get("id") == interaction), None)
        if current is None:
            raise HttpError(404, "no such interaction")
        if current.get("agent") != principal.name and not principal.has_role("supervisor") and \
                current.get("id") not in {str(i) for a in self.engine.list_agents() if a.get("id") == principal.name
                                          for i in a.get("offers", [])}:
            raise HttpError(403, "this interaction is not yours")
        form = await request.form()
        body: dict[str, Any] = {}
        tools = self._tools()
        if action in ("notes", "callback"):
            engine_item = self._item(interaction)
            if tools is None or engine_item is None:
                raise HttpError(501, f"{action} needs the running engine")
            if action == "notes":
                await tools.desk.add_note(engine_item, principal.name, form.get("text", ""))
            else:
                at = _datetime_local(form.get("at", ""))
                owner = principal.name if form.get("owner", "me") == "me" else ""
                tools.desk.schedule_callback(engine_item, principal, at=at, number=form.get("number", "").strip()[:32] or None,
                                             owner=owner, note=form.get("note", "")[:500])
            return _done(request)
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
            note = form.get("notes", "").strip()
            if note:
                body["notes"] = note[:2000]
                engine_item = self._item(interaction)
                if tools is not None and engine_item is not None:
                    await tools.desk.add_note(engine_item, principal.name, note[:2000])  # notes go to the CRM
        elif action == "transfer":
            body["queue"] = form.get("queue", "")[:64]
        await self.engine.interaction_action(interaction, action, body)
        return _done(request)


    async def desk_preview(self, request: Request) -> Response:
        """Start or Skip on the lead card: only the agent the lead is on show to (409 otherwise)."""
        action = request.path_params["action"]
        if action not in PREVIEW_ACTIONS:
            raise HttpError(404, "unknown action")
        dialer = getattr(self.engine, "dialer", None)
        if dialer is None:
            raise HttpError(409, "no campaign is running")
        dialer.answer_preview(request.path_params["name"], request.principal.name, request.path_params["lead"],
                              start=action == "start")
        return _done(request)


def _done(request: Request) -> Response:
    """desk.js asks for no redirect (it refreshes the live sections itself)."""
    if request.header("x-desk-live") == "1":
        return Response(204, b"", "text/plain")
    return redirect("/desk")


def _who(item: dict[str, Any]) -> str:
    return f"{item.get('caller_name')} <{item.get('from')}>" if item.get("caller_name") else str(item.get("from"))


def _day(value: Any) -> str:
    return clock(float(value))[:10] if isinstance(value, (int, float)) else ""


def _datetime_local(raw: str) -> float:
    """``2026-11-25T17:30`` from a datetime-local input, taken as UTC (the form says so)."""
    try:
        parsed = _dt.datetime.fromisoformat(raw.strip()[:32])
    except ValueError:
        raise HttpError(400, "the callback time must be a date and time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.UTC)
    return parsed.timestamp()
