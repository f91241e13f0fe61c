"""Runs IVR flow sessions (``engine.ivr.FlowSession``) against real calls.

One task per caller in the flow: it answers the call, then feeds the session what happens (digits,
the end of a prompt, a CRM answer, timers, the caller hanging up) and carries out its commands through
the call's voice channel (play, stop) or the engine (queue, callback, transfer, hang up).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from ._model import Interaction, InteractionState
from .abc import Service
from .ivr import (
    CrmResult,
    Digit,
    EnterQueue,
    FlowCommand,
    FlowEnded,
    FlowSession,
    Hangup,
    LookupCrm,
    Play,
    PlaybackDone,
    RequestCallback,
    StopPlayback,
    Transfer,
    Voicemail,
    load_flows,
)
from .routing import CallbackRequest

if TYPE_CHECKING:
    from ._engine import Engine

log = logging.getLogger("centralita.ivr")

#: How long a CRM lookup may hold up a caller in a flow before it counts as failed.
CRM_BUDGET = 2.0


#: How long a cancelled prompt may take to let go of the caller's audio before the next one starts.
STOP_PLAYBACK_BUDGET = 2.0


class _Hangup:
    """Input: the caller went away."""


class _PlayEnded:
    """Input: prompt number ``seq`` played to its end (a stale one, from a prompt since replaced, is
    ignored: it must not count as the end of the prompt that replaced it)."""

    __slots__ = ("seq",)

    def __init__(self, seq: int) -> None:
        self.seq = seq


class IvrRunner(Service):
    name = "ivr"

    def __init__(self, engine: Engine, node_types: Any, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self.node_types = node_types
        self.flows = load_flows(
            engine.config.raw.get("flows", []),
            queues={q.name for q in engine.config.queues},
            node_types=node_types,
        )
        self._inputs: dict[str, trio.MemorySendChannel[object]] = {}
        self._sessions: dict[str, FlowSession] = {}
        self._nursery: trio.Nursery | None = None
        self.sessions_started = 0
        self.sessions_finished = 0

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def ready(self) -> bool:
        return self._nursery is not None

    def statistics(self) -> dict[str, Any]:
        return {"active": len(self._inputs), "started": self.sessions_started, "finished": self.sessions_finished}

    # ---------------------------------------------------------------------------------- inputs

    def start_flow(self, interaction: Interaction, flow: str) -> None:
        if flow not in self.flows:
            raise KeyError(f"no flow named {flow!r}")
        if self._nursery is None:
            raise RuntimeError("the IVR is not running")
        send, receive = trio.open_memory_channel[object](64)
        self._inputs[interaction.id] = send
        interaction.transition(InteractionState.IVR)
        self.sessions_started += 1
        self._nursery.start_soon(self._session, interaction, self.flows[flow], receive)

    def digit(self, interaction: Interaction, digit: str) -> bool:
        """Feed a digit to the caller's flow; False when the caller is not in a flow."""
        return self._feed(interaction, Digit(digit))

    def caller_gone(self, interaction: Interaction) -> None:
        """The caller hung up. Handled here and now, not in the session's task: the engine is ending
        the interaction as we speak, and what the hang-up books (a callback the caller chose) must be
        in routing before the interaction's CDR is written and routing is told it ended."""
        session = self._sessions.get(interaction.id)
        if session is not None and not session.finished:
            for command in session.hangup(self.clock()):
                if isinstance(command, FlowEnded):
                    self._record_outcome(interaction, command)
                elif isinstance(command, RequestCallback):
                    self._book_callback(interaction, command)
        self._feed(interaction, _Hangup())

    @staticmethod
    def _record_outcome(interaction: Interaction, ended: FlowEnded) -> None:
        interaction.attributes["ivr"] = {"outcome": ended.outcome, "node": ended.node, "variables": ended.variables}

    def _book_callback(self, interaction: Interaction, command: RequestCallback) -> None:
        # the caller keeps their place; the flow's Hangup that follows (if still on the line) ends the call
        interaction.attributes["callback_request"] = command.request_id
        self.engine.acd.enqueue(interaction, command.queue,
                                callback=CallbackRequest(command.request_id, command.number))

    def _feed(self, interaction: Interaction, item: object) -> bool:
        send = self._inputs.get(interaction.id)
        if send is None:
            return False
        try:
            send.send_nowait(item)
        except trio.WouldBlock:
            log.warning("flow input dropped for %s (the caller is pressing keys faster than we act)", interaction.id)
        return True

    # ---------------------------------------------------------------------------------- sessions

    async def _session(self, interaction: Interaction, flow: Any, inputs: trio.MemoryReceiveChannel[object]) -> None:
        session = FlowSession(flow, caller=interaction.from_, session_id=interaction.id)
        self._sessions[interaction.id] = session
        channel = self.engine.channels.get(interaction.channel)
        own_send = self._inputs[interaction.id]
        playing: tuple[int, trio.CancelScope, trio.Event] | None = None  # (seq, scope, done)
        play_seq = 0

        async def stop_playing() -> None:
            # Wait for the old prompt to let go: a channel's clean-up of a cancelled prompt (stopping
            # the endpoint's player) must not cut the prompt or announcement that comes next.
            nonlocal playing
            if playing is not None:
                _, scope, done = playing
                playing = None
                scope.cancel()
                with trio.move_on_after(STOP_PLAYBACK_BUDGET):
                    await done.wait()

        try:
            async with trio.open_nursery() as nursery:
                try:
                    await channel.answer(interaction)  # type: ignore[union-attr]
                except NotImplementedError as exc:
                    log.error("flow %s: %s", flow.name, exc)
                    await self.engine.reject_interaction(interaction, cause="ivr-unavailable")
                    return
                commands = session.start(self.clock())
                while True:
                    for command in commands:
                        if isinstance(command, FlowEnded):
                            # recorded before any final command runs: those may end the call at once
                            self._record_outcome(interaction, command)
                    for command in commands:
                        if isinstance(command, Play):
                            await stop_playing()
                            play_seq += 1
                            playing = (play_seq, trio.CancelScope(), trio.Event())
                            nursery.start_soon(self._play, channel, interaction, command, *playing, own_send)
                        elif isinstance(command, StopPlayback):
                            await stop_playing()
                        elif isinstance(command, LookupCrm):
                            nursery.start_soon(self._lookup, command, own_send)
                        elif not isinstance(command, FlowEnded):
                            await stop_playing()
                            await self._final(interaction, channel, command)
                    if session.finished:
                        nursery.cancel_scope.cancel()
                        return
                    due = session.next_timer()
                    item: object | None = None
                    with trio.move_on_after(max(0.0, due - self.clock()) if due is not None else 3600):
                        item = await inputs.receive()
                    now = self.clock()
                    if item is None:
                        commands = session.handle_timer(now)
                    elif isinstance(item, _Hangup):
                        commands = session.hangup(now)
                    elif isinstance(item, _PlayEnded):
                        if playing is None or item.seq != playing[0]:
                            commands = []  # a replaced prompt's end: not the current prompt's
                            continue
                        playing = None
                        commands = session.feed(PlaybackDone(), now)
                    else:
                        commands = session.feed(item, now)
        finally:
            self._inputs.pop(interaction.id, None)
            self._sessions.pop(interaction.id, None)
            self.sessions_finished += 1

    async def _play(self, channel: Any, interaction: Interaction, command: Play, seq: int, scope: trio.CancelScope,
                    done: trio.Event, report: trio.MemorySendChannel[object]) -> None:
        try:
            with scope:
                try:
                    await channel.play(interaction, prompt=command.prompt, text=command.text)
                except Exception:
                    log.exception("playing %s to %s failed", command.prompt or command.text, interaction.id)
                with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                    report.send_nowait(_PlayEnded(seq))
        finally:
            done.set()

    async def _lookup(self, command: LookupCrm, report: trio.MemorySendChannel[object]) -> None:
        record: dict[str, Any] | None = None
        error: str | None = None
        with trio.move_on_after(CRM_BUDGET) as budget:
            for backend in self.engine.crm.values():
                try:
                    contact = await backend.lookup(phone=command.value if command.key != "email" else None,
                                                   email=command.value if command.key == "email" else None)
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    continue
                if contact is not None:
                    record = {"id": contact.id, "name": contact.name, "segments": list(contact.segments),
                              **contact.fields}
                    break
        if budget.cancelled_caught:
            error = f"CRM did not answer within {CRM_BUDGET}s"
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            report.send_nowait(CrmResult(command.request_id, record, error))

    async def _final(self, interaction: Interaction, channel: Any, command: FlowCommand) -> None:
        """Carry out a command that ends the caller's time in the flow."""
        if isinstance(command, EnterQueue):
            interaction.attributes.update(command.attributes)
            self.engine.acd.enqueue(interaction, command.queue, priority=command.priority)
        elif isinstance(command, RequestCallback):
            self._book_callback(interaction, command)
        elif isinstance(command, Transfer):
            try:
                await channel.transfer(interaction, command.destination)
            except NotImplementedError as exc:
                log.error("transfer to %s: %s", command.destination, exc)
                await self.engine.reject_interaction(interaction, cause="transfer-unavailable")
                return
            await self.engine.end_interaction(interaction, cause="transferred")
        elif isinstance(command, Voicemail):
            try:
                await self.engine.voicemail.record(interaction, command.box, greeting=command.greeting)
            except NotImplementedError as exc:
                log.error("voicemail box %s: %s", command.box, exc)
                await self.engine.reject_interaction(interaction, cause="voicemail-unavailable")
        elif isinstance(command, Hangup):
            hangup = getattr(channel, "hangup", None)
            if hangup is not None:
                await hangup(interaction, command.reason)
            await self.engine.end_interaction(interaction, cause=command.reason)

