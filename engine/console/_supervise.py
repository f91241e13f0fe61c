"""Listen, whisper and barge: a supervisor joins a live call through their own phone.

The engine rings the supervisor's endpoint through the call's voice channel, then moves the caller,
the agent and the supervisor into one conference room of the media framework
(``engine.media.ConferenceRoom``), whose mixer decides who hears whom: ``listen`` hears both and is
heard by nobody, ``whisper`` is heard by the agent only, ``barge`` is heard by everyone. Switching
mode on the same call changes the supervisor's role in place (no new ring). When the supervisor leaves
(API, or their phone hangs up) the caller and the agent are bridged again; when the call ends the
supervisor's leg is dropped.

What a voice channel implements for this (duck-typed; a channel without it answers 409):

``media_legs(interaction) -> (caller_leg, agent_leg) | None``
    the two ``RtpEndpoint`` of an anchored call (media through the engine), or None. Optional: without
    it the engine takes ``media_of(interaction)`` (``VoiceChannel``: the caller's endpoint) and the other
    leg of the bridge that endpoint is in, which is what an anchored SIP call has.
``async call_supervisor(interaction, endpoint, *, ring_timeout) -> RtpEndpoint | None``
    ring ``endpoint``; the answered leg, or None (no answer, busy, unknown).
``drop_supervisor(interaction, leg) -> None``
    hang the supervisor's leg up (the channel sends BYE in its own time).

Without those two, a channel that can place calls (``VoiceChannel.dial``) and shows their media
(``media_of``) is used as it is: the supervisor's phone is dialed as an outbound interaction of its
own (``attributes["supervising"]`` names the call; it has its own CDR), and hung up through the
channel's ``hangup``. That is how SIP supervision works today.

Known limit: moving the call into a conference stops a recording of its bridge (logged).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .._events import safe_text
from ._http import HttpError

log = logging.getLogger("centralita.console.supervise")

MODES = ("listen", "whisper", "barge")
DEFAULT_RING_TIMEOUT = 30.0


@dataclass
class SupervisedCall:
    interaction: str
    supervisor: str
    endpoint: str
    mode: str
    channel: Any
    caller_leg: Any = None
    agent_leg: Any = None
    supervisor_leg: Any = None
    room: Any = None
    ringing: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"interaction": self.interaction, "supervisor": self.supervisor, "endpoint": self.endpoint,
                "mode": self.mode, "state": "ringing" if self.ringing else "joined"}


class Supervision:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.calls: dict[str, SupervisedCall] = {}
        bus = getattr(engine, "bus", None)
        if bus is not None:
            bus.add_listener(self._on_event)

    # ------------------------------------------------------------------------------------ API

    def state(self, interaction_id: str) -> dict[str, Any] | None:
        call = self._live(interaction_id)
        return call.to_json() if call else None

    async def start(self, interaction_id: str, mode: str, supervisor: str, endpoint: str, *,
                    ring_timeout: float = DEFAULT_RING_TIMEOUT) -> dict[str, Any]:
        if mode not in MODES:
            raise HttpError(404, f"unknown mode {safe_text(mode, 20)!r}; one of {', '.join(MODES)}")
        find = getattr(self.engine, "find_interaction", None)
        media = getattr(self.engine, "media", None)
        if find is None or media is None:
            raise HttpError(501, "this engine has no media framework to supervise calls with")
        item = find(interaction_id)
        current = self._live(interaction_id)
        if current is not None:
            if current.supervisor != supervisor:
                raise HttpError(409, f"{current.supervisor} is already supervising this call")
            if current.ringing:
                raise HttpError(409, "your phone is still ringing for this call")
            self._set_mode(current, mode)
            return current.to_json()
        if item.kind.value != "voice" or item.state.value != "active" or not item.agent:
            raise HttpError(409, "only an answered voice call with an agent can be supervised")
        channel = (getattr(self.engine, "channels", None) or {}).get(item.channel)
        ring = getattr(channel, "call_supervisor", None)
        drop = getattr(channel, "drop_supervisor", None)
        if ring is None and _can_dial(channel):
            dialed = DialedSupervisor(self.engine, channel, supervisor)
            ring, drop = dialed.ring, dialed.drop
        pair = _legs_of(channel, item)
        if pair is None or ring is None:
            raise HttpError(409, f"the media of this call does not pass through the engine (channel {item.channel!r}); "
                                 "with SIP, set [sip] anchor_media = true")
        if not isinstance(endpoint, str) or not endpoint or len(endpoint) > 128 or \
                getattr(self.engine, "voice_channel_for", lambda e: None)(endpoint) is not channel:
            raise HttpError(400, f"'endpoint' must be a phone on the call's channel ({item.channel}), "
                                 f"got {safe_text(endpoint, 60)!r}")
        call = SupervisedCall(interaction_id, supervisor, endpoint, mode, channel, pair[0], pair[1])
        call.extra["drop"] = drop
        self.calls[interaction_id] = call
        try:
            leg = await ring(item, endpoint, ring_timeout=ring_timeout)
        except BaseException:
            self.calls.pop(interaction_id, None)
            raise
        if leg is None:
            self.calls.pop(interaction_id, None)
            raise HttpError(409, f"{safe_text(endpoint, 60)} did not answer")
        if item.state.value != "active" or call.caller_leg.closed or call.agent_leg.closed or \
                self.calls.get(interaction_id) is not call:
            self.calls.pop(interaction_id, None)
            call.extra["drop"](item, leg)
            raise HttpError(409, "the call ended while the supervisor's phone was ringing")
        if call.caller_leg.bridge is not None and call.caller_leg.bridge.recording is not None:
            log.warning("supervising %s stops its recording (the bridge becomes a conference)", interaction_id)
        call.supervisor_leg = leg
        call.room = media.conference()
        call.room.join_endpoint("caller", call.caller_leg)
        call.room.join_endpoint("agent", call.agent_leg)
        call.room.join_endpoint("supervisor", leg, mode,
                                whisper_to="agent" if mode == "whisper" else None)
        call.ringing = False
        self.engine.bus.publish("SupervisorJoined", interaction=interaction_id, Supervisor=supervisor, Mode=mode,
                                Endpoint=endpoint, Agent=item.agent)
        return call.to_json()

    def stop(self, interaction_id: str, *, reason: str = "api") -> bool:
        """The supervisor leaves: their leg is dropped, caller and agent are bridged again."""
        call = self.calls.pop(interaction_id, None)
        if call is None or call.ringing:
            if call is not None:
                self.calls[interaction_id] = call  # still ringing: the ring's own outcome decides
            return False
        self._teardown(call, rebridge=True)
        self.engine.bus.publish("SupervisorLeft", interaction=interaction_id, Supervisor=call.supervisor, Cause=reason)
        return True

    # ------------------------------------------------------------------------------------ internals

    def _live(self, interaction_id: str) -> SupervisedCall | None:
        call = self.calls.get(interaction_id)
        if call is not None and not call.ringing and call.supervisor_leg is not None and call.supervisor_leg.closed:
            self.stop(interaction_id, reason="supervisor-hangup")  # their phone hung up on its own
            return None
        return call

    def _set_mode(self, call: SupervisedCall, mode: str) -> None:
        call.room.set_role("supervisor", mode, whisper_to="agent" if mode == "whisper" else None)
        call.mode = mode
        self.engine.bus.publish("SupervisorJoined", interaction=call.interaction, Supervisor=call.supervisor,
                                Mode=mode, Endpoint=call.endpoint)

    def _teardown(self, call: SupervisedCall, *, rebridge: bool) -> None:
        if call.room is not None:
            call.room.close()
        if call.supervisor_leg is not None and not call.supervisor_leg.closed:
            try:
                item = self.engine.find_interaction(call.interaction)
            except KeyError:
                item = None
            call.extra["drop"](item, call.supervisor_leg)
        caller, agent = call.caller_leg, call.agent_leg
        if rebridge and caller is not None and agent is not None and not caller.closed and not agent.closed:
            self.engine.media.bridge(caller, agent)

    def _on_event(self, event: Any) -> None:
        if event.event == "Hangup" and event.interaction in self.calls:
            call = self.calls.pop(event.interaction)
            if not call.ringing:
                self._teardown(call, rebridge=False)
                self.engine.bus.publish("SupervisorLeft", interaction=call.interaction, Supervisor=call.supervisor,
                                        Cause="call-ended")


def _legs_of(channel: Any, item: Any) -> tuple[Any, Any] | None:
    """(caller leg, agent leg) of an anchored call: the channel's own answer, or the two sides of the
    bridge its ``media_of`` endpoint is in."""
    legs = getattr(channel, "media_legs", None)
    if legs is not None:
        return legs(item)  # type: ignore[no-any-return]
    media_of = getattr(channel, "media_of", None)
    caller = media_of(item) if media_of is not None else None
    bridge = getattr(caller, "bridge", None)
    if bridge is None or getattr(bridge, "caller", None) is None:
        return None
    return (bridge.caller, bridge.agent) if bridge.caller is caller else (bridge.agent, bridge.caller)


def _can_dial(channel: Any) -> bool:
    from ..abc import VoiceChannel

    dial = getattr(type(channel), "dial", None)
    return dial is not None and dial is not VoiceChannel.dial and getattr(channel, "media_of", None) is not None


class DialedSupervisor:
    """Rings the supervisor with the channel's ordinary outbound call (``dial``), as an interaction of its
    own; its media (``media_of``) is the leg that joins the conference."""

    def __init__(self, engine: Any, channel: Any, supervisor: str) -> None:
        self.engine, self.channel, self.supervisor = engine, channel, supervisor
        self.legs: dict[int, Any] = {}  # id(endpoint) -> the supervisor's interaction

    async def ring(self, item: Any, endpoint: str, *, ring_timeout: float) -> Any:
        from .._model import Direction, InteractionKind

        target = endpoint.partition(":")[2].split("@", 1)[0]  # sip:2001 -> 2001 (a registered user)
        leg_item = self.engine.new_interaction(
            InteractionKind.VOICE, Direction.OUTBOUND, from_=self.supervisor, to=target, channel=self.channel.name,
            attributes={"supervising": item.id},
        )
        try:
            result = await self.channel.dial(leg_item, target, caller_id=item.from_, ring_timeout=ring_timeout)
        except (ValueError, NotImplementedError) as exc:
            log.info("supervising %s: %s could not be dialed: %s", item.id, safe_text(endpoint, 60), exc)
            result = None
        media = self.channel.media_of(leg_item) if result is not None and result.outcome == "answered" else None
        if media is None or not hasattr(media, "local_address"):
            await self.engine.end_interaction(leg_item, cause=getattr(result, "outcome", "failed") or "failed")
            return None
        if leg_item.state.value != "active":
            from .._model import InteractionState

            leg_item.transition(InteractionState.ACTIVE)  # answered (dial leaves that to its caller)
        self.legs[id(media)] = leg_item
        return media

    def drop(self, item: Any, leg: Any) -> None:
        leg_item = self.legs.pop(id(leg), None)
        if leg_item is None:
            return
        nursery = getattr(self.engine, "_nursery", None)
        if nursery is not None:  # a sync caller (the bus): the BYE and the CDR go on in the background
            nursery.start_soon(self._hang_up, leg_item)

    async def _hang_up(self, leg_item: Any) -> None:
        await self.channel.hangup(leg_item, "supervisor-left")
        await self.engine.end_interaction(leg_item, cause="supervisor-left")
