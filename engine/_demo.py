"""``centralita run --demo``: simulated callers, chat visitors and agents on the real engine.

Nothing here is faked inside the engine: a :class:`DemoChannel` is an ordinary voice and messaging
channel whose "network" is simulated. Calls arrive at the IVR number, press a digit, wait in real queues
and ring simulated phones (``demo:NAME`` endpoints) that answer after a few seconds; agents talk for a
while and hang up; chat visitors write and simulated agents accept and reply. Everything the console
shows (queues, events, CDRs) comes from the real routing, IVR and store.
"""

from __future__ import annotations

import logging
import random
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import trio

from ._model import Direction, Interaction, InteractionKind, InteractionState
from .abc import MessagingChannel, VoiceChannel
from .media._wav import wav_header

log = logging.getLogger("centralita.demo")

CALLER_IDS = ["+34911234567", "+34600111222", "+442079460000", "+12025550143", "+34933001122"]
VISITORS = ["visitor-ana", "visitor-ben", "visitor-chen", "visitor-dina"]


def demo_config_text() -> str:
    return resources.files("engine").joinpath("demo.toml").read_text(encoding="utf-8")


#: prompts demo.toml names; flows are checked at load, so the demo writes them before it starts
DEMO_PROMPTS = ("welcome",)


def write_demo_prompts(data_dir: Path) -> None:
    """A short two-note chime for each demo prompt, unless the user has put a recording there."""
    folder = data_dir / "prompts" / "en"
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(8000 * 0.4)) / 8000.0
    chime = np.concatenate([np.sin(2 * np.pi * 660 * t), np.sin(2 * np.pi * 880 * t)]) * 0.25 * 32767
    pcm = chime.astype("<i2").tobytes()
    for name in DEMO_PROMPTS:
        path = folder / f"{name}.wav"
        if not path.exists():
            path.write_bytes(wav_header(1, 8000, len(pcm)) + pcm)


class DemoChannel(VoiceChannel, MessagingChannel):
    """Simulated phones, callers and chat visitors. ``rate``: new interactions per minute."""

    kinds = frozenset({InteractionKind.VOICE, InteractionKind.CHAT})
    schemes = frozenset({"demo"})
    name = "demo"

    def __init__(self, engine: Any, *, rate: float = 6.0, seed: int | None = None) -> None:
        self.engine = engine
        self.rate = rate
        self.random = random.Random(seed)
        self._nursery: trio.Nursery | None = None
        self.calls = 0
        self.chats = 0

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            log.info("demo: simulated callers and chat visitors arrive about %.0f per minute", self.rate)
            while True:
                await trio.sleep(self.random.expovariate(self.rate / 60.0))
                if not self.engine.accepting:
                    continue
                if self.random.random() < 0.7:
                    nursery.start_soon(self._caller)
                else:
                    nursery.start_soon(self._visitor)

    def ready(self) -> bool:
        return self._nursery is not None

    def statistics(self) -> dict[str, Any]:
        return {"simulated_calls": self.calls, "simulated_chats": self.chats}

    # --------------------------------------------------------------------------------- callers

    async def _caller(self) -> None:
        self.calls += 1
        caller = self.random.choice(CALLER_IDS)
        call = self.engine.new_interaction(
            InteractionKind.VOICE, Direction.INBOUND, from_=caller, to="100", channel=self.name, caller_name="Demo caller"
        )
        self.engine.route(call)
        patience = self.random.expovariate(1 / 90.0)
        with trio.move_on_after(patience):
            while call.state not in (InteractionState.ACTIVE, InteractionState.ENDED, InteractionState.WRAPUP):
                if call.state is InteractionState.IVR and self.random.random() < 0.05:
                    self.engine.dtmf_received(call, self.random.choice("12"), 120)
                await trio.sleep(0.5)
        if call.state is InteractionState.ACTIVE:
            await trio.sleep(self.random.uniform(20, 90))  # the conversation
        await self.engine.end_interaction(call, cause="caller")

    async def _visitor(self) -> None:
        self.chats += 1
        chat = self.engine.new_interaction(
            InteractionKind.CHAT, Direction.INBOUND, from_=self.random.choice(VISITORS), to="chat", channel=self.name
        )
        chat.attributes["messages"] = [{"from": chat.from_, "text": "Hello, I have a question about my bill."}]
        self.engine.route(chat)
        with trio.move_on_after(300):
            while chat.state is not InteractionState.ENDED:
                if chat.state is InteractionState.OFFERED:
                    offer = chat.attributes.get("offers", [{}])[-1]
                    await trio.sleep(self.random.uniform(1, 4))
                    try:
                        await self.engine.interaction_action(chat.id, "accept", {"agent": offer.get("agent")})
                        await trio.sleep(self.random.uniform(2, 6))
                        await self.engine.interaction_action(chat.id, "reply", {"text": "Happy to help! Let me check."})
                        await trio.sleep(self.random.uniform(10, 40))
                    except (ValueError, KeyError):
                        continue
                    break
                await trio.sleep(0.5)
        await self.engine.end_interaction(chat, cause="visitor-left")

    # --------------------------------------------------------------------------------- channel API

    def endpoint_reachable(self, endpoint: str) -> bool:
        return endpoint.startswith("demo:")

    async def offer(self, interaction: Interaction, agent: str, endpoint: str) -> None:
        await trio.sleep(self.random.uniform(1, 6))  # ringing
        if self.random.random() < 0.1:
            self.engine.offer_failed(interaction, agent, "no-answer")
            return
        self.engine.offer_answered(interaction, agent)

    async def hangup(self, interaction: Interaction, cause: str = "normal") -> None:
        return None

    async def answer(self, interaction: Interaction) -> None:
        return None

    async def play(self, interaction: Interaction, *, prompt: str | None = None, text: str | None = None) -> None:
        await trio.sleep(2.0)  # a simulated prompt takes a moment

    async def send_message(self, interaction: Interaction, text: str) -> str:
        interaction.attributes.setdefault("messages", []).append({"from": interaction.agent or "agent", "text": text})
        return f"{interaction.id}-{len(interaction.attributes['messages'])}"
