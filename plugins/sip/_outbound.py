"""Outbound calls: the engine calls a customer (dialer campaigns, queued callbacks) and then an agent.

:meth:`OutboundCalls.dial` places the customer leg: a registered ``[[sip.users]]`` user is rung on
every contact it registered (the first to answer wins, the others are cancelled); any other number goes
out through an outbound trunk (``TrunkManager.outbound_trunk``), answering the provider's 401/407 digest
challenge once per attempt with the trunk's credentials. The leg is anchored on the engine's media
framework when it runs: our SDP offer points at an RTP endpoint of ours, so early media (183), the
answered call's audio and its RFC 4733 digits all arrive there, for answering-machine detection, prompts
and, once an agent answers, the bridge. Without a media framework the offer points at the channel's
quiet sink port and the agent's SDP is later passed to the customer with a re-INVITE.

Final responses map to :class:`engine.abc.DialResult` outcomes (the same table as the dialer's
``outcome_from_sip``):

=====================================  ==========================================================
response                               outcome
=====================================  ==========================================================
2xx                                    answered (the call stays up, owned by the channel)
486, 600                               busy
408, 480, 487, ring timeout (CANCEL)   no-answer
404, 410, 484, 485, 604                invalid
500-599                                congestion
no response at all, anything else      failed (403, 488, 603, unanswerable 401/407...)
=====================================  ==========================================================

A failed attempt is forgotten by the channel; ending its interaction (and its CDR) is the caller's
business, as :meth:`engine.abc.VoiceChannel.dial` says. An answered call ends like an inbound one: a BYE
from either side ends every leg and the interaction, with a CDR.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from engine import Direction, Disposition, Interaction, InteractionKind, InteractionState
from engine._events import safe_text
from engine.abc import DialResult

from ._auth import answer_challenge
from ._calls import Call, CallManager, Leg, LegState
from ._core import ClientTransaction, new_tag
from ._media import MediaLeg, dtmf_method, session_id
from ._registrar import endpoint_user
from ._transport import Peer
from ._trunks import DialRefused, Trunk, check_dial_string
from .sansio import (
    Dialog,
    Headers,
    MediaSession,
    Request,
    Response,
    SdpNegotiationError,
    SipPeerError,
    SipUri,
)

if TYPE_CHECKING:
    from ._channel import SipChannel

__all__ = ["OutboundCalls", "outcome_for_status"]

log = logging.getLogger("centralita.sip.outbound")

_OUTCOMES = {
    486: "busy", 600: "busy",
    408: "no-answer", 480: "no-answer", 487: "no-answer",
    404: "invalid", 410: "invalid", 484: "invalid", 485: "invalid", 604: "invalid",
}

#: when forked legs fail differently, the outcome reported is the first of these that occurred
_PREFERENCE = ("busy", "no-answer", "invalid", "congestion", "failed")

_ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, UPDATE, NOTIFY"


def outcome_for_status(status: int) -> str:
    """The ``DialResult.outcome`` of a final response to our INVITE."""
    if 200 <= status < 300:
        return "answered"
    if status in _OUTCOMES:
        return _OUTCOMES[status]
    if 500 <= status < 600:
        return "congestion"
    return "failed"


def _caller_id_user(caller_id: str) -> str | None:
    """A caller ID fit for a From user part: ``+`` and digits only (it is never copied unchecked)."""
    try:
        return check_dial_string(caller_id.strip())
    except DialRefused:
        return None


class _Attempt:
    """What one dialled leg needs beyond :class:`Leg`: how to re-send its INVITE with credentials."""

    def __init__(self, trunk: Trunk | None) -> None:
        self.trunk = trunk
        self.authenticated = False
        self.status: int | None = None


class OutboundCalls:
    """``SipChannel.dial`` and ``SipChannel.connect_agent``, on top of the channel's B2BUA."""

    def __init__(self, channel: SipChannel, calls: CallManager) -> None:
        self.channel = channel
        self.calls = calls
        self.core = channel.core
        self.stats = {"dialed": 0, "dial_answered": 0, "agents_connected": 0}
        self._attempts: dict[int, _Attempt] = {}  # id(leg) -> attempt, while the leg rings
        #: interaction id -> told when that dial's first early media (183 with SDP) is taken (a phone
        #: calling out through a trunk relays it to the phone)
        self.on_early_media: dict[str, Any] = {}

    def statistics(self) -> dict[str, int]:
        return dict(self.stats)

    # ------------------------------------------------------------------------------------------- dial

    async def dial(
        self, interaction: Interaction, number: str, *, caller_id: str, ring_timeout: float, trunk: str | None = None
    ) -> DialResult:
        manager = self.calls
        try:
            targets = self._targets(number, trunk)
        except DialRefused as exc:
            log.warning("sip: not dialing for %s: %s", interaction.id, exc)
            return DialResult("failed")
        if not targets:
            log.info("sip: %s: SIP user %s has no reachable contact", interaction.id, number)
            return DialResult("no-answer", status=480)
        self.stats["dialed"] += 1
        call = Call(interaction)
        manager.calls[interaction.id] = call
        _, _, to_user, via_trunk = targets[0]  # every target is the same SIP user, or one trunk
        offer = self._offer(call, dtmf_method(self.channel, user=to_user or None, trunk=via_trunk.name if via_trunk else None))
        call_id = f"{new_tag()}{new_tag()}@centralita"
        interaction.attributes["sip_call_id"] = call_id
        legs: list[Leg] = []
        try:
            for peer, uri, to_user, via_trunk in targets:
                legs.append(self._invite(call, peer, uri, to_user, via_trunk, offer, caller_id, call_id))
            await manager._wait_legs(legs, timeout=ring_timeout)
        except BaseException:
            for leg in legs:
                manager._hangup_leg(leg)
                self._attempts.pop(id(leg), None)
            self._forget(call)
            raise
        winner = next((leg for leg in legs if leg.result == "answered"), None)
        for leg in legs:
            if leg is not winner:
                manager._hangup_leg(leg)  # still ringing at the ring timeout: CANCEL (result no-answer)
        attempts = [self._attempts.pop(id(leg), None) for leg in legs]
        if winner is None or call.caller is not winner or manager.calls.get(interaction.id) is not call:
            self._forget(call)
            results = [leg.result or "no-answer" for leg in legs]
            outcome = next((o for o in _PREFERENCE if o in results), "failed")
            status = next((a.status for a, leg in zip(attempts, legs) if a is not None and leg.result == outcome), None)
            log.info("sip: %s to %s: %s (%s)", interaction.id, number, outcome, status or "no final response")
            return DialResult(outcome, status=status)
        self.stats["dial_answered"] += 1
        if interaction.answered is None:
            interaction.answered = time.time()
        return DialResult("answered", status=200)

    def _targets(self, number: str, trunk_name: str | None = None) -> list[tuple[Peer, str, str, Trunk | None]]:
        """Where the INVITE(s) go: (peer, Request-URI, To user, trunk). Raises DialRefused."""
        check_dial_string(number)  # the engine checked it already; a Request-URI is never built from less
        registrar = self.channel.registrar
        if number in registrar.users:
            out = []
            for binding in registrar.contacts(number):
                try:
                    SipUri.parse(binding.contact)
                except SipPeerError:
                    continue
                out.append((binding.peer, binding.contact, number, None))
            return out
        trunk = self.channel.trunks.outbound_trunk(number, trunk_name)
        return [(trunk.peer, self.channel.trunks.request_uri(trunk, number), "", trunk)]

    def _offer(self, call: Call, dtmf: str = "auto") -> bytes:
        """Our SDP offer: an RTP endpoint of the engine's media framework, or the quiet sink port."""
        manager = self.calls
        interaction = call.interaction
        try:
            anchored = MediaLeg.offer(
                self.channel,
                name=f"sip-{interaction.id}",
                on_digit=lambda digit, ms, call=call: manager._rtp_digit(call, digit, ms),
                dtmf=dtmf,
            )
        except Exception:
            log.exception("sip: no RTP endpoint for the outbound call %s; media passes through", interaction.id)
            anchored = None
        if anchored is not None:
            call.anchor, sdp = anchored
            return sdp
        local = self.core.local.get("udp", next(iter(self.core.local.values())))
        call.media = MediaSession(local.host, self.channel.sink_port, session_id=session_id())
        return call.media.make_offer().serialize()

    def _invite(
        self, call: Call, peer: Peer, uri: str, to_user: str, trunk: Trunk | None, sdp: bytes, caller_id: str, call_id: str
    ) -> Leg:
        core = self.core
        leg = Leg(call, "caller", peer, outgoing=True)
        attempt = _Attempt(trunk)
        self._attempts[id(leg)] = attempt
        local = core.local.get(peer.transport, next(iter(core.local.values())))
        shown = _caller_id_user(caller_id)
        headers = Headers()
        if trunk is not None:
            host = trunk.uri.host
            from_user = shown or trunk.settings.from_user or trunk.settings.username or "anonymous"
            headers.add("From", f"<sip:{from_user}@{host}>;tag={new_tag()}")
            headers.add("To", f"<{uri}>")
            if shown:
                # Providers take the presented number from here (RFC 3325) when From carries the account.
                headers.add("P-Asserted-Identity", f"<sip:{shown}@{host}>")
        else:
            headers.add("From", f"<sip:{shown or 'centralita'}@{local.host}>;tag={new_tag()}")
            headers.add("To", f"<sip:{to_user}@{local.host}>")
        headers.add("Call-ID", call_id)
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", f"<{core.contact_uri(peer.transport)}>")
        headers.add("Allow", _ALLOW)
        headers.add("Content-Type", "application/sdp")
        if trunk is None:
            headers.add("X-Centralita-Interaction", call.interaction.id)  # our own phones only, not a provider
        request = Request("INVITE", uri, headers, sdp)
        leg.invite = request
        try:
            leg.client_txn = core.request(request, peer, lambda r, t, leg=leg: self._response(leg, r, t))
        except BaseException:
            del self._attempts[id(leg)]
            raise
        return leg

    def _reinvite_with_credentials(self, leg: Leg, attempt: _Attempt, response: Response) -> bool:
        """Answer a 401/407 from the trunk: the same INVITE, CSeq + 1, with our credentials."""
        trunk = attempt.trunk
        if trunk is None or attempt.authenticated or leg.invite is None or not trunk.settings.username:
            return False
        status = response.status
        name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
        old = leg.invite
        for challenge in response.headers.get_all(name):
            value = answer_challenge(challenge, "INVITE", str(old.uri), trunk.settings.username, trunk.settings.password)
            if value is None:
                continue
            headers = Headers()
            for header in ("From", "To", "Call-ID", "Contact", "Allow", "P-Asserted-Identity", "Content-Type", "X-Centralita-Interaction"):
                for item in old.headers.get_all(header):
                    headers.add(header, item)
            headers.add("CSeq", f"{old.cseq[0] + 1} INVITE")
            headers.add("Authorization" if status == 401 else "Proxy-Authorization", value)
            request = Request("INVITE", str(old.uri), headers, old.body)
            attempt.authenticated = True
            leg.invite = request
            leg.client_txn = None
            # Sent once this response has been fully handled (its ACK goes out first), whatever order
            # the transaction layer delivers and acknowledges in.
            if self.channel.nursery is not None:
                self.channel.spawn(self._send_reinvite, leg, request)
            else:
                self._send_reinvite_now(leg, request)
            return True
        return False

    async def _send_reinvite(self, leg: Leg, request: Request) -> None:
        self._send_reinvite_now(leg, request)

    def _send_reinvite_now(self, leg: Leg, request: Request) -> None:
        if leg.state is not LegState.RINGING or leg.invite is not request:
            return  # hung up (or timed out) meanwhile
        leg.client_txn = self.core.request(request, leg.peer, lambda r, t, leg=leg: self._response(leg, r, t))

    def _response(self, leg: Leg, response: Response | None, txn: ClientTransaction) -> None:
        if txn is not leg.client_txn:
            log.debug("sip: %s: a response to a superseded INVITE", leg.call.interaction.id)
            return  # the challenged first INVITE's transaction: superseded
        attempt = self._attempts.get(id(leg))
        log.debug("sip: %s: %s to our INVITE", leg.call.interaction.id, response.status if response else "no answer")
        if response is None:
            if leg.state is LegState.RINGING:
                leg.state, leg.result = LegState.ENDED, "failed"
                leg.outcome.set()
            return
        status = response.status
        if status < 200:
            if status == 183 and response.body and leg.state is LegState.RINGING:
                self._early_media(leg, response.body)
            return
        if status < 300:
            self._answered(leg, response)
            return
        if (
            status in (401, 407)
            and attempt is not None
            and leg.state is LegState.RINGING
            and self._reinvite_with_credentials(leg, attempt, response)
        ):
            return
        if attempt is not None:
            attempt.status = status
        if leg.state is LegState.RINGING:
            leg.state = LegState.ENDED
            leg.result = outcome_for_status(status)
            leg.outcome.set()

    def _early_media(self, leg: Leg, body: bytes) -> None:
        """183 with SDP: the customer's early media (ringback, announcements, a machine) reaches our
        endpoint from now on. Only the first early answer is taken when several contacts ring."""
        call = leg.call
        if call.interaction.attributes.get("early_media"):
            return
        if call.anchor is not None:
            if not call.anchor.accept_answer(body):
                return
        elif call.media is not None:
            try:
                call.media.accept_answer(body)
            except SdpNegotiationError:
                return
        leg.remote_sdp = body
        call.interaction.attributes["early_media"] = True
        listener = self.on_early_media.get(call.interaction.id)
        if listener is not None:
            listener()

    def _answered(self, leg: Leg, response: Response) -> None:
        manager = self.calls
        call = leg.call
        if leg.dialog is None:
            assert leg.invite is not None
            try:
                leg.dialog = Dialog.from_uac(leg.invite, response, local_contact=leg.invite.headers.get("Contact"))
            except SipPeerError as exc:
                # A 2xx we cannot build a dialog from (no To tag...): no way to ACK or hang it up properly.
                log.warning("sip: %s: unusable 2xx: %s", call.interaction.id, safe_text(exc))
                if leg.state is LegState.RINGING:
                    leg.state, leg.result = LegState.ENDED, "failed"
                    leg.outcome.set()
                return
            manager._by_dialog[leg.dialog.id] = leg
        ack = leg.dialog.create_ack(via=manager._via(leg))
        ack.headers.remove("Via")
        leg.last_ack = manager._send_stateless(ack, leg)
        if leg.state is not LegState.RINGING or call.caller is not None or manager.calls.get(call.interaction.id) is not call:
            if leg.state is LegState.ANSWERED:
                return  # a retransmitted 2xx: the ACK above was all it needed
            # Answered after we gave up on it (a CANCEL crossed the 200) or another contact won.
            leg.state = LegState.ANSWERED
            manager._hangup_leg(leg)
            return
        body = response.body or leg.remote_sdp
        if not self._accept_final_answer(call, leg, body):
            leg.state = LegState.ANSWERED
            manager._hangup_leg(leg)
            leg.result = "failed"
            leg.outcome.set()
            return
        leg.remote_sdp = body
        leg.state = LegState.ANSWERED
        leg.result = "answered"
        call.caller = leg
        leg.outcome.set()

    def _accept_final_answer(self, call: Call, leg: Leg, body: bytes) -> bool:
        if not body:
            return False
        early = leg.remote_sdp if call.interaction.attributes.get("early_media") else b""
        if body == early:
            return True  # the 200 repeats the 183's answer: nothing changes
        session = call.anchor.session if call.anchor is not None else call.media
        if session is None:
            return False
        if early:
            # The early answer came from another fork (or changed): take this one against the same codecs.
            session.make_offer()
        if call.anchor is not None:
            return call.anchor.accept_answer(body)
        try:
            session.accept_answer(body)
        except SdpNegotiationError as exc:
            log.warning("sip: unusable SDP answer from %s: %s", call.interaction.to, safe_text(exc.reason))
            return False
        return True

    def _forget(self, call: Call) -> None:
        """A dial attempt that did not connect: drop the call without ending the interaction."""
        manager = self.calls
        if manager.calls.get(call.interaction.id) is call:
            del manager.calls[call.interaction.id]
        manager._release_media(call)
        call.media = None

    # ------------------------------------------------------------------------------------ originate

    async def originate(self, body: dict[str, Any]) -> Interaction:
        """``POST /api/v1/calls``: ``{"to": number or SIP user, "from": caller ID, "trunk": name}``.

        Refusals (an unregistered user, a number the dial checks or the trunks refuse) raise ValueError
        at once; otherwise the interaction is returned while the call rings, becomes active when answered
        and ends (with a CDR) when either side hangs up or the attempt fails."""
        to = str(body.get("to", ""))
        purpose = str(body.get("purpose", "agent"))
        caller = str(body.get("from", "") or body.get("caller", ""))
        trunk = body.get("trunk") if isinstance(body.get("trunk"), str) else None
        engine = self.calls.engine
        registrar = self.channel.registrar
        if to in registrar.users:
            if not registrar.contacts(to):
                raise ValueError(f"SIP user {to} is not registered")
        else:
            try:
                check_dial_string(to)
                check = getattr(engine, "check_dial", None)
                if check is not None:
                    # The engine's own check: the same syntax plus the centralita_allow_dial hook.
                    try:
                        to = check(to, caller=caller, purpose=purpose)
                    except ValueError as exc:
                        raise DialRefused(str(exc)) from None
                self.channel.trunks.outbound_trunk(to, trunk)
            except DialRefused as exc:
                raise ValueError(str(exc)) from None
        interaction = engine.new_interaction(
            InteractionKind.VOICE, Direction.OUTBOUND, from_=caller or "centralita", to=to, channel=self.channel.name
        )
        self.channel.spawn(self._originated, interaction, to, caller, trunk)
        return interaction

    async def _originated(self, interaction: Interaction, to: str, caller: str, trunk: str | None) -> None:
        ring_timeout = self.channel.settings.timers.ring_timeout
        result = await self.dial(interaction, to, caller_id=caller, ring_timeout=ring_timeout, trunk=trunk)
        if result.outcome == "answered":
            if interaction.state is not InteractionState.ACTIVE:
                interaction.transition(InteractionState.ACTIVE)
            return
        disposition = {"busy": Disposition.BUSY, "no-answer": Disposition.NO_ANSWER,
                       "congestion": Disposition.CONGESTION}.get(result.outcome, Disposition.FAILED)
        await self.calls._end_interaction(interaction, result.outcome, disposition)

    # -------------------------------------------------------------------------------- connect_agent

    async def connect_agent(self, interaction: Interaction, agent: str, endpoint: str) -> bool:
        """Ring ``agent``'s phone and bridge it to the answered customer; False leaves the customer up."""
        manager = self.calls
        call = manager.calls.get(interaction.id)
        if call is None or call.caller is None or call.caller.state is not LegState.ANSWERED:
            return False
        user = endpoint_user(endpoint)
        bindings = self.channel.registrar.contacts(user) if user else []
        if not bindings:
            log.info("sip: %s: agent %s's phone (%s) is not registered", interaction.id, agent, safe_text(endpoint, 60))
            return False
        legs = [manager._ring(call, binding, agent, shown_caller=interaction.to) for binding in bindings]
        try:
            await manager._wait_legs(legs)
        except BaseException:
            for leg in legs:
                manager._hangup_leg(leg)
            self._drop_agent_legs(call, legs, keep=None)
            raise
        winner = next((leg for leg in legs if leg.result == "answered"), None)
        if winner is not None and (call.caller is None or call.caller.state is not LegState.ANSWERED):
            winner = None  # the customer hung up while the agent's phone rang
        self._drop_agent_legs(call, legs, keep=winner)
        if winner is None:
            return False
        manager._connect(call, winner)
        self.stats["agents_connected"] += 1
        return True

    def _drop_agent_legs(self, call: Call, legs: list[Leg], *, keep: Leg | None) -> None:
        manager = self.calls
        for leg in legs:
            if leg is keep:
                continue
            manager._hangup_leg(leg)
            if leg.media_leg is not None:
                leg.media_leg.release()
                leg.media_leg = None
            if leg in call.agents:
                call.agents.remove(leg)

    # ------------------------------------------------------------------------------------------ media

    def media_of(self, interaction: Interaction) -> Any:
        """The engine's RTP endpoint facing the customer (or an IVR caller): from the first early-media
        packet on. Detectors attach to ``endpoint.sinks``; ``endpoint.vad`` has the levels."""
        call = self.calls.calls.get(interaction.id)
        return call.anchor.endpoint if call is not None and call.anchor is not None else None
