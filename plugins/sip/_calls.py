"""The B2BUA: every call is legs the engine controls.

An inbound INVITE (from a trunk, or from a registered phone that answers a digest challenge) becomes an
Interaction and is routed by the engine per ``[[routes]]``. A queue or agent route keeps the caller
ringing (180) while the engine offers the call: :meth:`CallManager.offer` rings the agent's registered
phone(s) with the caller's SDP, and when one answers, the caller gets the answer: the legs are bridged
end to end (the media path is negotiated directly between the two phones; when the engine's media
framework is wired in, anchoring can replace the pass-through without changing this state machine). A
flow route is answered by the engine itself.

Leg states:

==========  ==================================================================================
leg state   meaning / exits
==========  ==================================================================================
ringing     INVITE sent or received, no final answer -> answered | ended (CANCEL, 4xx-6xx, timeout)
answered    2xx sent or received -> ended (BYE either way, hang-up)
ended       final; the leg's dialog is gone
==========  ==================================================================================

Mid-call requests are relayed to the other leg: re-INVITE (hold with sendonly/inactive, unhold),
INFO ``application/dtmf-relay`` (also published as ``DTMFEnd``), BYE. REFER from the agent's side is a
blind transfer: the caller is offered to the Refer-To target and the agent leg is released.
"""

from __future__ import annotations

import enum
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from engine import Direction, Disposition, Interaction, InteractionKind, InteractionState
from engine._events import safe_text

from ._core import ClientTransaction, ServerTransaction, new_tag
from ._media import MediaLeg, dtmf_method, interaction_dtmf_method, session_id
from ._registrar import endpoint_user
from ._timers import TimerHandle
from ._transport import Peer
from .sansio import (
    Dialog,
    Headers,
    MediaSession,
    NameAddr,
    Request,
    Response,
    SdpNegotiationError,
    SipPeerError,
    SipUri,
    dialog_id_for_incoming_request,
)

if TYPE_CHECKING:
    from ._channel import SipChannel

__all__ = ["Call", "CallManager", "Leg", "LegState"]

log = logging.getLogger("centralita.sip.calls")

#: the key that ends a message the caller is recording (voicemail), as on most voicemail systems
VOICEMAIL_STOP_KEY = "#"

_DTMF_SIGNAL = re.compile(r"(?im)^\s*signal\s*=\s*([0-9A-D*#])\s*$")
_DTMF_DURATION = re.compile(r"(?im)^\s*duration\s*=\s*(\d{1,6})\s*$")
#: what a dialled destination (the Request-URI user) may be before routing sees it: a number, an
#: extension or a name; never separators, URI or dial-command text (``300&Zap/...``, ``;``, ``@``, ``%``)
_DESTINATION = re.compile(r"\+?[0-9A-Za-z*#._-]{1,64}")


class LegState(enum.Enum):
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(eq=False)
class Leg:
    call: Call
    role: str  # "caller" | "agent"
    peer: Peer
    state: LegState = LegState.RINGING
    dialog: Dialog | None = None
    invite_txn: ServerTransaction | None = None  # the caller's INVITE
    client_txn: ClientTransaction | None = None  # our INVITE to the agent
    invite: Request | None = None  # our INVITE to the agent, as sent
    remote_sdp: bytes = b""
    agent: str | None = None
    outcome: trio.Event = field(default_factory=trio.Event)
    result: str = ""  # "answered" | "busy" | "rejected" | "no-answer" | "failed"
    ring_timer: TimerHandle | None = None
    last_ack: bytes | None = None
    pending_reinvite: ServerTransaction | None = None  # a relayed re-INVITE waiting for the other side
    media_leg: MediaLeg | None = None  # our RTP endpoint facing this leg, when the call is anchored
    #: a customer leg the engine called out to (``dial``): its INVITE is ours, so a hang-up while it
    #: rings is a CANCEL, not a final response
    outgoing: bool = False


@dataclass(eq=False)
class Call:
    interaction: Interaction
    caller: Leg | None = None
    agents: list[Leg] = field(default_factory=list)
    answered_by_engine: bool = False
    media: MediaSession | None = None
    #: the engine's RTP endpoint facing the caller (IVR-answered calls, or every call with
    #: ``[sip] anchor_media``, when engine.media runs)
    anchor: MediaLeg | None = None
    #: our SDP answer to the caller's offer, kept until an agent answers (anchored queue calls)
    anchor_sdp: bytes = b""
    #: the other half of a caller transferred to an outside number (its own outbound call through a
    #: trunk, bridged on the media engine): when either ends, so does the other
    linked: Call | None = None
    #: told of every digit the caller presses while the engine records them (``#`` ends a voicemail)
    on_digit: Any = None

    @property
    def connected_agent(self) -> Leg | None:
        return next((leg for leg in self.agents if leg.state is LegState.ANSWERED), None)

    def other(self, leg: Leg) -> Leg | None:
        if leg.role == "caller":
            return self.connected_agent
        return self.caller


class CallManager:
    def __init__(self, channel: SipChannel) -> None:
        self.channel = channel
        self.core = channel.core
        self.calls: dict[str, Call] = {}  # interaction id -> call
        self._by_dialog: dict[tuple[str, str, str], Leg] = {}
        self.stats = {"inbound": 0, "answered": 0, "offers": 0, "offers_answered": 0, "rejected": 0, "ended": 0}
        for method, handler in (
            ("INVITE", self._invite),
            ("BYE", self._bye),
            ("INFO", self._info),
            ("REFER", self._refer),
            ("UPDATE", self._update),
            ("NOTIFY", self._notify),
        ):
            self.core.handlers[method] = handler
        from ._phone_out import PhoneOut  # imports this module

        #: registered phones calling outside numbers through a trunk
        self.phone_out = PhoneOut(channel, self)
        self.core.on_ack = self._ack
        self.core.on_stray_response = self._stray_response

    @property
    def engine(self) -> Any:
        return getattr(self.channel.context, "engine", None)

    def statistics(self) -> dict[str, Any]:
        return {**self.stats, "active": len(self.calls)}

    # ------------------------------------------------------------------------------------ inbound INVITE

    def _invite(self, request: Request, txn: ServerTransaction) -> None:
        if request.to.tag:
            self._reinvite(request, txn)
            return
        channel = self.channel
        trunk = channel.trunks.trunk_for(txn.peer)
        caller_user = None
        if trunk is None:
            caller_user = channel.registrar.authenticate(request, txn, proxy=True)
            if caller_user is None:
                return  # challenged (407) or refused
        engine = self.engine
        if engine is None or not getattr(engine, "accepting", False):
            self.core.respond(txn, 503, headers=[("Retry-After", "5")])
            return
        if request.media_type not in (None, "application/sdp") and request.body:
            self.core.respond(txn, 415, headers=[("Accept", "application/sdp")])
            return
        uri = request.uri
        destination = getattr(uri, "user", None) or ""
        from_ = request.from_
        caller = getattr(from_.uri, "user", None) or caller_user or "anonymous"
        display = from_.display_name or ""
        if not _DESTINATION.fullmatch(destination):
            self.core.respond(txn, 404)
            channel.security_event("bad_destination", txn.peer, username=caller_user or "",
                                   detail=f"refused destination {destination!r}")
            return
        number = self.phone_out.number_for(caller_user, destination) if caller_user is not None else None
        if number is not None:
            self.phone_out.place(request, txn, caller_user, number)
            return
        try:
            interaction = engine.new_interaction(
                InteractionKind.VOICE,
                Direction.INBOUND,
                from_=caller[:64],
                to=destination,
                channel=channel.name,
                caller_name=display[:64],
                attributes={"sip_call_id": (request.call_id or "")[:128], "trunk": trunk.name if trunk else None, "sip_user": caller_user},
            )
        except RuntimeError:
            self.core.respond(txn, 503, headers=[("Retry-After", "5")])
            return
        self.stats["inbound"] += 1
        call = Call(interaction)
        leg = Leg(call, "caller", txn.peer, invite_txn=txn, remote_sdp=request.body)
        call.caller = leg
        self.calls[interaction.id] = call
        txn.to_tag = new_tag()
        txn.on_cancel = lambda t, leg=leg: self._caller_cancelled(leg)
        target = engine.find_route(destination)
        if target is None:
            self._refuse_caller(leg, 404, cause="no-route", disposition=Disposition.FAILED)
            return
        # Ringback while the engine decides: an IVR answers through answer(), a queue offers to agents.
        self.core.respond(txn, 180, to_tag=txn.to_tag)
        try:
            engine.deliver(interaction, target)
        except RuntimeError as exc:
            # No IVR runner in this engine: answer the flow's number ourselves; the call stays up until
            # either side hangs up.
            log.info("sip: %s: %s; answering it without a flow", interaction.id, exc)
            self.answer_caller(call)
        except Exception:
            log.exception("sip: routing %s failed", interaction.id)
            if leg.state is LegState.RINGING:
                self._refuse_caller(leg, 500, cause="routing-error", disposition=Disposition.FAILED)

    def answer_caller(self, call: Call, sdp: bytes | None = None) -> bool:
        """The engine answers the caller itself (IVR, announcements): 200 with our own SDP."""
        leg = call.caller
        if leg is None or leg.state is not LegState.RINGING or leg.invite_txn is None:
            return False
        txn = leg.invite_txn
        if sdp is None and call.anchor is not None and call.anchor_sdp:
            sdp = call.anchor_sdp  # anchored while queued (anchor_media, recording): answer on that endpoint
        if sdp is None and leg.remote_sdp:
            try:
                anchored = MediaLeg.answer(
                    self.channel,
                    leg.remote_sdp,
                    name=f"sip-{call.interaction.id}",
                    on_digit=lambda digit, ms, call=call: self._rtp_digit(call, digit, ms),
                    dtmf=interaction_dtmf_method(self.channel, call.interaction),
                )
            except SdpNegotiationError as exc:
                self._refuse_caller(leg, 488, cause="incompatible-media", disposition=Disposition.FAILED, reason=exc.reason)
                return False
            except Exception:
                log.exception("sip: the media framework could not anchor %s; answering without it", call.interaction.id)
                anchored = None
            if anchored is not None:
                call.anchor, sdp = anchored
        if sdp is None:
            media = MediaSession(self.core.local.get("udp", next(iter(self.core.local.values()))).host, self.channel.sink_port, session_id=session_id())
            call.media = media
            try:
                answer, _ = media.answer(leg.remote_sdp) if leg.remote_sdp else (media.make_offer(), None)
            except SdpNegotiationError as exc:
                self._refuse_caller(leg, 488, cause="incompatible-media", disposition=Disposition.FAILED, reason=exc.reason)
                return False
            sdp = answer.serialize() if hasattr(answer, "serialize") else bytes(answer)
        call.answered_by_engine = True
        self._answer_leg(leg, sdp)
        if call.interaction.answered is None:
            # The caller's line is answered (by the IVR): that is what the CDR's ANSWERED means.
            call.interaction.answered = time.time()
        return True

    def _answer_leg(self, leg: Leg, sdp: bytes) -> None:
        txn = leg.invite_txn
        assert txn is not None
        contact = f"<{self.core.contact_uri(txn.peer.transport)}>"
        headers = [("Contact", contact), ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, UPDATE, NOTIFY")]
        if sdp:
            headers.append(("Content-Type", "application/sdp"))
        try:
            dialog = Dialog.from_uas(txn.request, txn.to_tag or "", local_contact=contact)
        except SipPeerError as exc:
            self._refuse_caller(leg, exc.status or 400, cause="bad-request", disposition=Disposition.FAILED, reason=exc.reason[:80])
            return
        self.core.respond(txn, 200, headers=headers, body=sdp, to_tag=txn.to_tag)
        dialog.confirm()
        leg.dialog = dialog
        leg.state = LegState.ANSWERED
        self._by_dialog[dialog.id] = leg
        self.stats["answered"] += 1

    def _refuse_caller(self, leg: Leg, status: int, *, cause: str, disposition: Disposition, reason: str | None = None) -> None:
        txn = leg.invite_txn
        if txn is not None and txn.final_status == 0:
            self.core.respond(txn, status, reason, to_tag=txn.to_tag)
        leg.state = LegState.ENDED
        self.stats["rejected"] += 1
        self._end_call(leg.call, cause=cause, disposition=disposition)

    def _caller_cancelled(self, leg: Leg) -> None:
        # The core answers 487 to the INVITE after this returns.
        leg.state = LegState.ENDED
        self._end_call(leg.call, cause="caller-cancel", disposition=Disposition.NO_ANSWER)

    # ------------------------------------------------------------------------------------------ offers

    async def offer(self, interaction: Interaction, agent: str, endpoint: str) -> None:
        """Ring ``agent``'s phone for ``interaction``; report the outcome to the engine."""
        engine = self.engine
        call = self.calls.get(interaction.id)
        user = endpoint_user(endpoint)
        bindings = self.channel.registrar.contacts(user) if user else []
        if call is None or call.caller is None or call.caller.state is LegState.ENDED or not bindings:
            if engine is not None:
                engine.offer_failed(interaction, agent, "failed" if bindings else "unreachable")
            return
        self.stats["offers"] += 1
        legs = [self._ring(call, binding, agent) for binding in bindings]
        if engine is not None:
            engine.bus.publish("AgentCalled", interaction=interaction.id, Agent=agent, Queue=interaction.queue or "", Endpoint=endpoint)
        try:
            await self._wait_legs(legs)
        except BaseException:
            # The engine withdrew the offer (queue timeout, caller gone): stop ringing, release any answer.
            for leg in legs:
                self._hangup_leg(leg)
            raise
        winner = next((leg for leg in legs if leg.result == "answered"), None)
        for leg in legs:
            if leg is not winner:
                self._hangup_leg(leg)
        for leg in legs:
            if leg is not winner and leg.media_leg is not None:
                leg.media_leg.release()
                leg.media_leg = None
        if winner is None:
            results = {leg.result for leg in legs}
            cause = "busy" if "busy" in results else "rejected" if "rejected" in results else "no-answer"
            call.agents = [leg for leg in call.agents if leg not in legs]
            if engine is not None:
                engine.offer_failed(interaction, agent, cause)
            return
        if call.caller is None or call.caller.state is LegState.ENDED or (engine is not None and not engine.offer_answered(interaction, agent)):
            self._hangup_leg(winner)
            return
        self.stats["offers_answered"] += 1
        self._connect(call, winner)

    async def _wait_legs(self, legs: list[Leg], timeout: float | None = None) -> None:
        """Until one leg answers or every leg has failed, at most ``timeout`` (default ``ring_timeout``)."""
        with trio.move_on_after(self.channel.settings.timers.ring_timeout if timeout is None else timeout):
            while not any(leg.result == "answered" for leg in legs) and not all(leg.outcome.is_set() for leg in legs):
                async with trio.open_nursery() as nursery:
                    for leg in legs:
                        if not leg.outcome.is_set():
                            nursery.start_soon(self._wait_then_cancel_scope, leg, nursery.cancel_scope)

    async def _wait_then_cancel_scope(self, leg: Leg, scope: trio.CancelScope) -> None:
        await leg.outcome.wait()
        scope.cancel()

    def _ring(self, call: Call, binding: Any, agent: str, *, shown_caller: str | None = None) -> Leg:
        caller = call.caller  # None: the caller is on another channel (``_crosscalls.ring_for``)
        interaction = call.interaction
        core = self.core
        leg = Leg(call, "agent", binding.peer, agent=agent)
        call.agents.append(leg)
        try:
            target = SipUri.parse(binding.contact)
        except SipPeerError:
            leg.result, leg.state = "failed", LegState.ENDED
            leg.outcome.set()
            return leg
        local_host = core.local.get(binding.peer.transport, next(iter(core.local.values()))).host
        # The agent's phone shows who is on the line: the caller, or for an outbound call the customer.
        shown = interaction.from_ if shown_caller is None else shown_caller
        display = interaction.caller_name.replace('"', "") if shown_caller is None else ""
        headers = Headers()
        headers.add("From", f'"{display or _user_part(shown)}" <sip:{_user_part(shown)}@{local_host}>;tag={new_tag()}')
        headers.add("To", f"<sip:{binding.user}@{local_host}>")
        headers.add("Call-ID", f"{new_tag()}{new_tag()}@centralita")
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", f"<{core.contact_uri(binding.peer.transport)}>")
        headers.add("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, UPDATE, NOTIFY")
        if interaction.queue:
            headers.add("X-Centralita-Queue", interaction.queue)
        headers.add("X-Centralita-Interaction", interaction.id)
        body = caller.remote_sdp if caller is not None else b""
        # A recorded call is anchored even without ``anchor_media``: the recorder needs its audio.
        anchor = self.channel.settings.anchor_media or self._recording_wanted(interaction)
        if caller is not None and call.anchor is None and caller.state is LegState.RINGING and caller.remote_sdp and anchor:
            try:
                anchored = MediaLeg.answer(
                    self.channel,
                    caller.remote_sdp,
                    name=f"sip-{interaction.id}",
                    on_digit=lambda digit, ms, call=call: self._rtp_digit(call, digit, ms),
                    dtmf=interaction_dtmf_method(self.channel, interaction),
                )
            except Exception as exc:
                log.info("sip: %s stays unanchored: %s", interaction.id, safe_text(exc))
                anchored = None
            if anchored is not None:
                call.anchor, call.anchor_sdp = anchored
        if call.anchor is not None or caller is None:
            # The caller's media ends on our endpoint: the agent gets an endpoint of ours too, bridged.
            codec = call.anchor.endpoint.codec if call.anchor is not None else "PCMU"
            try:
                offered = MediaLeg.offer(
                    self.channel, name=f"sip-{interaction.id}-agent", codec=codec,
                    dtmf=dtmf_method(self.channel, user=binding.user),
                )
            except Exception:
                log.exception("sip: no RTP endpoint for the agent leg of %s", interaction.id)
                offered = None
            if offered is not None:
                leg.media_leg, body = offered
        if not body and call.media is not None:
            body = call.media.make_offer().serialize()
        if body:
            headers.add("Content-Type", "application/sdp")
        request = Request("INVITE", target, headers, body)
        leg.invite = request
        leg.client_txn = core.request(request, binding.peer, lambda r, t, leg=leg: self._agent_response(leg, r, t))
        return leg

    def _agent_response(self, leg: Leg, response: Response | None, txn: ClientTransaction) -> None:
        call = leg.call
        if response is None:
            if leg.state is LegState.RINGING:
                leg.state, leg.result = LegState.ENDED, "no-answer"
                leg.outcome.set()
            return
        status = response.status
        if status < 200:
            caller = call.caller
            if status in (180, 183) and caller is not None and caller.state is LegState.RINGING and caller.invite_txn is not None:
                if caller.invite_txn.final_status == 0:
                    if status == 183 and response.body and leg.media_leg is None:
                        # Early media (ringback, announcements) from the agent side goes to the caller.
                        self.core.respond(caller.invite_txn, 183, headers=[("Content-Type", "application/sdp")], body=response.body, to_tag=caller.invite_txn.to_tag)
                    else:
                        self.core.respond(caller.invite_txn, 180, to_tag=caller.invite_txn.to_tag)
            return
        if status < 300:
            if leg.dialog is None:
                leg.dialog = Dialog.from_uac(leg.invite, response, local_contact=leg.invite.headers.get("Contact"))  # type: ignore[arg-type]
                self._by_dialog[leg.dialog.id] = leg
            ack = leg.dialog.create_ack(via=self._via(leg))
            ack.headers.remove("Via")
            leg.last_ack = self._send_stateless(ack, leg)
            if leg.state is LegState.ENDED and leg.result != "answered":
                # Answered after we gave up on it (CANCEL crossed the 200): acknowledge, then hang up.
                leg.state = LegState.ANSWERED
                self._hangup_leg(leg)
                return
            if leg.state is LegState.RINGING:
                leg.remote_sdp = response.body
                if leg.media_leg is not None:
                    leg.media_leg.accept_answer(response.body)
                leg.state = LegState.ANSWERED
                leg.result = "answered"
                leg.outcome.set()
                if leg.ring_timer is not None:
                    leg.ring_timer.cancel()
            return
        if leg.state is LegState.RINGING:
            leg.state = LegState.ENDED
            leg.result = {486: "busy", 600: "busy", 603: "rejected", 480: "no-answer", 408: "no-answer", 487: "no-answer"}.get(status, "rejected")
            leg.outcome.set()

    def _connect(self, call: Call, agent_leg: Leg) -> None:
        caller = call.caller
        assert caller is not None
        if caller.state is LegState.RINGING and call.anchor is not None and agent_leg.media_leg is not None:
            # Anchored: the caller talks to our endpoint, the agent to another, and the media engine
            # bridges them (recording and music on hold become possible).
            self._answer_leg(caller, call.anchor_sdp)
            call.anchor.bridge(agent_leg.media_leg)
        elif caller.state is LegState.RINGING:
            self._answer_leg(caller, agent_leg.remote_sdp)
        elif call.anchor is not None and agent_leg.media_leg is not None:
            call.anchor.set_hold_music(None)
            ivr_playing = call.anchor.endpoint
            ivr_playing.play(None)
            call.anchor.bridge(agent_leg.media_leg)
        elif caller.state is LegState.ANSWERED and caller.dialog is not None and agent_leg.remote_sdp:
            # The engine had answered (IVR): point the caller's media at the agent with a re-INVITE.
            self._send_in_dialog(caller, "INVITE", body=agent_leg.remote_sdp, content_type="application/sdp")
        try:
            if call.interaction.state is not InteractionState.ACTIVE:
                call.interaction.transition(InteractionState.ACTIVE)
        except Exception:
            pass
        call.interaction.agent = agent_leg.agent
        call.interaction.attributes["agent_contact"] = str(agent_leg.peer)
        bridge = getattr(agent_leg.media_leg.endpoint, "bridge", None) if agent_leg.media_leg is not None else None
        recorder = getattr(self.engine, "recorder", None)
        if bridge is not None and recorder is not None:
            recorder.attach(call.interaction, bridge)  # records now if the queue (or someone) asked for it
        elif recorder is not None and recorder.wanted(call.interaction):
            log.warning("sip: %s cannot be recorded: its audio does not pass through the engine", call.interaction.id)

    def _recording_wanted(self, interaction: Interaction) -> bool:
        recorder = getattr(self.engine, "recorder", None)
        return recorder is not None and recorder.wanted(interaction)

    def _cancel_leg(self, leg: Leg) -> None:
        if leg.client_txn is not None:
            self.core.cancel(leg.client_txn)
        leg.state = LegState.ENDED
        if not leg.result:
            leg.result = "no-answer"
        leg.outcome.set()

    # --------------------------------------------------------------------------------- in-dialog requests

    def _leg_for(self, request: Request) -> Leg | None:
        dialog_id = dialog_id_for_incoming_request(request)
        return self._by_dialog.get(dialog_id) if dialog_id else None

    def _ack(self, request: Request, peer: Peer) -> None:
        leg = self._leg_for(request)
        if leg is not None and leg.dialog is not None:
            leg.dialog.receive_request(request)

    def _stray_response(self, response: Response, peer: Peer) -> None:
        # A retransmitted 2xx to our INVITE: our ACK was lost, send it again (RFC 3261 §13.2.2.4).
        for leg in self._by_dialog.values():
            if leg.dialog is not None and leg.dialog.call_id == response.call_id and leg.last_ack is not None:
                self.core.send(leg.last_ack, leg.peer)
                return

    def _bye(self, request: Request, txn: ServerTransaction) -> None:
        leg = self._leg_for(request)
        if leg is None:
            self.core.respond(txn, 481)
            return
        self.core.respond(txn, 200)
        self._leg_gone(leg, cause="caller" if leg.role == "caller" else "agent")

    def _leg_gone(self, leg: Leg, *, cause: str) -> None:
        if leg.state is LegState.ENDED:
            return
        leg.state = LegState.ENDED
        ivr = getattr(self.engine, "ivr", None)
        if ivr is not None and leg.call.interaction.state is InteractionState.IVR:
            ivr.caller_gone(leg.call.interaction)
        if leg.dialog is not None:
            self._by_dialog.pop(leg.dialog.id, None)
            leg.dialog.terminate()
        self._end_call(leg.call, cause=cause)

    def _reinvite(self, request: Request, txn: ServerTransaction) -> None:
        leg = self._leg_for(request)
        if leg is None or leg.dialog is None:
            self.core.respond(txn, 481)
            return
        error = leg.dialog.receive_request(request)
        if error:
            self.core.respond(txn, error)
            return
        if request.body:
            leg.remote_sdp = request.body
        other = leg.call.other(leg)
        contact = [("Contact", leg.dialog.local_contact or f"<{self.core.contact_uri(txn.peer.transport)}>")]
        anchored = leg.call.anchor if leg.role == "caller" else leg.media_leg
        if anchored is not None and request.body:
            # Our own endpoint faces this leg: hold/unhold is answered here; the bridge stays as it is.
            try:
                body = anchored.reanswer(request.body)
            except SdpNegotiationError as exc:
                self.core.respond(txn, 488, exc.reason)
                return
            self.core.respond(txn, 200, headers=[*contact, ("Content-Type", "application/sdp")], body=body)
            return
        if other is not None and other.dialog is not None and other.state is LegState.ANSWERED and request.body:
            # Hold/unhold and media changes pass through to the other side; its answer comes back.
            def relayed(response: Response | None, client: ClientTransaction, txn: ServerTransaction = txn, other: Leg = other) -> None:
                if response is None:
                    if txn.final_status == 0:
                        self.core.respond(txn, 408)
                    return
                if response.status < 200 or txn.final_status:
                    return
                if response.status < 300:
                    other.remote_sdp = response.body or other.remote_sdp
                    ack = other.dialog.create_ack(via=self._via(other))  # type: ignore[union-attr]
                    ack.headers.remove("Via")
                    other.last_ack = self._send_stateless(ack, other)
                    self.core.respond(txn, 200, headers=[*contact, ("Content-Type", "application/sdp")], body=response.body)
                else:
                    self.core.respond(txn, response.status, response.reason)

            self._send_in_dialog(other, "INVITE", body=request.body, content_type="application/sdp", on_response=relayed)
            return
        media = leg.call.media or MediaSession(self.core.local.get("udp", next(iter(self.core.local.values()))).host, self.channel.sink_port, session_id=session_id())
        leg.call.media = media
        try:
            answer, _ = media.answer(request.body) if request.body else (media.make_offer(), None)
        except SdpNegotiationError as exc:
            self.core.respond(txn, 488, exc.reason)
            return
        self.core.respond(txn, 200, headers=[*contact, ("Content-Type", "application/sdp")], body=answer.serialize())

    def _info(self, request: Request, txn: ServerTransaction) -> None:
        leg = self._leg_for(request)
        if leg is None:
            self.core.respond(txn, 481)
            return
        if request.media_type == "application/dtmf-relay":
            text = request.body[:512].decode("ascii", "replace")
            digit = _DTMF_SIGNAL.search(text)
            if digit is None:
                self.core.respond(txn, 400, "No Signal in dtmf-relay body")
                return
            duration = _DTMF_DURATION.search(text)
            duration_ms = int(duration.group(1)) if duration else 160
            self.core.respond(txn, 200)
            interaction = leg.call.interaction
            if leg.call.on_digit is not None:
                leg.call.on_digit(digit.group(1).upper())
            engine = self.engine
            if engine is not None:
                if hasattr(engine, "dtmf_received"):
                    engine.dtmf_received(interaction, digit.group(1).upper(), duration_ms)
                else:
                    engine.bus.publish("DTMFEnd", interaction=interaction.id, Digit=digit.group(1).upper(), DurationMs=duration_ms, Direction="Received")
            other = leg.call.other(leg)
            if other is not None and other.dialog is not None and other.state is LegState.ANSWERED:
                self._send_in_dialog(other, "INFO", body=request.body[:512], content_type="application/dtmf-relay")
            return
        self.core.respond(txn, 200)

    def _update(self, request: Request, txn: ServerTransaction) -> None:
        leg = self._leg_for(request)
        self.core.respond(txn, 481 if leg is None else 200)

    def _notify(self, request: Request, txn: ServerTransaction) -> None:
        leg = self._leg_for(request)
        self.core.respond(txn, 481 if leg is None else 200)

    def _refer(self, request: Request, txn: ServerTransaction) -> None:
        """Blind transfer from the agent's phone: the caller goes to the Refer-To target."""
        leg = self._leg_for(request)
        if leg is None:
            self.core.respond(txn, 481)
            return
        raw = request.headers.get("Refer-To")
        try:
            target = NameAddr.parse(raw or "").uri
        except SipPeerError:
            self.core.respond(txn, 400, "Bad Refer-To")
            return
        user = getattr(target, "user", None) or ""
        call = leg.call
        if leg.role != "agent" or call.caller is None or call.caller.state is not LegState.ANSWERED:
            self.core.respond(txn, 403, "Only the agent side can transfer an answered call")
            return
        bindings = self.channel.registrar.contacts(user)
        if not bindings:
            self.core.respond(txn, 404 if user not in self.channel.registrar.users else 480)
            return
        self.core.respond(txn, 202, headers=[("Refer-Sub", "false")] if "norefersub" in (request.headers.get("Require") or "") else [])
        interaction = call.interaction
        self._hangup_leg(leg)
        call.agents.remove(leg)
        interaction.attributes["transferred_to"] = user
        self.channel.spawn(self._transfer, call, user)

    async def _transfer(self, call: Call, user: str) -> None:
        bindings = self.channel.registrar.contacts(user)
        if not bindings or call.caller is None or call.caller.state is not LegState.ANSWERED:
            return
        legs = [self._ring(call, binding, call.interaction.agent or user) for binding in bindings]
        await self._wait_legs(legs)
        winner = next((leg for leg in legs if leg.result == "answered"), None)
        for leg in legs:
            if leg is not winner and leg.state is LegState.RINGING:
                self._cancel_leg(leg)
        if winner is None:
            self._hangup_leg(call.caller)
            self._end_call(call, cause="transfer-failed")
            return
        if call.anchor is not None and winner.media_leg is not None:
            # The caller's media ends on our endpoint (an IVR caller): bridge it to the new agent's.
            call.anchor.set_hold_music(None)
            call.anchor.endpoint.play(None)
            call.anchor.bridge(winner.media_leg)
            return
        # Point the caller's media at the new agent.
        self._send_in_dialog(call.caller, "INVITE", body=winner.remote_sdp, content_type="application/sdp")

    def _rtp_digit(self, call: Call, digit: str, duration_ms: int) -> None:
        if call.on_digit is not None:
            call.on_digit(digit)
        engine = self.engine
        if engine is not None and hasattr(engine, "dtmf_received") and call.interaction.id in self.calls:
            engine.dtmf_received(call.interaction, digit, duration_ms)

    async def play(self, interaction: Interaction, prompt: str | None) -> None:
        call = self.calls.get(interaction.id)
        if call is None or call.anchor is None:
            return
        await call.anchor.play(getattr(self.engine, "prompts", None), prompt)

    def can_play(self, interaction: Interaction) -> bool:
        call = self.calls.get(interaction.id)
        return call is not None and call.anchor is not None

    async def play_loaded(self, interaction: Interaction, loaded: Any) -> None:
        call = self.calls.get(interaction.id)
        if call is not None and call.anchor is not None:
            await call.anchor.play_loaded(loaded)

    def hold_music(self, interaction: Interaction, prompt: Any) -> bool:
        """Music on hold for an answered, anchored, not yet bridged caller (a queued IVR caller); a
        caller still ringing hears their own ringback instead."""
        call = self.calls.get(interaction.id)
        if call is None or call.anchor is None:
            return False
        if prompt is None:
            call.anchor.set_hold_music(None)
            return True
        if call.caller is None or call.caller.state is not LegState.ANSWERED or call.connected_agent is not None:
            return False
        call.anchor.set_hold_music(prompt.player(loop=True))
        return True

    async def record(self, interaction: Interaction, path: Any, *, max_seconds: float, silence_seconds: float) -> float:
        call = self.calls.get(interaction.id)
        if call is None or call.caller is None or call.caller.state is LegState.ENDED:
            return 0.0  # gone before the beep
        if call.anchor is None:
            raise NotImplementedError("the call's audio does not pass through the engine (no media framework)")
        call.anchor.set_hold_music(None)
        stop = trio.Event()

        def stop_key(digit: str) -> None:
            if digit == VOICEMAIL_STOP_KEY:
                stop.set()

        call.on_digit = stop_key
        try:
            return await call.anchor.record(path, max_seconds=max_seconds, silence_seconds=silence_seconds, stop=stop)
        finally:
            call.on_digit = None

    # -------------------------------------------------------------------------------------- hanging up

    def hangup(self, interaction: Interaction, cause: str = "normal") -> None:
        call = self.calls.get(interaction.id)
        if call is None:
            return
        for leg in [call.caller, *call.agents]:
            if leg is not None:
                self._hangup_leg(leg)
                if leg.dialog is not None:
                    self._by_dialog.pop(leg.dialog.id, None)
        self.calls.pop(interaction.id, None)
        self._release_media(call)
        self._end_linked(call)

    def _release_media(self, call: Call) -> None:
        recorder = getattr(self.engine, "recorder", None)
        if recorder is not None:
            recorder.detach(call.interaction)  # before the endpoints go: the file gets the last audio
        for media_leg in [call.anchor, *(leg.media_leg for leg in call.agents)]:
            if media_leg is not None:
                media_leg.release()
        call.anchor = None
        for leg in call.agents:
            leg.media_leg = None

    def _hangup_leg(self, leg: Leg) -> None:
        if leg.state is LegState.ENDED:
            return
        if leg.state is LegState.RINGING:
            if leg.role == "caller" and leg.invite_txn is not None and leg.invite_txn.final_status == 0:
                self.core.respond(leg.invite_txn, 480, to_tag=leg.invite_txn.to_tag)
            elif leg.role == "agent" or leg.outgoing:
                self._cancel_leg(leg)
            leg.state = LegState.ENDED
            return
        leg.state = LegState.ENDED
        if leg.dialog is not None:
            self._by_dialog.pop(leg.dialog.id, None)
            try:
                self._send_in_dialog(leg, "BYE")
            except Exception:
                log.exception("sip: could not send BYE")
            leg.dialog.terminate()

    def _end_call(self, call: Call, *, cause: str, disposition: Disposition | None = None) -> None:
        if self.calls.pop(call.interaction.id, None) is None:
            return
        for leg in [call.caller, *call.agents]:
            if leg is not None:
                self._hangup_leg(leg)
        self.stats["ended"] += 1
        self._release_media(call)
        engine = self.engine
        if engine is not None:
            self.channel.spawn(self._end_interaction, call.interaction, cause, disposition)
        self._end_linked(call)

    def _end_linked(self, call: Call) -> None:
        partner, call.linked = call.linked, None
        if partner is not None:
            partner.linked = None
            self._end_call(partner, cause="transfer-partner")

    def link(self, caller_call: Call, outside_call: Call) -> bool:
        """Bridge a transferred caller with the outside party the engine dialled for them. False when
        either call is no longer there or one of them is not anchored on the media engine."""
        if self.calls.get(caller_call.interaction.id) is not caller_call or self.calls.get(outside_call.interaction.id) is not outside_call:
            return False
        if caller_call.anchor is None or outside_call.anchor is None:
            return False
        caller_call.anchor.set_hold_music(None)
        caller_call.anchor.endpoint.play(None)
        caller_call.linked, outside_call.linked = outside_call, caller_call
        caller_call.anchor.bridge(outside_call.anchor)
        return True

    async def _end_interaction(self, interaction: Interaction, cause: str, disposition: Disposition | None) -> None:
        try:
            await self.engine.end_interaction(interaction, cause=cause, disposition=disposition)
        except Exception:
            log.exception("sip: ending interaction %s failed", interaction.id)

    # ------------------------------------------------------------------------------------------ helpers

    def _via(self, leg: Leg) -> str:
        local = self.core.local.get(leg.peer.transport) or next(iter(self.core.local.values()))
        return f"{leg.peer.transport.upper()} {local.host}:{local.port}"

    def _send_stateless(self, request: Request, leg: Leg) -> bytes:
        from ._core import new_branch

        request.headers.insert_first("Via", self.core.via_for(leg.peer, new_branch()))
        data = request.to_bytes()
        self.core.send(data, self._target_peer(leg))
        return data

    def _target_peer(self, leg: Leg) -> Peer:
        return leg.peer

    def _send_in_dialog(self, leg: Leg, method: str, *, body: bytes = b"", content_type: str | None = None, on_response: Any = None) -> None:
        assert leg.dialog is not None
        request = leg.dialog.create_request(method, via=self._via(leg), body=body, content_type=content_type)
        request.headers.remove("Via")

        def done(response: Response | None, txn: ClientTransaction, leg: Leg = leg) -> None:
            if response is not None and leg.dialog is not None:
                leg.dialog.receive_response(response, method)
                if method == "INVITE" and 200 <= response.status < 300 and on_response is None:
                    ack = leg.dialog.create_ack(via=self._via(leg))
                    ack.headers.remove("Via")
                    leg.last_ack = self._send_stateless(ack, leg)
            if on_response is not None:
                on_response(response, txn)

        self.core.request(request, self._target_peer(leg), done)


def _user_part(text: str) -> str:
    cleaned = "".join(c for c in text if c.isalnum() or c in "+-_.")
    return cleaned[:32] or "anonymous"
