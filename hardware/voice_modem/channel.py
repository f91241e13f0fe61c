"""The ``fxo`` channel: calls on analog lines (voice modems) become voice interactions.

An incoming call on a voice-modem device (``IncomingCall``, after caller ID) becomes an inbound voice
interaction from the caller's number to the *device name*, routed with ``[[routes]] match = "line1"``
(CONTRACT.md). The channel answers when the IVR asks (``answer``), plays prompts through the modem
(``play``), reports DLE DTMF to the engine, and ends the interaction with a CDR when the caller hangs
up, the line drops or the modem is unplugged. ``media_of(interaction)`` hands the call's
``engine.media`` Source/Sink to whoever bridges it (an agent leg).

Devices start after channels, so the channel attaches to each voice line when the line first reports
its health (``DeviceStateChange`` on the bus), without polling.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import trio

from engine import Direction, Interaction, InteractionKind
from engine.abc import AgentLeg, Capability, DeviceHealth, DialResult, VoiceChannel

from ._device import CallEnded, DtmfReceived, IncomingCall, RingingStopped, VoiceCall, VoiceModem
from ._dialout import dial as dial_out

__all__ = ["FxoChannel"]

log = logging.getLogger("centralita.hardware.fxo")


class FxoChannel(VoiceChannel):
    name = "fxo"
    kinds: ClassVar[frozenset[InteractionKind]] = frozenset({InteractionKind.VOICE})
    schemes: ClassVar[frozenset[str]] = frozenset({"fxo"})

    def __init__(self, context: Any) -> None:
        self.context = context
        self.engine = context.engine
        self._lines: dict[str, VoiceModem] = {}
        self._by_line: dict[str, Interaction] = {}
        self._calls: dict[str, VoiceCall] = {}
        self._inbox_send, self._inbox = trio.open_memory_channel[tuple[VoiceModem, Any]](256)
        self.counters = {"calls": 0, "answered": 0, "rejected": 0, "ended": 0, "dialled": 0}
        self._dialling: set[str] = set()  # lines with an ATD in progress
        self._nursery: trio.Nursery | None = None
        self._reachable: dict[str, bool] = {}
        self._ended_changed = trio.Event()

    def statistics(self) -> dict[str, int]:
        return dict(self.counters)

    # ------------------------------------------------------------------ lifecycle
    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.context.bus.subscribe("DeviceStateChange") as changes, trio.open_nursery() as nursery:
            self._attach_lines()
            self._nursery = nursery
            task_status.started()
            nursery.start_soon(self._serve_events)
            self._publish_reachability()
            async for _change in changes:
                self._attach_lines()
                self._publish_reachability()

    def _publish_reachability(self) -> None:
        """``fxo:`` agents are reachable while their line is healthy (routing offers them nothing else)."""
        for settings in self.engine.agent_settings.values():
            endpoint = settings.endpoint
            if endpoint.startswith("fxo:"):
                reachable = self.endpoint_reachable(endpoint)
                if self._reachable.get(endpoint) != reachable:
                    self._reachable[endpoint] = reachable
                    self.engine.endpoint_state_changed(endpoint, reachable)

    def _attach_lines(self) -> None:
        for device in self.context.devices.with_capability(Capability.VOICE_LINE):
            if isinstance(device, VoiceModem) and device.name not in self._lines:
                self._lines[device.name] = device
                device.add_listener(lambda event, d=device: self._listen(d, event))

    def _listen(self, device: VoiceModem, event: Any) -> None:
        if isinstance(event, IncomingCall | CallEnded | DtmfReceived | RingingStopped):
            try:
                self._inbox_send.send_nowait((device, event))
            except trio.WouldBlock:
                log.warning("fxo: event queue full, dropped %s", type(event).__name__)

    async def _serve_events(self) -> None:
        async for device, event in self._inbox:
            if isinstance(event, IncomingCall):
                await self._incoming(device, event)
            elif isinstance(event, DtmfReceived):
                interaction = self._by_line.get(device.name)
                if interaction is not None:
                    self.engine.dtmf_received(interaction, event.digit)
            elif isinstance(event, CallEnded | RingingStopped):
                # The caller hung up (before or after the answer), the line dropped or the modem
                # went away: the interaction ends with its CDR; other lines are not affected.
                interaction = self._by_line.pop(device.name, None)
                if interaction is not None:
                    self._calls.pop(interaction.id, None)
                    cause = event.reason if isinstance(event, CallEnded) else "caller-abandoned"
                    await self.engine.end_interaction(interaction, cause=cause)
                    self._count_ended()

    async def _incoming(self, device: VoiceModem, event: IncomingCall) -> None:
        if device.name in self._by_line:
            return
        cid = event.caller_id
        try:
            interaction = self.engine.new_interaction(
                InteractionKind.VOICE,
                Direction.INBOUND,
                from_=cid.number or cid.number_absent or "unknown",
                to=device.name,
                channel=self.name,
                caller_name=cid.name,
                attributes={"device": device.name, "rings": event.rings},
            )
        except RuntimeError:
            self.counters["rejected"] += 1
            return  # the engine is starting or stopping: let it ring
        self.counters["calls"] += 1
        self._by_line[device.name] = interaction
        if self.engine.route(interaction) is None:
            log.warning("fxo: no route matches line %s; the call is left ringing", device.name)
            self._by_line.pop(device.name, None)
            await self.engine.end_interaction(interaction, cause="no-route")
            self._count_ended()

    def _count_ended(self) -> None:
        self.counters["ended"] += 1
        self._ended_changed.set()
        self._ended_changed = trio.Event()

    async def wait_ended(self, count: int) -> None:
        """Wait until ``count`` calls have ended and been recorded (CDR written)."""
        while self.counters["ended"] < count:
            await self._ended_changed.wait()

    # ------------------------------------------------------------------ what the engine asks
    def _device_of(self, interaction: Interaction) -> VoiceModem | None:
        return self._lines.get(str(interaction.attributes.get("device", interaction.to)))

    async def answer(self, interaction: Interaction) -> bool:
        if interaction.id in self._calls:
            return True
        device = self._device_of(interaction)
        if device is None:
            return False
        self._calls[interaction.id] = await device.answer()
        self.counters["answered"] += 1
        return True

    def media_of(self, interaction: Interaction) -> tuple[Any, Any] | None:
        """The call's (Source, Sink) for the media framework, once answered."""
        call = self._calls.get(interaction.id)
        return (call, call) if call is not None else None

    async def play(
        self, interaction: Interaction, *, prompt: str | None = None, text: str | None = None
    ) -> None:
        """Play a prompt from the engine's library through the modem, paced at real time."""
        call = self._calls.get(interaction.id)
        prompts = getattr(self.context, "prompts", None) or getattr(self.engine, "prompts", None)
        if call is None or not prompt or prompts is None:
            return
        player = prompts.load(prompt).player()
        next_frame = trio.current_time()
        while not call.ended.is_set():
            frame = player.read_frame()
            if frame is None:
                return
            await call.send_frame(np.asarray(frame, dtype=np.int16))
            # Keep ~60 ms ahead of the modem's playout: enough to ride out jitter, little to abort.
            next_frame += 0.02
            await trio.sleep_until(next_frame - 0.06)

    # ------------------------------------------------------------------ fxo:LINE/NUMBER agents
    def endpoint_reachable(self, endpoint: str) -> bool:
        line, number = _agent_endpoint(endpoint)
        device = self._lines.get(line)
        return bool(number) and device is not None and device.health() is DeviceHealth.OK

    async def offer(self, interaction: Interaction, agent: str, endpoint: str) -> None:
        """A caller on one analog line for an agent reached on another: the engine pairs them."""
        await self.engine.crossconnect.offer(self, self, interaction, agent, endpoint)

    async def ring_agent(self, interaction: Interaction, agent: str, endpoint: str) -> AgentLeg:
        """``fxo:LINE/NUMBER``: dial the agent's phone on ``LINE``. An analog line cannot report answer:
        the agent counts as answered once the dial has not failed within ``answer_wait`` (see
        ``_dialout``); a busy or unanswered phone fails the offer and the queue goes on."""
        line, number = _agent_endpoint(endpoint)
        device = self._lines.get(line)
        if device is None or not number or self._nursery is None:
            return AgentLeg("failed")
        if device.call is not None or line in self._by_line or line in self._dialling:
            return AgentLeg("busy")
        self._dialling.add(line)
        try:
            result, call = await dial_out(device, number)
        finally:
            self._dialling.discard(line)
        if call is None:
            return AgentLeg(result.outcome)
        leg = AgentLeg("answered", source=call, sink=call, on_hangup=call.hangup)
        self._nursery.start_soon(_end_leg_with_call, call, leg)
        return leg

    # ------------------------------------------------------------------ dialling out
    def _free_line(self, interaction: Interaction) -> VoiceModem | None:
        wanted = interaction.attributes.get("device")
        for name, device in self._lines.items():
            if wanted and name != wanted:
                continue
            busy = device.call is not None or name in self._by_line or name in self._dialling
            if not busy and device.health() is DeviceHealth.OK:
                return device
        return None

    async def dial(self, interaction: Interaction, number: str, *, caller_id: str, ring_timeout: float) -> DialResult:
        """Dial ``number`` on a free line (``interaction.attributes["device"]`` picks one). Outcomes and
        what an analog line cannot tell: see ``_dialout``. An answered call stays up, owned here.
        ``caller_id`` is the exchange's business on an analog line; ``ring_timeout`` cannot be kept
        without answer supervision (``answer_wait`` decides)."""
        device = self._free_line(interaction)
        if device is None:
            return DialResult("congestion")
        self._dialling.add(device.name)
        try:
            result, call = await dial_out(device, number)
        finally:
            self._dialling.discard(device.name)
        if call is None:
            return result
        interaction.attributes["device"] = device.name
        interaction.attributes["answer_supervision"] = device.line_capabilities.reports_answer
        self._by_line[device.name] = interaction
        self._calls[interaction.id] = call
        self.counters["dialled"] += 1
        return result

    async def connect_agent(self, interaction: Interaction, agent: str, endpoint: str) -> bool:
        """Ring ``agent`` (a SIP phone, a headset) and bridge it to the line's answered call."""
        if interaction.id not in self._calls:
            return False
        return await self.engine.crossconnect.connect(self, interaction, agent, endpoint)

    async def transfer(self, interaction: Interaction, destination: str) -> None:
        raise NotImplementedError("transfer on an analog line (hook flash + dial) is not wired yet")

    async def hangup(self, interaction: Interaction, cause: str = "normal") -> None:
        call = self._calls.pop(interaction.id, None)
        device = self._device_of(interaction)
        if device is not None and self._by_line.get(device.name) is interaction:
            del self._by_line[device.name]
        if call is not None:
            await call.hangup()


def _agent_endpoint(endpoint: str) -> tuple[str, str]:
    """``fxo:line2/5550100`` -> (``line2``, ``5550100``); the number is checked when it is dialled."""
    line, _, number = endpoint.removeprefix("fxo:").partition("/")
    return line, number


async def _end_leg_with_call(call: VoiceCall, leg: AgentLeg) -> None:
    """The agent's line dropped (they hung up): the engine ends the caller's side too."""
    await call.ended.wait()
    leg.ended.set()
