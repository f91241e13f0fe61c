"""``/api/v1/...`` routes of the agent desk and the supervisor: screen pop, notes, typing, transcript,
callbacks, canned responses, queue membership, listen/whisper/barge.

Mounted before the generic ``POST /api/v1/interactions/{id}/{action}`` route, so these literal
actions win. Bodies are flat JSON objects with typed fields (``_api._flat``); anything else is a 400.
"""

from __future__ import annotations

from typing import Any

from ._api import _flat, _json_type, _string, parse_since
from ._auth import Principal
from ._canned import CannedError, add_canned, delete_canned, fill, get_canned, list_canned, update_canned
from ._desk import Desk
from ._http import HttpError, Request, Response, Router, json_response
from ._supervise import DEFAULT_RING_TIMEOUT, MODES, Supervision


def placeholder_values(item: Any, principal: Principal, engine: Any) -> dict[str, Any]:
    settings = getattr(engine, "agent_settings", {}).get(principal.name)
    return {"customer_name": item.caller_name or item.attributes.get("contact_name") or "",
            "agent_name": (getattr(settings, "name", "") or principal.name), "queue": item.queue or "",
            "interaction": item.id}


class DeskApi:
    def __init__(self, engine: Any, store: Any) -> None:
        self.engine = engine
        self.store = store
        self.desk = Desk(engine)
        self.supervision = Supervision(engine)

    def mount(self, router: Router) -> None:
        add = router.add
        add("GET", "/api/v1/interactions/{interaction}/contact", self.contact, role="agent")
        add("GET", "/api/v1/interactions/{interaction}/messages", self.messages, role="agent")
        add("POST", "/api/v1/interactions/{interaction}/notes", self.notes, role="agent")
        add("POST", "/api/v1/interactions/{interaction}/typing", self.typing, role="agent")
        add("POST", "/api/v1/interactions/{interaction}/callback", self.callback, role="agent")
        add("GET", "/api/v1/callbacks", self.callbacks, role="agent")
        add("GET", "/api/v1/canned", self.canned, role="agent")
        add("POST", "/api/v1/canned", self.create_canned, role="supervisor")
        add("PUT", "/api/v1/canned/{canned}", self.change_canned, role="supervisor")
        add("DELETE", "/api/v1/canned/{canned}", self.remove_canned, role="supervisor")
        add("POST", "/api/v1/queues/{name}/members/{agent}", self.add_member, role="supervisor")
        add("DELETE", "/api/v1/queues/{name}/members/{agent}", self.remove_member, role="supervisor")
        for mode in MODES:
            add("POST", f"/api/v1/interactions/{{interaction}}/{mode}", self.supervise, role="supervisor")
        add("GET", "/api/v1/interactions/{interaction}/supervision", self.supervision_state, role="supervisor")
        add("DELETE", "/api/v1/interactions/{interaction}/supervision", self.stop_supervision, role="supervisor")

    def _mine(self, request: Request) -> Any:
        item = self.desk.interaction(request.path_params["interaction"])
        self.desk.check_owner(item, request.principal)
        return item

    # ------------------------------------------------------------------------------- desk

    async def contact(self, request: Request) -> Response:
        item = self._mine(request)
        return json_response({"interaction": item.id, "pop": await self.desk.screen_pop(item, fresh=True)})

    async def messages(self, request: Request) -> Response:
        return json_response(await self.desk.transcript(self._mine(request)))

    async def notes(self, request: Request) -> Response:
        item = self._mine(request)
        body = _flat(await request.json())
        return json_response(await self.desk.add_note(item, request.principal.name, body.get("text")))

    async def typing(self, request: Request) -> Response:
        item = self._mine(request)
        body = _flat(await request.json())
        on = body.get("on")
        if not isinstance(on, bool):
            raise HttpError(400, f"'on' must be true or false, got {_json_type(on)}")
        return json_response({"shown": self.desk.typing(item, on)})

    async def callback(self, request: Request) -> Response:
        item = self._mine(request)
        principal: Principal = request.principal
        body = _flat(await request.json())
        at = body.get("at")
        if isinstance(at, bool) or not isinstance(at, (int, float, str)):
            raise HttpError(400, f"'at' must be a Unix time or an ISO 8601 date, got {_json_type(at)}")
        when = float(at) if isinstance(at, (int, float)) else parse_since(at[:64])
        if when is None:
            raise HttpError(400, "'at' is required")
        owner = _string(body, "owner", limit=64)
        owner = principal.name if owner in (None, "me") else ("" if owner == "anyone" else owner)
        if owner not in ("", principal.name) and not principal.has_role("supervisor"):
            raise HttpError(403, "agents schedule callbacks for themselves or for anyone in the queue")
        number = _string(body, "number", limit=32)
        note = _string(body, "note", limit=500) or ""
        return json_response(self.desk.schedule_callback(item, principal, at=when, number=number or None,
                                                         owner=owner, note=note), 201)

    async def callbacks(self, request: Request) -> Response:
        return json_response(self.desk.callbacks(request.principal))

    # ------------------------------------------------------------------------------- canned responses

    async def canned(self, request: Request) -> Response:
        """``?queue=`` or ``?interaction=`` (with placeholders filled for it); ``?all=1`` for supervisors."""
        principal: Principal = request.principal
        if request.query.get("all") and principal.has_role("supervisor"):
            return json_response(await list_canned(self.store, all_queues=True))
        interaction = request.query.get("interaction")
        if interaction:
            item = self.desk.interaction(interaction[:64])
            self.desk.check_owner(item, principal)
            values = placeholder_values(item, principal, self.engine)
            rows = await list_canned(self.store, item.queue)
            return json_response([{**row, "text": fill(row["body"], values)} for row in rows])
        return json_response(await list_canned(self.store, (request.query.get("queue") or "")[:64]))

    async def create_canned(self, request: Request) -> Response:
        body = _flat(await request.json())
        try:
            row = await add_canned(self.store, body.get("title"), body.get("body"), body.get("queue"), request.principal.name)
        except CannedError as exc:
            raise HttpError(400, str(exc)) from None
        return json_response(row, 201)

    def _canned_id(self, request: Request) -> int:
        raw = request.path_params["canned"]
        if not raw.isdigit() or len(raw) > 12:
            raise HttpError(404, "no such canned response")
        return int(raw)

    async def change_canned(self, request: Request) -> Response:
        canned_id = self._canned_id(request)
        body = _flat(await request.json())
        current = await get_canned(self.store, canned_id)
        try:
            row = await update_canned(self.store, canned_id, body.get("title", current["title"]),
                                      body.get("body", current["body"]), body.get("queue", current["queue"]),
                                      request.principal.name)
        except CannedError as exc:
            raise HttpError(400, str(exc)) from None
        return json_response(row)

    async def remove_canned(self, request: Request) -> Response:
        await delete_canned(self.store, self._canned_id(request))
        return json_response({"ok": True})

    # ------------------------------------------------------------------------------- supervisor

    async def add_member(self, request: Request) -> Response:
        return self._member(request, True)

    async def remove_member(self, request: Request) -> Response:
        return self._member(request, False)

    def _member(self, request: Request, member: bool) -> Response:
        queue, agent = request.path_params["name"], request.path_params["agent"]
        members = self.desk.routing.set_member(agent, queue, member)
        return json_response({"queue": queue, "members": members, "until": "the next configuration apply"})

    async def supervise(self, request: Request) -> Response:
        principal: Principal = request.principal
        mode = request.path.rstrip("/").rsplit("/", 1)[-1]
        body = _flat(await request.json()) if request.header("content-type") else {}
        endpoint = _string(body, "endpoint", limit=128)
        if endpoint is None:
            settings = getattr(self.engine, "agent_settings", {}).get(principal.name)
            endpoint = getattr(settings, "endpoint", "") or ""
            if not endpoint:
                raise HttpError(400, "'endpoint' is required: the supervisor's phone (e.g. sip:2001)")
        ring_timeout = body.get("ring_timeout", DEFAULT_RING_TIMEOUT)
        if isinstance(ring_timeout, bool) or not isinstance(ring_timeout, (int, float)) or not 1 <= ring_timeout <= 120:
            raise HttpError(400, "'ring_timeout' must be a number of seconds from 1 to 120")
        result = await self.supervision.start(request.path_params["interaction"], mode, principal.name, endpoint,
                                              ring_timeout=float(ring_timeout))
        return json_response(result)

    async def supervision_state(self, request: Request) -> Response:
        state = self.supervision.state(request.path_params["interaction"])
        if state is None:
            raise HttpError(404, "nobody is supervising this interaction")
        return json_response(state)

    async def stop_supervision(self, request: Request) -> Response:
        if not self.supervision.stop(request.path_params["interaction"]):
            raise HttpError(404, "nobody is supervising this interaction (or their phone is still ringing)")
        return json_response({"ok": True})
