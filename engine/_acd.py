"""The ACD service: drives the sans-IO routing core (``engine.routing.Router``) for the engine.

It feeds the router what happens (interactions arriving, agents answering, hanging up, changing
state), sleeps until the router's next timer, and acts on what the router says: ring an agent's
endpoint, stop ringing, move interactions between states, publish the AMI-named events, overflow.
The router's state is saved in the store after every change that matters (queued messages and
callbacks survive a restart).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from ._model import Interaction, InteractionKind, InteractionState
from .abc import Service, VoiceChannel
from .routing import (
    AgentComplete,
    AgentRingNoAnswer,
    Announce,
    CallbackRequest,
    CallbackFailed,
    CancelOffer,
    Connect,
    DialCallback,
    JoinRefused,
    NoSuchOffer,
    Offer,
    Overflow,
    QueueCallerAbandon,
    QueueCallerJoin,
    Router,
    RouterEvent,
    RoutingError,
    UnknownInteraction,
    build_agents,
    build_queues,
)
from .routing._announce import announcement_prompts

if TYPE_CHECKING:
    from ._engine import Engine

log = logging.getLogger("centralita.acd")

#: Seconds between routing snapshots in the store: writing the whole state on every change cost more
#: than routing itself with thousands waiting. Callback requests are saved at once.
SNAPSHOT_INTERVAL = 1.0

#: Prefix of each agent's hidden one-member queue: behind a ``[[routes]] agent = "alice"`` route, and
#: where a callback owned by one agent waits (so it survives a restart with the routing snapshot).
AGENT_QUEUE_PREFIX = "agent:"

#: Prompt played to queued callers of a queue without its own ``music_on_hold``, when the library has it.
DEFAULT_HOLD_MUSIC = "music-on-hold"


def routing_input(raw: dict[str, Any]) -> dict[str, Any]:
    """The router's view of the config: the queues plus one direct queue per agent."""
    queues = [dict(q) for q in raw.get("queues", [])]
    names = {q.get("name") for q in queues}
    agents = [a.get("id") for a in raw.get("agents", []) if isinstance(a, dict)]
    for agent in [*agents, *(route.get("agent") for route in raw.get("routes", []))]:
        name = f"{AGENT_QUEUE_PREFIX}{agent}"
        if agent and name not in names:
            names.add(name)
            queues.append({"name": name, "strategy": "linear", "members": [agent]})
    return {"queues": queues, "agents": list(raw.get("agents", []))}


class Acd(Service):
    name = "acd"
    critical = True  # without routing the engine is useless: fail loudly

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        raw = routing_input(engine.config.raw)
        self.router = Router(build_queues(raw), build_agents(raw), now=clock(), chooser=self._choose)
        self._kick = trio.Event()
        self._rings: dict[tuple[str, str], trio.CancelScope] = {}
        self._announcing: dict[str, trio.CancelScope] = {}  # interaction id -> the announcement being said
        self._holding: set[str] = set()  # interactions hearing music on hold
        self._hold_music: dict[tuple[str, str], Any] = {}  # (queue, setting) -> loaded prompt or None
        self._reserved_for_callback: list[tuple[str, str]] = []  # (interaction, agent) to accept after apply()
        self._wrapups: dict[str, float] = {}
        self._nursery: trio.Nursery | None = None
        self._dirty = False
        self._urgent = False  # a callback request: save it now, it must survive a crash
        self._saved_at = 0.0
        self._ready = False

    # ------------------------------------------------------------------------------------ running

    async def aclose(self) -> None:
        if self._dirty and self.engine.store is not None:
            with trio.CancelScope(shield=True):
                await self._save()
            self._dirty = False

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        # Reachability first and the nursery open before the snapshot is restored: restoring offers the
        # waiting callbacks to agents at once, and those offers must neither reserve a phone that is not
        # registered nor lose the dial they trigger (a callback left "dialing" forever, its agent held).
        for agent in self.engine.config.agents:
            if agent.endpoint:
                reachable = self.engine.endpoint_reachable(agent.endpoint)
                self.apply(self.router.set_reachable(agent.id, reachable, now=self.clock()))
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._restore()
            self._ready = True
            task_status.started()
            while True:
                await self._sleep_until_due()
                self.apply(self.router.handle_timer(self.clock()))
                self._end_finished_wrapups()
                if self._dirty and (self._urgent or self.clock() - self._saved_at >= SNAPSHOT_INTERVAL):
                    self._dirty = self._urgent = False
                    self._saved_at = self.clock()
                    await self._save()

    def ready(self) -> bool:
        return self._ready

    async def _sleep_until_due(self) -> None:
        due = self.router.next_timer()
        if self._dirty:  # wake in time to write the throttled snapshot
            due = min(due, self._saved_at + SNAPSHOT_INTERVAL) if due is not None else self._saved_at + SNAPSHOT_INTERVAL
        if self._wrapups:
            due = min([t for t in (due, *self._wrapups.values()) if t is not None])
        timeout = max(0.0, due - self.clock()) if due is not None else 3600.0
        with trio.move_on_after(timeout):
            await self._kick.wait()
        self._kick = trio.Event()

    def kick(self) -> None:
        self._kick.set()

    async def _restore(self) -> None:
        store = self.engine.store
        assert store is not None
        row = await store.fetchone("SELECT value FROM kv WHERE component = 'routing' AND key = 'snapshot'")
        if row:
            try:
                events = self.router.restore(json.loads(row["value"]), now=self.clock())
            except (ValueError, KeyError, RoutingError) as exc:
                log.error("routing snapshot could not be restored (%s); starting with empty queues", exc)
                return
            log.info("routing restored: %s", self.router.statistics())
            self.apply(events, restoring=True)

    async def _save(self) -> None:
        store = self.engine.store
        assert store is not None
        await store.write(
            "INSERT INTO kv(component, key, value) VALUES ('routing', 'snapshot', ?) "
            "ON CONFLICT(component, key) DO UPDATE SET value = excluded.value",
            (json.dumps(self.router.snapshot()),),
        )

    def _choose(self, interaction_id: str, queue: str, candidates: Sequence[str]) -> str | None:
        interaction = self.engine.interactions.get(interaction_id)
        if interaction is None:
            return None
        return self.engine.hooks.choose_agent(interaction, queue, list(candidates))

    # ------------------------------------------------------------------------------------ inputs

    def enqueue(self, interaction: Interaction, queue: str, *, priority: int = 0,
                callback: CallbackRequest | None = None) -> None:
        interaction.queue = queue
        total = priority + int(interaction.attributes.get("priority", 0))
        attributes = {k: v for k, v in interaction.attributes.items() if isinstance(v, (str, int, float, bool))}
        self.apply(self.router.enqueue(
            interaction.id, queue, now=self.clock(), kind=interaction.kind.value, priority=total,
            attributes=attributes, callback=callback,
        ))
        if callback is not None:
            self._urgent = True
            self.kick()

    def answered(self, interaction: Interaction, agent: str) -> bool:
        """An agent answered a voice offer or accepted a message: True if they got it."""
        try:
            events = self.router.accept(interaction.id, agent, now=self.clock())
        except NoSuchOffer:
            return False
        self.apply(events)
        return interaction.agent == agent and interaction.state is InteractionState.ACTIVE

    def failed(self, interaction: Interaction, agent: str, cause: str) -> None:
        try:
            self.apply(self.router.reject(interaction.id, agent, now=self.clock(), cause=cause))
        except NoSuchOffer:
            pass

    def ended(self, interaction: Interaction, reason: str) -> None:
        self.apply(self.router.end(interaction.id, now=self.clock(), reason=reason))
        original = interaction.attributes.get("callback_for")
        if isinstance(original, str) and self.router.interaction_state(original) == "active":
            # The call back to a customer is over: routing holds the agent on the request's own entry
            # (the customer's first call), so that is what completes (talk time, wrap-up, agent freed).
            self.apply(self.router.end(original, now=self.clock(), reason=reason))

    def agent_state(self, agent: str, state: str, reason: str) -> None:
        now = self.clock()
        current = self.router.agent_status(agent)["state"]
        events: list[RouterEvent] = []
        if state == "logged_out":
            events += self.router.logout(agent, now=now)
        else:
            if current == "logged_out":
                events += self.router.login(agent, now=now)
            if state == "paused":
                events += self.router.pause(agent, reason, now=now)
            elif state == "available":
                events += self.router.unpause(agent, now=now)
        self.apply(events)

    def wrapup_done(self, agent: str, interaction: str | None = None) -> None:
        self.apply(self.router.wrapup_done(agent, interaction, now=self.clock()))
        self._end_finished_wrapups(force=interaction)

    def holds(self, interaction_id: str) -> bool:
        """Does the router still have this interaction (waiting, offered, dialing back, active)?"""
        return self.router.has_interaction(interaction_id)

    def reconfigure(self, config: Any) -> None:
        """New queues and agents; live interactions keep their place (the router keeps them)."""
        raw = routing_input(config.raw)
        self._hold_music.clear()  # the new config may name other music
        self.apply(self.router.configure(build_queues(raw), build_agents(raw), now=self.clock()))

    def reachable(self, agent: str, reachable: bool) -> None:
        self.apply(self.router.set_reachable(agent, reachable, now=self.clock()))

    # ------------------------------------------------------------------------------------ outputs

    def apply(self, events: Sequence[RouterEvent], *, restoring: bool = False) -> None:
        """Act on router output, in order. Never blocks: slow work goes to tasks in our nursery."""
        for event in events:
            interaction = self.engine.interactions.get(getattr(event, "interaction", "") or "")
            if event.ami:
                fields = event.to_fields()
                iid = fields.pop("interaction", None)
                explanation = fields.pop("explanation", None)
                if explanation is not None:
                    fields["Explanation"] = explanation
                self.engine.bus.publish(event.ami, interaction=iid, **fields)
            handler = getattr(self, f"_on_{type(event).__name__}", None)
            if handler is not None:
                handler(event, interaction)
        while self._reserved_for_callback:
            # Accepted after the events that reserved the agent have all been acted on, so the bus
            # shows them in the router's order (AgentCalled, then the dial).
            iid, agent = self._reserved_for_callback.pop(0)
            try:
                self.apply(self.router.accept(iid, agent, now=self.clock()))
            except NoSuchOffer:
                pass
        for iid in {getattr(e, "interaction", "") or "" for e in events}:
            interaction = self.engine.interactions.get(iid)
            if interaction is not None and interaction.state is InteractionState.ENDED:
                self.engine.retire(interaction)  # routing may have just let go of it (a callback done)
        if events:
            self._dirty = True
            self.kick()

    def _move(self, interaction: Interaction | None, state: InteractionState) -> None:
        if interaction is not None and interaction.state is not state and interaction.state is not InteractionState.ENDED:
            interaction.transition(state)

    def _on_QueueCallerJoin(self, event: QueueCallerJoin, interaction: Interaction | None) -> None:
        if interaction is not None:
            interaction.queue = event.queue
            if interaction.state is not InteractionState.QUEUED:
                self._move(interaction, InteractionState.QUEUED)
            self._start_hold_music(interaction, event.queue)

    # ------------------------------------------------------------------------------ music on hold

    def _hold_music_prompt(self, queue: str) -> Any:
        """The queue's ``music_on_hold`` (a prompt name, or a path to a WAV file, relative to the data
        directory unless absolute), else the library's
        ``music-on-hold`` prompt if there is one; ``"none"`` means silence. Loaded once per setting."""
        settings = next((q for q in self.engine.config.queues if q.name == queue), None)
        setting = (getattr(settings, "music_on_hold", "") or "").strip()
        key = (queue, setting)
        if key in self._hold_music:
            return self._hold_music[key]
        prompt = None
        prompts = getattr(self.engine, "prompts", None)
        try:
            if setting.lower() == "none":
                prompt = None
            elif setting and ("/" in setting or setting.endswith(".wav")):
                from .media import MusicOnHold

                path = Path(setting)
                prompt = MusicOnHold(path if path.is_absolute() else self.engine.config.data_dir / path).prompt
            elif setting and prompts is not None:
                prompt = prompts.load(setting, self.engine.config.media.language)
            elif prompts is not None and prompts.has_prompt(DEFAULT_HOLD_MUSIC, self.engine.config.media.language):
                prompt = prompts.load(DEFAULT_HOLD_MUSIC, self.engine.config.media.language)
        except Exception as exc:  # a missing or unreadable file: say so once, callers wait in silence
            log.error("queue %s: music on hold %r cannot be played: %s", queue, setting, exc)
            prompt = None
        self._hold_music[key] = prompt
        return prompt

    def _start_hold_music(self, interaction: Interaction, queue: str) -> None:
        if interaction.kind is not InteractionKind.VOICE:
            return
        channel = self.engine.channels.get(interaction.channel)
        if not isinstance(channel, VoiceChannel) or type(channel).hold_music is VoiceChannel.hold_music:
            return
        prompt = self._hold_music_prompt(queue)
        if prompt is None:
            return
        try:
            if channel.hold_music(interaction, prompt):
                self._holding.add(interaction.id)
        except Exception:
            log.exception("music on hold for %s failed", interaction.id)

    def _stop_hold_music(self, interaction_id: str) -> None:
        if interaction_id not in self._holding:
            return
        self._holding.discard(interaction_id)
        interaction = self.engine.interactions.get(interaction_id)
        channel = self.engine.channels.get(interaction.channel) if interaction is not None else None
        try:
            if isinstance(channel, VoiceChannel) and interaction is not None:
                channel.hold_music(interaction, None)
        except Exception:
            log.exception("stopping music on hold for %s failed", interaction_id)

    def _on_Offer(self, event: Offer, interaction: Interaction | None) -> None:
        if event.callback is not None:
            # A callback's turn: the customer's line is long gone, so there is no call to ring the agent
            # with (ringing it failed, the agent sat out, and the request never got dialed). The agent is
            # reserved; accepting makes routing emit DialCallback, and the engine rings the agent itself
            # once the customer answers (engine.dial_callback -> connect_agent).
            self._reserved_for_callback.append((event.interaction, event.agent))
            return
        if interaction is None:
            return
        if interaction.state is InteractionState.QUEUED:
            self._move(interaction, InteractionState.OFFERED)
        interaction.attributes.setdefault("offers", []).append(
            {"agent": event.agent, "expires": event.expires,
             "explanation": event.to_fields().get("explanation")}
        )
        if event.kind == InteractionKind.VOICE.value:
            endpoint = self.engine.agent_endpoint(event.agent)
            channel = self.engine.voice_channel_for(endpoint)
            if channel is None or self._nursery is None:
                self.failed(interaction, event.agent, "busy")
                return
            scope = trio.CancelScope()
            self._rings[(event.interaction, event.agent)] = scope
            self._nursery.start_soon(self._ring, channel, interaction, event.agent, endpoint, scope)

    async def _ring(self, channel: Any, interaction: Interaction, agent: str, endpoint: str, scope: trio.CancelScope) -> None:
        with scope:
            try:
                owner = self.engine.channels.get(interaction.channel)
                if self.engine.crossconnect.applies(owner, channel):
                    # An analog caller for a SIP agent, a SIP caller for the headset: the engine pairs them.
                    await self.engine.crossconnect.offer(owner, channel, interaction, agent, endpoint)
                else:
                    await channel.offer(interaction, agent, endpoint)
            except Exception:
                log.exception("ringing %s for %s failed", endpoint, interaction.id)
                self.failed(interaction, agent, "busy")
        self._rings.pop((interaction.id, agent), None)

    def _on_CancelOffer(self, event: CancelOffer, interaction: Interaction | None) -> None:
        scope = self._rings.pop((event.interaction, event.agent), None)
        if scope is not None:
            scope.cancel()  # the channel's offer() stops ringing on cancellation

    def _on_AgentRingNoAnswer(self, event: AgentRingNoAnswer, interaction: Interaction | None) -> None:
        self._on_CancelOffer(CancelOffer(event.interaction, event.agent, event.cause), interaction)
        if interaction is not None and interaction.state is InteractionState.OFFERED:
            self._move(interaction, InteractionState.QUEUED)

    def _on_Connect(self, event: Connect, interaction: Interaction | None) -> None:
        self._stop_announcing(event.interaction)
        self._stop_hold_music(event.interaction)
        if interaction is not None:
            interaction.agent = event.agent
            self._move(interaction, InteractionState.ACTIVE)

    def _on_AgentComplete(self, event: AgentComplete, interaction: Interaction | None) -> None:
        if interaction is None:
            return
        if event.reason == "transfer":
            return  # the agent does wrap-up; the interaction goes on to its next queue
        if event.wrapup_until > self.clock() and interaction.state is InteractionState.ACTIVE:
            self._move(interaction, InteractionState.WRAPUP)
            self._wrapups[interaction.id] = event.wrapup_until

    def _end_finished_wrapups(self, force: str | None = None) -> None:
        now = self.clock()
        for iid, until in list(self._wrapups.items()):
            if until <= now or iid == force:
                del self._wrapups[iid]
                interaction = self.engine.interactions.get(iid)
                if interaction is not None and interaction.state is InteractionState.WRAPUP:
                    interaction.transition(InteractionState.ENDED)
                    self.engine.retire(interaction)

    def _on_QueueCallerLeave(self, event: Any, interaction: Interaction | None) -> None:
        self._stop_announcing(event.interaction)
        self._stop_hold_music(event.interaction)

    def _on_QueueCallerAbandon(self, event: QueueCallerAbandon, interaction: Interaction | None) -> None:
        self._stop_announcing(event.interaction)
        self._stop_hold_music(event.interaction)
        if interaction is not None:
            interaction.attributes["abandoned"] = True

    def _on_JoinRefused(self, event: JoinRefused, interaction: Interaction | None) -> None:
        if interaction is None:
            return
        if event.destination:
            self._overflow(interaction, event.destination, event.reason)
        else:
            self._spawn(self.engine.reject_interaction(interaction, cause=f"queue-{event.reason}"))

    def _on_Overflow(self, event: Overflow, interaction: Interaction | None) -> None:
        if interaction is not None:
            self._overflow(interaction, event.destination, event.reason)

    def _overflow(self, interaction: Interaction, destination: tuple[str, str], reason: str) -> None:
        kind, target = destination
        log.info("interaction %s overflows (%s) to %s %s", interaction.id, reason, kind, target)
        if kind == "callback":
            self._spawn(self._overflow_to_callback(interaction))
            return
        self._spawn(self._deliver_or_reject(interaction, kind, target))

    async def _overflow_to_callback(self, interaction: Interaction) -> None:
        """``overflow = { callback = true }``: a caller who has waited too long is called back instead.

        Routing kept their place; the callback is booked on the number they called from, they hear the
        ``callback-booked`` prompt when there is one, and the line is released (not an abandon). A caller
        with no number to call back (anonymous, a SIP name) simply waits on.
        """
        engine = self.engine
        try:
            number = engine.check_dial(interaction.from_, caller=interaction.from_, purpose="callback")
        except ValueError as exc:
            log.info("%s cannot be offered a callback (%s); the caller keeps waiting", interaction.id, exc)
            return
        request_id = f"{interaction.id}-overflow"
        try:
            self.apply(self.router.request_callback(interaction.id, CallbackRequest(request_id, number), now=self.clock()))
        except UnknownInteraction:
            return  # answered or gone in the meantime
        interaction.attributes["callback_request"] = request_id
        channel = engine.channels.get(interaction.channel)
        if engine.prompts.has_prompt("callback-booked"):
            with trio.move_on_after(30):
                try:
                    await channel.answer(interaction)  # a queued call may still be ringing
                    await channel.play(interaction, prompt="callback-booked")
                except NotImplementedError:
                    pass
        if interaction.state is not InteractionState.ENDED:
            await channel.hangup(interaction, "callback-booked")
            await engine.end_interaction(interaction, cause="callback-booked")

    async def _deliver_or_reject(self, interaction: Interaction, kind: str, target: str) -> None:
        # Routing has already let go of the caller: if the destination cannot take them (a channel
        # that cannot record voicemail, a flow that is gone), end the call rather than leave it up
        # with nobody behind it.
        try:
            await self.engine.deliver_to(interaction, kind, target)
        except Exception as exc:
            log.error("overflow of %s to %s %s failed (%s); ending it", interaction.id, kind, target, exc)
            if interaction.state is not InteractionState.ENDED:
                await self.engine.reject_interaction(interaction, cause=f"overflow-{kind}-failed")

    def _on_Announce(self, event: Announce, interaction: Interaction | None) -> None:
        if interaction is None or interaction.state is InteractionState.ENDED:
            return
        channel = self.engine.channels.get(interaction.channel)
        announce = getattr(channel, "announce", None)
        if announce is not None:
            self._spawn(announce(interaction, event.position, event.wait_low, event.wait_high))
            return
        if not isinstance(channel, VoiceChannel) or type(channel).play is VoiceChannel.play or self._nursery is None:
            return
        if interaction.id in self._announcing:
            return  # the last one is still being said (a long announcement, a short period)
        settings = next((q for q in self.engine.config.queues if q.name == event.queue), None)
        names = announcement_prompts(event.position, event.wait_low, event.wait_high,
                                     say_position=getattr(settings, "announce_position", True))
        prompts = getattr(self.engine, "prompts", None)
        names = [name for name in names if prompts is not None and prompts.has_prompt(name)]
        if names:
            scope = self._announcing[interaction.id] = trio.CancelScope()
            self._nursery.start_soon(self._say, channel, interaction, names, scope)

    async def _say(self, channel: Any, interaction: Interaction, names: list[str], scope: trio.CancelScope) -> None:
        """Play an announcement's prompts in turn; cancelled when the caller leaves the queue."""
        with scope:
            try:
                for name in names:
                    await channel.play(interaction, prompt=name)
            except Exception:
                log.exception("announcing to %s failed", interaction.id)
        if self._announcing.get(interaction.id) is scope:
            del self._announcing[interaction.id]

    def _stop_announcing(self, interaction_id: str) -> None:
        scope = self._announcing.pop(interaction_id, None)
        if scope is not None:
            scope.cancel()

    def _on_DialCallback(self, event: DialCallback, interaction: Interaction | None) -> None:
        self._spawn(self.engine.dial_callback(event))

    def _on_CallbackFailed(self, event: CallbackFailed, interaction: Interaction | None) -> None:
        log.warning("callback %s for interaction %s failed: %s", event.request_id, event.interaction, event.reason)

    def _spawn(self, coroutine: Any) -> None:
        if self._nursery is None:
            coroutine.close()
            return

        async def guarded() -> None:
            try:
                await coroutine
            except Exception:
                log.exception("routing action failed")

        self._nursery.start_soon(guarded)

    def statistics(self) -> dict[str, Any]:
        return {**self.router.statistics(), "ringing": len(self._rings), "wrapups": len(self._wrapups),
                "announcing": len(self._announcing), "music_on_hold": len(self._holding)}

