"""Small, real implementations of the plugin ABCs for tests: they do what the ABC promises, in memory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from .._context import PluginContext
from .._model import Contact, Direction, Interaction, InteractionKind
from ..abc import Capability, CrmBackend, Device, DeviceHealth, DeviceSpec, DialResult, MessagingChannel, VoiceChannel


class FakeChannel(MessagingChannel):
    """A messaging channel whose 'network' is a list: :meth:`receive` injects, ``sent`` records."""

    kinds = frozenset({InteractionKind.CHAT})

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.name = context.name
        self.sent: list[tuple[str, str]] = []
        self._ready = False

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        self._ready = True
        task_status.started()
        await trio.sleep_forever()

    def ready(self) -> bool:
        return self._ready

    def receive(self, sender: str, to: str, text: str) -> Interaction:
        """A customer writes: a new chat interaction, routed by ``to`` like a real one."""
        interaction = self.context.engine.new_interaction(
            InteractionKind.CHAT, Direction.INBOUND, from_=sender, to=to, channel=self.name
        )
        interaction.attributes.setdefault("messages", []).append(text)
        self.context.engine.route(interaction)
        return interaction

    async def send_message(self, interaction: Interaction, text: str) -> str:
        self.sent.append((interaction.id, text))
        return f"{interaction.id}-{len(self.sent)}"


class FakeCrm(CrmBackend):
    """A CRM held in a dict keyed by phone number or e-mail address."""

    def __init__(self, contacts: Mapping[str, Contact] | None = None) -> None:
        self.contacts = dict(contacts or {})
        self.recorded: list[tuple[str, str | None]] = []

    async def lookup(self, *, phone: str | None = None, email: str | None = None) -> Contact | None:
        return self.contacts.get(phone or "") or self.contacts.get(email or "")

    async def record_interaction(self, interaction: Interaction, disposition: str | None = None) -> None:
        self.recorded.append((interaction.id, disposition))


class FakeDevice(Device):
    """A device that reports DTMF digits fed to it by the test."""

    capabilities = Capability.DTMF_IN

    def __init__(self, spec: DeviceSpec, context: PluginContext) -> None:
        self.spec = spec
        self.name = spec.name
        self.digits: trio.MemorySendChannel[str]
        self._send, self._receive = trio.open_memory_channel[str](100)
        self.heard: list[str] = []
        self._health = DeviceHealth.STARTING

    def feed_nowait(self, digit: str) -> None:
        self._send.send_nowait(digit)

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        self._health = DeviceHealth.OK
        task_status.started()
        async for digit in self._receive:
            self.heard.append(digit)

    def health(self) -> DeviceHealth:
        return self._health


class FakeVoiceChannel(VoiceChannel):
    """A voice channel with phones in memory: ``fake:NAME`` endpoints.

    ``registered`` endpoints are reachable; those in ``answering`` pick up an offer at once; others ring
    until the engine withdraws the offer. :meth:`call` makes an inbound call routed like a real one.
    """

    kinds = frozenset({InteractionKind.VOICE})
    schemes = frozenset({"fake"})

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.name = context.name
        self.registered: set[str] = set()
        self.answering: set[str] = set()
        self.rang: list[tuple[str, str]] = []
        self.bridged: list[tuple[str, str]] = []
        self.hung_up: list[tuple[str, str]] = []
        self.answered: list[str] = []
        self.played: list[tuple[str, str]] = []
        self.transferred: list[tuple[str, str]] = []
        self.called: dict[str, str] = {}
        self.recorded: list[tuple[str, str]] = []
        self.message_seconds = 3.0
        self.dialed: list[str] = []

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    async def answer(self, interaction: Interaction) -> None:
        self.answered.append(interaction.id)

    async def play(self, interaction: Interaction, *, prompt: str | None = None, text: str | None = None) -> None:
        self.played.append((interaction.id, prompt or f"tts:{text}"))
        await trio.sleep(0)

    async def transfer(self, interaction: Interaction, destination: str) -> None:
        self.transferred.append((interaction.id, destination))

    async def dial(self, interaction: Interaction, number: str, *, caller_id: str, ring_timeout: float) -> DialResult:
        """Called parties are scripted in ``called``: number -> ``answered`` (a person), ``machine``,
        ``busy``, ``no-answer``...; unknown numbers answer as a person."""
        self.dialed.append(number)
        outcome = self.called.get(number, "answered")
        if outcome == "machine":
            return DialResult("answered", machine=True)
        return DialResult(outcome, status=486 if outcome == "busy" else None)

    async def connect_agent(self, interaction: Interaction, agent: str, endpoint: str) -> bool:
        if endpoint not in self.answering:
            return False
        self.bridged.append((interaction.id, endpoint))
        return True

    async def record(self, interaction: Interaction, path: Path, *, max_seconds: float, silence_seconds: float) -> float:
        """The caller "says" ``self.message_seconds`` of a 440 Hz tone (a real 8 kHz mono WAV)."""
        import wave

        import numpy as np

        seconds = min(self.message_seconds, max_seconds)
        samples = (8000 * np.sin(2 * np.pi * 440 * np.arange(int(8000 * seconds)) / 8000)).astype("<i2")
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(samples.tobytes())
        self.recorded.append((interaction.id, str(path)))
        return seconds

    def press(self, interaction: Interaction, digits: str) -> None:
        """The caller presses keys (as RFC 4733 events would report them)."""
        for digit in digits:
            self.context.engine.dtmf_received(interaction, digit, 100)

    def register(self, endpoint: str, *, answering: bool = True) -> None:
        self.registered.add(endpoint)
        if answering:
            self.answering.add(endpoint)
        self.context.engine.endpoint_state_changed(endpoint, True)

    def endpoint_reachable(self, endpoint: str) -> bool:
        return endpoint in self.registered

    def call(self, caller: str, dialled: str) -> Interaction:
        engine = self.context.engine
        interaction = engine.new_interaction(
            InteractionKind.VOICE, Direction.INBOUND, from_=caller, to=dialled, channel=self.name
        )
        engine.route(interaction)
        return interaction

    async def offer(self, interaction: Interaction, agent: str, endpoint: str) -> None:
        self.rang.append((interaction.id, endpoint))
        if endpoint in self.answering:
            if self.context.engine.offer_answered(interaction, agent):
                self.bridged.append((interaction.id, endpoint))
            return
        await trio.sleep_forever()  # ringing until the engine cancels the offer

    async def hangup(self, interaction: Interaction, cause: str = "normal") -> None:
        self.hung_up.append((interaction.id, cause))

    async def caller_hangs_up(self, interaction: Interaction) -> None:
        await self.context.engine.end_interaction(interaction, cause="caller")
