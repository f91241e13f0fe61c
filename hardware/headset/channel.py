"""The ``headset`` channel: ``headset:NAME`` agent endpoints, the receptionist at the appliance.

An agent whose ``endpoint = "headset:desk"`` gets voice offers on the ``desk`` headset device: while the
offer stands the earpiece plays a ringing tone, and the agent answers from the console or the API
(``POST /api/v1/interactions/{id}/accept`` with ``{"agent": ...}``; reject likewise). Once answered, the
headset's microphone and earpiece are the agent's side of the call and the engine bridges them to the
caller, whatever channel the caller came in on (an analog line, SIP). The agent hangs up with the
``hangup`` action. One call at a time per headset; an unplugged headset gets no offers.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import trio

from engine import Interaction, InteractionKind, InteractionState
from engine.abc import AgentLeg, Capability, DeviceHealth, VoiceChannel
from engine.media import ToneSource

from ._device import Headset

__all__ = ["HeadsetChannel"]

log = logging.getLogger("centralita.hardware.headset.channel")


class _Discard:
    """A Sink for the ringing tone's own side of the little ringing room."""

    def write_frame(self, frame: np.ndarray) -> None:
        pass


class _Quiet:
    """A Source of silence: while ringing, the microphone is not heard by anyone."""

    def read_frame(self) -> np.ndarray:
        return np.zeros(160, dtype=np.int16)


class HeadsetChannel(VoiceChannel):
    name = "headset"
    kinds: ClassVar[frozenset[InteractionKind]] = frozenset({InteractionKind.VOICE})
    schemes: ClassVar[frozenset[str]] = frozenset({"headset"})

    def __init__(self, context: Any, *, ring_country: str = "EU") -> None:
        self.context = context
        self.engine = context.engine
        self.ring_country = ring_country
        #: headset name -> the interaction it is in (ringing or talking)
        self._in_use: dict[str, str] = {}
        self._reachable: dict[str, bool] = {}
        self.counters = {"offers": 0, "answered": 0, "unanswered": 0}

    def statistics(self) -> dict[str, Any]:
        return {**self.counters, "in_use": dict(self._in_use)}

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        # Reachability follows the headsets' health: an agent with an unplugged headset gets no offers.
        async with self.context.bus.subscribe("headset-channel") as changes:
            self._publish_reachability()
            task_status.started()
            async for change in changes:
                if change.event == "DeviceStateChange" and change.fields.get("Device") in self._headsets():
                    self._publish_reachability()

    def _headsets(self) -> dict[str, Headset]:
        return {
            device.name: device
            for device in self.context.devices.with_capability(Capability.AUDIO)
            if isinstance(device, Headset)
        }

    def _publish_reachability(self) -> None:
        for name, device in self._headsets().items():
            reachable = device.health() is DeviceHealth.OK
            if self._reachable.get(name) != reachable:
                self._reachable[name] = reachable
                self.engine.endpoint_state_changed(f"headset:{name}", reachable)

    def _device(self, endpoint: str) -> Headset | None:
        scheme, _, name = endpoint.partition(":")
        return self._headsets().get(name) if scheme == "headset" else None

    def endpoint_reachable(self, endpoint: str) -> bool:
        device = self._device(endpoint)
        return device is not None and device.health() is DeviceHealth.OK

    async def offer(self, interaction: Interaction, agent: str, endpoint: str) -> None:
        # Callers never come in on a headset: every offer here is for another channel's caller and
        # goes through ring_agent (the engine's CrossConnect).
        self.engine.offer_failed(interaction, agent, "failed")

    async def ring_agent(self, interaction: Interaction, agent: str, endpoint: str) -> AgentLeg:
        """Ring in the earpiece until the agent accepts the offer (console/API); cancelled when the
        offer is withdrawn, rejected or times out."""
        device = self._device(endpoint)
        if device is None or device.health() is not DeviceHealth.OK:
            return AgentLeg("failed")
        if device.name in self._in_use:
            return AgentLeg("busy")
        self._in_use[device.name] = interaction.id
        self.counters["offers"] += 1
        bus = self.engine.bus
        bus.publish("AgentCalled", interaction=interaction.id, Agent=agent, Queue=interaction.queue or "",
                    Endpoint=endpoint)
        room = self.engine.media.conference()
        room.join("ringer", ToneSource(self.ring_country, "ringback"), _Discard())
        room.join("agent", _Quiet(), device)
        answered = False
        try:
            async with bus.subscribe(f"headset-ring-{interaction.id}") as events:
                while not self._accepted(interaction, agent):
                    await events.receive()
            answered = True
        finally:
            room.close()
            if not answered:
                self.counters["unanswered"] += 1
                self._release(device.name, interaction.id)
        self.counters["answered"] += 1

        async def hang_up() -> None:
            self._release(device.name, interaction.id)

        return AgentLeg("answered", source=device, sink=device, on_hangup=hang_up)

    @staticmethod
    def _accepted(interaction: Interaction, agent: str) -> bool:
        return interaction.agent == agent and interaction.state is InteractionState.ACTIVE

    def _release(self, name: str, interaction_id: str) -> None:
        if self._in_use.get(name) == interaction_id:
            del self._in_use[name]

    async def hangup(self, interaction: Interaction, cause: str = "normal") -> None:
        for name, held in list(self._in_use.items()):
            if held == interaction.id:
                del self._in_use[name]
