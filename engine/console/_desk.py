"""What the agent desk asks of a running engine beyond :class:`engine.abc.EngineAPI`.

The screen pop (the CRM contact of an interaction, with history and notes), notes into the CRM, the
agent's typing shown to a chat visitor, a conversation's transcript, and callbacks scheduled from the
desk. These reach into the real engine (CRM backends, channels, routing) through duck-typed
attributes, so an embedder's engine without them answers "not available" (501), never a crash.

Scheduled callbacks use the routing core's callbacks (``CallbackRequest`` with a time window): the
callback is a waiting voice interaction in the owner's personal queue (one agent) or in the
conversation's queue (anyone), offered when its window opens; accepting it rings the agent, then the
engine dials the customer (``Engine.dial_callback``), with the routing core's retries.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

import trio

from .._events import safe_text
from ._http import HttpError
from ._runtime_routing import RuntimeRouting

log = logging.getLogger("centralita.console.desk")

CRM_BUDGET = 2.0  # seconds for every CRM backend together: a slow CRM leaves the pop empty, not the page hung
HISTORY_SHOWN = 10
NOTES_SHOWN = 20
MAX_NOTE = 2000
CALLBACK_WINDOW = 3600.0  # after the chosen time, how long the callback may still be dialed
MAX_CALLBACK_AHEAD = 90 * 86400.0
_POP_CACHE = 256


class Desk:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.routing = RuntimeRouting(engine)
        #: interaction id -> screen pop; a desk refreshes often and the contact rarely changes mid-call
        self._pops: collections.OrderedDict[str, dict[str, Any] | None] = collections.OrderedDict()
        #: agent -> (status, since when): the routing core's QueueMemberStatus events, seen by the console
        self.status_since: dict[str, tuple[str, float]] = {}
        self.started = time.time()
        bus = getattr(engine, "bus", None)
        if bus is not None:
            bus.add_listener(self._on_event)

    def _on_event(self, event: Any) -> None:
        if event.event == "QueueMemberStatus":
            agent, status = event.fields.get("Agent"), event.fields.get("Status")
            changed = isinstance(agent, str) and isinstance(status, str) and self.status_since.get(agent, ("",))[0] != status
            # bounded: agents come from the configuration, but a runaway plugin could publish anything
            if changed and (len(self.status_since) < 100_000 or agent in self.status_since):
                self.status_since[agent] = (status, event.timestamp)

    def in_status_for(self, agent: str, status: str, now: float | None = None) -> tuple[float, bool]:
        """Seconds ``agent`` has been in ``status`` and whether that is exact (False: at least since the
        console started, which saw no change)."""
        now = time.time() if now is None else now
        known = self.status_since.get(agent)
        if known is not None and known[0] == status:
            return now - known[1], True
        return now - self.started, False

    # -------------------------------------------------------------------------------- lookups

    def interaction(self, interaction_id: str) -> Any:
        """The engine's live :class:`Interaction` (404 when unknown, 501 without a real engine)."""
        find = getattr(self.engine, "find_interaction", None)
        if find is None:
            raise HttpError(501, "this engine does not expose interactions to the desk")
        return find(interaction_id)

    def offered_to(self, agent: str) -> list[str]:
        """Ids of the interactions offered to ``agent`` right now (the routing core's view)."""
        me = next((a for a in self.engine.list_agents() if a.get("id") == agent), None)
        return [str(i) for i in (me or {}).get("offers", [])]

    def check_owner(self, item: Any, principal: Any) -> None:
        """Its agent, the agent it is offered to, or a supervisor."""
        if item.agent == principal.name or principal.has_role("supervisor"):
            return
        if item.state.value == "offered" and item.id in self.offered_to(principal.name):
            return
        raise HttpError(403, "this interaction is not yours")

    def _backends(self) -> list[tuple[str, Any]]:
        return list((getattr(self.engine, "crm", None) or {}).items())

    # -------------------------------------------------------------------------------- screen pop

    async def screen_pop(self, item: Any, *, fresh: bool = False) -> dict[str, Any] | None:
        """``{"crm", "contact": {...}, "history": [...], "notes": [...]}`` or None (nobody knows them)."""
        if not fresh and item.id in self._pops:
            return self._pops[item.id]
        pop = None
        with trio.move_on_after(CRM_BUDGET):
            for name, backend in self._backends():
                try:
                    pop = await self._pop_from(name, backend, item)
                except Exception:
                    log.warning("desk: CRM %s failed for %s", name, item.id, exc_info=True)
                    continue
                if pop is not None:
                    break
        self._pops[item.id] = pop
        while len(self._pops) > _POP_CACHE:
            self._pops.popitem(last=False)
        return pop

    async def _pop_from(self, name: str, backend: Any, item: Any) -> dict[str, Any] | None:
        contact = None
        contact_id = item.attributes.get("contact_id")
        get = getattr(backend, "contact", None)
        if isinstance(contact_id, str) and get is not None:
            contact = await get(contact_id)
        if contact is None:
            keys = self._identities(item)
            if not keys:
                return None
            contact = await backend.lookup(**keys)
        if contact is None:
            return None
        history = getattr(backend, "history", None)
        notes = getattr(backend, "notes", None)
        past = list(await history(contact.id))[-HISTORY_SHOWN:] if history else []
        written = list(await notes(contact.id))[-NOTES_SHOWN:] if notes else []
        return {
            "crm": name,
            "contact": {"id": contact.id, "name": contact.name, "phones": list(contact.phones),
                        "emails": list(contact.emails), "segments": list(contact.segments),
                        "fields": {str(k): v if isinstance(v, (int, float, bool)) else str(v)
                                   for k, v in dict(contact.fields).items()}},
            "history": [{k: row.get(k) for k in ("interaction", "kind", "started", "queue", "agent", "disposition")}
                        for row in past if row.get("interaction") != item.id],
            "notes": [{"author": n.get("author"), "text": n.get("text"), "created": n.get("created")} for n in written],
            "notes_supported": getattr(backend, "add_note", None) is not None,
            "identity_claimed": bool(item.attributes.get("claimed_email")),
        }

    @staticmethod
    def _identities(item: Any) -> dict[str, str]:
        customer = item.from_ if item.direction.value == "inbound" else item.to
        kind = item.kind.value
        if kind in ("voice", "sms"):
            return {"phone": customer}
        if kind == "email":
            return {"email": customer}
        claimed = item.attributes.get("claimed_email")  # chat: what the site said the visitor is
        return {"email": claimed} if isinstance(claimed, str) and claimed else {}

    async def add_note(self, item: Any, author: str, text: Any) -> dict[str, Any]:
        """A note on the interaction (kept with it) and on the contact in every CRM that takes notes."""
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_NOTE:
            raise HttpError(400, f"'text' must be a string of 1 to {MAX_NOTE} characters")
        text = "".join(c for c in text if c in "\n\t" or (c >= " " and c != "\x7f"))
        item.attributes.setdefault("notes", []).append({"author": author, "text": text, "created": time.time()})
        del item.attributes["notes"][:-50]
        saved_in = []
        pop = await self.screen_pop(item, fresh=True)
        if pop is not None:
            backend = dict(self._backends()).get(pop["crm"])
            add = getattr(backend, "add_note", None)
            if add is not None:
                with trio.move_on_after(CRM_BUDGET):
                    try:
                        await add(pop["contact"]["id"], author, text)
                        saved_in.append(pop["crm"])
                    except Exception:
                        log.warning("desk: CRM %s did not take a note for %s", pop["crm"], item.id, exc_info=True)
            await self.screen_pop(item, fresh=True)
        return {"ok": True, "crm": saved_in}

    # -------------------------------------------------------------------------------- messaging

    def _channel(self, item: Any) -> Any:
        return (getattr(self.engine, "channels", None) or {}).get(item.channel)

    def typing(self, item: Any, on: bool) -> bool:
        """Show the customer that the agent is typing; False when the channel has no such thing."""
        show = getattr(self._channel(item), "agent_typing", None)
        if show is None:
            return False
        show(item, on)
        return True

    async def transcript(self, item: Any, limit: int = 200) -> list[dict[str, Any]]:
        messages = getattr(self._channel(item), "messages", None)
        conversation = item.attributes.get("conversation")
        if messages is None or not isinstance(conversation, str):
            return []
        rows = await messages.history(conversation)
        return [{"id": r.get("id"), "direction": r.get("direction"), "status": r.get("status"),
                 "text": r.get("body"), "created": r.get("created")} for r in rows[-limit:]]

    # -------------------------------------------------------------------------------- callbacks

    def schedule_callback(self, item: Any, principal: Any, *, at: float, number: str | None, owner: str,
                          note: str = "") -> dict[str, Any]:
        """A callback at ``at`` (Unix time) for ``item``'s customer, owned by ``owner`` ("" = anyone)."""
        engine = self.engine
        if getattr(engine, "acd", None) is None or getattr(engine, "new_interaction", None) is None:
            raise HttpError(501, "this engine cannot schedule callbacks")
        now = time.time()
        if not now - 60 <= at <= now + MAX_CALLBACK_AHEAD:
            raise HttpError(400, "'at' must be from now up to 90 days ahead")
        if number is None:
            number = item.from_ if item.kind.value in ("voice", "sms") else ""
        try:
            number = engine.check_dial(number, caller=principal.name, purpose="callback")
        except ValueError as exc:
            raise HttpError(400, f"'number': {exc}") from None
        if owner:
            if owner not in getattr(engine, "agent_settings", {}):
                raise HttpError(400, f"'owner' {safe_text(owner, 40)!r} is not a configured agent")
            queue = self.routing.personal_queue(owner)
        else:
            queue = item.queue if item.queue and not item.queue.startswith("agent:") else ""
            if not queue:
                raise HttpError(409, "this interaction has no queue; schedule the callback for yourself")
        from .._model import Direction, InteractionKind
        from ..routing import CallbackRequest

        channel = engine.dialing_channel()
        callback = engine.new_interaction(
            InteractionKind.VOICE, Direction.OUTBOUND, from_=number, to=number,
            channel=channel.name if channel is not None else "callback", caller_name=item.caller_name,
            attributes={"scheduled_callback": {"at": at, "owner": owner or None, "by": principal.name,
                                               "for": item.id, "note": note[:500]},
                        **({"contact_id": item.attributes["contact_id"]} if "contact_id" in item.attributes else {})},
        )
        engine.acd.enqueue(callback, queue, callback=CallbackRequest(f"desk-{callback.id}", number,
                                                                     (at, at + CALLBACK_WINDOW)))
        engine.bus.publish("CallbackScheduled", interaction=callback.id, Queue=queue, Agent=owner, Due=at,
                           CallerIDNum=number, For=item.id)
        return self._callback_json(callback)

    @staticmethod
    def _callback_json(item: Any) -> dict[str, Any]:
        details = item.attributes.get("scheduled_callback", {})
        return {**item.to_json(), "callback": dict(details)}

    def callbacks(self, principal: Any) -> list[dict[str, Any]]:
        """Waiting callbacks: an agent sees their own and anyone's; a supervisor sees every one."""
        out = []
        if getattr(self.engine, "find_interaction", None) is None:
            return out  # not the real engine: it has no routing to keep callbacks in
        for item in self.engine.interactions.values():
            details = item.attributes.get("scheduled_callback")
            if details is None or item.state.value == "ended":
                continue
            if principal.has_role("supervisor") or details.get("owner") in (None, principal.name):
                out.append(self._callback_json(item))
        return sorted(out, key=lambda c: c["callback"].get("at", 0))
