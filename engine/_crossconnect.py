"""Calls that cross channels: a caller on one voice channel answered by an agent on another.

An analog caller (the ``fxo`` channel) reaching a SIP agent, or a SIP caller reaching the receptionist's
headset, has two halves that no single channel owns. The engine pairs them here:

1. the agent's channel rings the endpoint (``ring_agent``) with an audio path of its own;
2. when the agent answers and routing confirms the agent still gets the call (``offer_answered``), the
   owner answers its caller if it has not yet (``answer``) and hands over the caller's audio (``media_of``);
3. both audio paths join a two-party ``engine.media`` conference room, mixed on the media clock (one side
   may be RTP, the other PCM frames from a device: the room does not care); the room is what records
   the call when its queue has ``record = true`` (``engine.recorder``);
4. whichever side ends first ends the other: the agent hanging up ends the interaction (CDR), the caller
   hanging up (the interaction ends) hangs up the agent.

The ACD calls :meth:`CrossConnect.offer` instead of ``channel.offer`` when the endpoint's channel is not the
interaction's own.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ._events import Event
from ._model import Interaction, InteractionState
from .abc import VoiceChannel

__all__ = ["CrossConnect"]

log = logging.getLogger("centralita.crossconnect")


class CrossConnect:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        #: interaction id -> set when the interaction ends (fed by one bus listener, not a task per call)
        self._ended: dict[str, trio.Event] = {}
        self.counters = {"offers": 0, "connected": 0, "failed": 0, "no_media": 0}
        engine.bus.add_listener(self._on_event)

    def statistics(self) -> dict[str, int]:
        return {**self.counters, "active": len(self._ended)}

    @staticmethod
    def applies(owner: Any, ringer: Any) -> bool:
        """Does an offer from ``owner``'s caller to an endpoint on ``ringer`` go through here? Only when
        they differ and ``ringer`` can ring for others (a channel without ``ring_agent`` keeps its own
        ``offer``, as the demo's simulated phones do)."""
        return (
            owner is not None
            and owner is not ringer
            and isinstance(ringer, VoiceChannel)
            and type(ringer).ring_agent is not VoiceChannel.ring_agent
        )

    def _on_event(self, event: Event) -> None:
        if event.event == "Hangup" and event.interaction in self._ended:
            self._ended[event.interaction].set()

    async def offer(self, owner: Any, ringer: Any, interaction: Interaction, agent: str, endpoint: str) -> None:
        """Ring ``agent`` at ``endpoint`` (on ``ringer``) for a caller ``owner`` holds; runs in the ACD's
        ring scope, so a withdrawn offer cancels the ringing. The bridged call outlives that scope."""
        engine = self.engine
        self.counters["offers"] += 1
        try:
            leg = await ringer.ring_agent(interaction, agent, endpoint)
        except NotImplementedError as exc:
            log.warning("cannot ring %s for %s: %s", endpoint, interaction.id, exc)
            self.counters["failed"] += 1
            engine.offer_failed(interaction, agent, "failed")
            return
        if not leg.answered:
            self.counters["failed"] += 1
            engine.offer_failed(interaction, agent, leg.outcome or "no-answer")
            return
        # A headset's agent accepts through the API, which already told routing; a phone just answers.
        accepted = interaction.agent == agent and interaction.state is InteractionState.ACTIVE
        if interaction.state is InteractionState.ENDED or not (accepted or engine.offer_answered(interaction, agent)):
            await leg.hangup()  # answered too late: the caller left or someone else took it
            return
        if engine._nursery is None:
            await leg.hangup()
            return
        # Registered before any await, so a hang-up from here on is never missed.
        self._ended[interaction.id] = trio.Event()
        engine._nursery.start_soon(self._connected, owner, interaction, leg)

    async def connect(self, owner: Any, interaction: Interaction, agent: str, endpoint: str) -> bool:
        """Ring ``agent`` for an answered call ``owner`` placed (the dialer, a callback) and bridge them;
        no routing involved. True once bridged (the call then runs in the engine's nursery)."""
        engine = self.engine
        ringer = engine.voice_channel_for(endpoint)
        if not self.applies(owner, ringer) or engine._nursery is None:
            return False
        self.counters["offers"] += 1
        leg = await ringer.ring_agent(interaction, agent, endpoint)
        if not leg.answered:
            self.counters["failed"] += 1
            return False
        if interaction.state is InteractionState.ENDED:
            await leg.hangup()
            return False
        interaction.agent = agent
        self._ended[interaction.id] = trio.Event()
        engine._nursery.start_soon(self._connected, owner, interaction, leg)
        return True

    async def _connected(self, owner: Any, interaction: Interaction, leg: Any) -> None:
        engine = self.engine
        ended = self._ended[interaction.id]
        room = None
        try:
            if not ended.is_set():
                try:
                    await owner.answer(interaction)  # a queue call still ringing on the owner's side
                except NotImplementedError:
                    pass
            caller = owner.media_of(interaction)
            if caller is None or ended.is_set():
                if caller is None:
                    self.counters["no_media"] += 1
                    log.warning("%s: the %s channel has no audio for this call; ending it", interaction.id, owner.name)
                await self._finish(owner, interaction, leg, cause="no-media")
                return
            room = engine.media.conference()
            _join(room, "caller", caller)
            _join(room, "agent", leg.endpoint if leg.endpoint is not None else (leg.source, leg.sink))
            self.counters["connected"] += 1
            engine.bus.publish("BridgeEnter", interaction=interaction.id, Agent=interaction.agent or "",
                               Channel=owner.name)
            recorder = getattr(engine, "recorder", None)
            if recorder is not None:
                recorder.attach(interaction, room)  # the queue's record = true, or on demand later
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_set_when, leg.ended, ended)
                await ended.wait()
                nursery.cancel_scope.cancel()
            self._close_room(interaction, room)  # no more audio towards either side while they hang up
            room = None
            await self._finish(owner, interaction, leg, cause="agent")
        finally:
            if room is not None:
                self._close_room(interaction, room)
            self._ended.pop(interaction.id, None)

    def _close_room(self, interaction: Interaction, room: Any) -> None:
        recorder = getattr(self.engine, "recorder", None)
        if recorder is not None:
            recorder.detach(interaction)  # the recording ends with the conversation
        room.close()

    async def _finish(self, owner: Any, interaction: Interaction, leg: Any, *, cause: str) -> None:
        """Hang up both halves and end the interaction (idempotent: each part may be over already)."""
        with trio.CancelScope(shield=True):
            await leg.hangup()
            try:
                await owner.hangup(interaction, cause)
            except Exception:
                log.exception("%s: hanging up the caller failed", interaction.id)
            await self.engine.end_interaction(interaction, cause=cause)


async def _set_when(source: trio.Event, target: trio.Event) -> None:
    await source.wait()
    target.set()


def _join(room: Any, name: str, media: Any) -> None:
    if isinstance(media, tuple):
        room.join(name, media[0], media[1])
    else:
        room.join_endpoint(name, media)
