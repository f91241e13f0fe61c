"""Registered phones calling outside numbers through an outbound trunk.

A digest-authenticated ``[[sip.users]]`` phone dials a number that is not ours: with ``[sip]
outbound_prefix`` set (e.g. ``"0"``), a destination starting with the prefix (stripped first); without
it, any destination no ``[[routes]]`` entry matches. Before anything reaches a trunk the number must pass,
in this order, ``engine.check_dial`` (strict ``+``/digits syntax and the ``centralita_allow_dial`` hook),
the user's own ``dial`` patterns and an outbound trunk's ``dial`` allowlist.
A refusal is a 403 to the phone and a ``dial_refused`` security event; the trunk never hears of it.
A user without ``dial`` patterns never calls out (an unknown number is a 404, as for any caller).

An allowed call is two calls bridged on the media engine, as an IVR transfer to an outside number is:

* the phone's call: an OUTBOUND interaction (``from`` the user, ``to`` the number: its CDR is the
  phone's call record), the phone's SDP answered by an RTP endpoint of ours. The phone hears 180 while
  the far end rings, and a 183 with our SDP (early media: the provider's ringback or announcements,
  relayed) as soon as the trunk sends early media. It is answered (200) only when the far end answers.
* the trunk leg: ``OutboundCalls.dial`` with its own interaction (attribute ``phone_call_of``), the
  user's ``caller_id`` as the presented number.

CANCEL from the phone cancels the ringing trunk leg; BYE from either side ends both (``Call.linked``).
A far end that does not answer passes its outcome to the phone: busy 486, no answer 480, invalid
number 404, provider trouble 503, anything else 502.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from engine import Direction, Disposition, InteractionKind, InteractionState
from engine._dialplan import matches
from engine._events import safe_text

from ._calls import Call, Leg, LegState
from ._core import ServerTransaction, new_tag
from ._media import MediaLeg
from ._trunks import DialRefused
from .sansio import Request, SdpNegotiationError

if TYPE_CHECKING:
    from ._calls import CallManager
    from ._channel import SipChannel

__all__ = ["PhoneOut"]

log = logging.getLogger("centralita.sip.phone_out")

#: the phone's final answer when the far end did not answer (DialResult outcome -> status)
_PHONE_STATUS = {"busy": 486, "no-answer": 480, "invalid": 404, "congestion": 503}
_DISPOSITION = {"busy": Disposition.BUSY, "no-answer": Disposition.NO_ANSWER, "congestion": Disposition.CONGESTION}


class PhoneOut:
    def __init__(self, channel: SipChannel, calls: CallManager) -> None:
        self.channel = channel
        self.calls = calls
        self.stats = {"placed": 0, "early_media": 0, "answered": 0, "refused": 0}
        #: phone interaction id -> the scope of its ringing trunk leg (the phone's CANCEL cancels it)
        self._ringing: dict[str, trio.CancelScope] = {}

    def number_for(self, user: str, destination: str) -> str | None:
        """The outside number ``user``'s phone means by ``destination``, or None when it is ours (a
        phone with no ``dial`` patterns never calls out: its unknown numbers stay 404, as before)."""
        settings = self.channel.registrar.users.get(user)
        if settings is None or not settings.dial:
            return None
        prefix = self.channel.settings.outbound_prefix
        if prefix:
            if destination.startswith(prefix) and len(destination) > len(prefix):
                return destination[len(prefix):]
            return None
        engine = self.calls.engine
        if destination in self.channel.registrar.users or engine.find_route(destination) is not None:
            return None
        return destination

    def place(self, request: Request, txn: ServerTransaction, user: str, number: str) -> None:
        """Check ``number`` for ``user`` and, when allowed, ring it through a trunk (answers ``txn``)."""
        channel = self.channel
        manager = self.calls
        engine = manager.engine
        settings = channel.registrar.users[user]
        try:
            number = engine.check_dial(number, caller=user, purpose="phone")
            if not any(matches(pattern, number) for pattern in settings.dial):
                raise DialRefused(f"{number} is not in {user}'s dial list")
            trunk = channel.trunks.outbound_trunk(number)
        except ValueError as exc:  # DialRefused is a ValueError too
            self.stats["refused"] += 1
            manager.core.respond(txn, 403, "Number not allowed")
            channel.security_event("dial_refused", txn.peer, username=user, detail=safe_text(str(exc), 120))
            return
        if not request.body:
            manager.core.respond(txn, 488, "An SDP offer is required")
            return
        try:
            interaction = engine.new_interaction(
                InteractionKind.VOICE,
                Direction.OUTBOUND,
                from_=user,
                to=number,
                channel=channel.name,
                caller_name=(settings.display_name or request.from_.display_name or "")[:64],
                attributes={"sip_call_id": (request.call_id or "")[:128], "sip_user": user, "trunk": trunk.name},
            )
        except RuntimeError:
            manager.core.respond(txn, 503, headers=[("Retry-After", "5")])
            return
        manager.stats["inbound"] += 1
        call = Call(interaction)
        leg = Leg(call, "caller", txn.peer, invite_txn=txn, remote_sdp=request.body)
        call.caller = leg
        manager.calls[interaction.id] = call
        txn.to_tag = new_tag()
        txn.on_cancel = lambda t, leg=leg: self._phone_cancelled(leg)
        try:
            anchored = MediaLeg.answer(
                channel, request.body, name=f"sip-{interaction.id}",
                on_digit=lambda digit, ms, call=call: manager._rtp_digit(call, digit, ms),
            )
        except SdpNegotiationError as exc:
            manager._refuse_caller(leg, 488, cause="incompatible-media", disposition=Disposition.FAILED, reason=exc.reason)
            return
        if anchored is None:
            manager._refuse_caller(leg, 503, cause="no-media", disposition=Disposition.FAILED, reason="No media engine")
            return
        call.anchor, call.anchor_sdp = anchored
        manager.core.respond(txn, 180, to_tag=txn.to_tag)
        self.stats["placed"] += 1
        caller_id = settings.caller_id or user
        channel.spawn(self._dial, call, number, trunk.name, caller_id)

    def _phone_cancelled(self, leg: Leg) -> None:
        scope = self._ringing.pop(leg.call.interaction.id, None)
        if scope is not None:
            scope.cancel()  # the trunk leg's INVITE is CANCELled by OutboundCalls.dial
        self.calls._caller_cancelled(leg)

    async def _dial(self, call: Call, number: str, trunk_name: str, caller_id: str) -> None:
        channel = self.channel
        manager = self.calls
        engine = manager.engine
        interaction = call.interaction
        leg = call.caller
        assert leg is not None
        outside = engine.new_interaction(
            InteractionKind.VOICE, Direction.OUTBOUND, from_=caller_id, to=number, channel=channel.name,
            caller_name=interaction.caller_name, attributes={"phone_call_of": interaction.id, "trunk": trunk_name},
        )
        early = channel.outbound.on_early_media
        early[outside.id] = lambda: self._early_media(call, outside.id)
        scope = trio.CancelScope()
        self._ringing[interaction.id] = scope
        result = None
        try:
            with scope:
                result = await channel.outbound.dial(
                    outside, number, caller_id=caller_id, ring_timeout=channel.settings.timers.ring_timeout, trunk=trunk_name
                )
        except BaseException:
            manager.hangup(outside)
            with trio.CancelScope(shield=True):
                await engine.end_interaction(outside, cause="shutdown")
            raise
        finally:
            early.pop(outside.id, None)
            self._ringing.pop(interaction.id, None)
        if result is None:  # the phone hung up while the number rang
            manager.hangup(outside)
            await engine.end_interaction(outside, cause="caller-cancel", disposition=Disposition.NO_ANSWER)
            return
        if result.outcome != "answered":
            disposition = _DISPOSITION.get(result.outcome, Disposition.FAILED)
            await engine.end_interaction(outside, cause=result.outcome, disposition=disposition)
            if leg.state is LegState.RINGING:
                manager._refuse_caller(leg, _PHONE_STATUS.get(result.outcome, 502), cause=result.outcome, disposition=disposition)
            return
        if outside.state is not InteractionState.ACTIVE:
            outside.transition(InteractionState.ACTIVE)
        outside_call = manager.calls.get(outside.id)
        if outside_call is None or not self._connect(call, outside_call):
            manager.hangup(outside)
            await engine.end_interaction(outside, cause="caller-gone")
            return
        self.stats["answered"] += 1
        if interaction.state is not InteractionState.ACTIVE:
            interaction.transition(InteractionState.ACTIVE)
        log.info("sip: %s (%s) connected to %s through %s (%s)", interaction.id, interaction.from_, number, trunk_name, outside.id)

    def _early_media(self, call: Call, outside_id: str) -> None:
        """The trunk sent early media: relay it to the still-ringing phone (183 with our SDP)."""
        leg = call.caller
        outside_call = self.calls.calls.get(outside_id)
        if leg is None or leg.state is not LegState.RINGING or leg.invite_txn is None or outside_call is None:
            return
        if call.anchor is None or outside_call.anchor is None or call.anchor.endpoint.bridge is not None:
            return
        call.anchor.bridge(outside_call.anchor)
        txn = leg.invite_txn
        contact = f"<{self.calls.core.contact_uri(txn.peer.transport)}>"
        self.calls.core.respond(
            txn, 183, headers=[("Contact", contact), ("Content-Type", "application/sdp")], body=call.anchor_sdp, to_tag=txn.to_tag
        )
        self.stats["early_media"] += 1

    def _connect(self, call: Call, outside_call: Call) -> bool:
        """The far end answered: answer the phone and keep the two calls bridged and linked."""
        manager = self.calls
        if manager.calls.get(call.interaction.id) is not call or call.anchor is None or outside_call.anchor is None:
            return False
        if call.caller is None or call.caller.state is not LegState.RINGING:
            return False
        if call.anchor.endpoint.bridge is None:
            call.anchor.bridge(outside_call.anchor)
        call.linked, outside_call.linked = outside_call, call
        # False: the phone's call was refused (488...) and its _end_call ended the linked trunk leg too
        return manager.answer_caller(call)

    def statistics(self) -> dict[str, Any]:
        return dict(self.stats)
