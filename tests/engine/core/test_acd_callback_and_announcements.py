"""The ACD glue around callbacks and position announcements, on a real engine with the fake voice
channel. Both were found by the end-to-end routing test over SIP (tests/integration/routing/)."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path
from typing import Any

import trio

from engine import InteractionState, hookimpl
from engine.abc import VoiceChannel
from engine.routing._announce import announcement_prompts
from engine.testing import FakeVoiceChannel, open_test_engine, wait_until

CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"

[[queues]]
name = "sales"
members = ["alice"]
wrapup = 0
announce_frequency = {frequency}

[[routes]]
match = "100"
queue = "sales"

[[routes]]
match = "200"
flow = "main"

[[flows]]
name = "main"
start = "cb"

[flows.nodes.cb]
type = "callback"
queue = "sales"
"""


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)


class GoneLineChannel(FakeVoiceChannel):
    """Like SIP: an offer for a call that has ended fails at once (there is nothing left to ring with)."""

    async def offer(self, interaction: Any, agent: str, endpoint: str) -> None:
        if interaction.state is InteractionState.ENDED:
            self.rang.append((interaction.id, endpoint))
            self.context.engine.offer_failed(interaction, agent, "failed")
            return
        await super().offer(interaction, agent, endpoint)


class GoneLineChannels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", GoneLineChannel)


async def test_a_callback_is_dialed_without_ringing_the_ended_call_and_frees_the_agent_after(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG.format(frequency=0), plugins=[GoneLineChannels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        asker = voice.call("+34911000002", "200")  # asks for a callback; the flow hangs up
        await wait_until(lambda: asker.state is InteractionState.ENDED)
        voice.register("fake:alice")
        await wait_until(lambda: voice.dialed == ["+34911000002"])
        assert voice.rang == []  # the agent was reserved, not rung with a call that no longer exists
        callback = next(i for i in engine.all_interactions() if i.attributes.get("callback_for") == asker.id)
        # connected once the agent answered too: routing then holds alice on the request's entry
        await wait_until(lambda: engine.acd.router.interaction_state(asker.id) == "active")
        assert callback.state is InteractionState.ACTIVE and callback.agent == "alice"
        await voice.caller_hangs_up(callback)
        # the request's entry completed with the callback: alice is free and takes the next caller
        await wait_until(lambda: not engine.acd.router.has_interaction(asker.id))
        assert engine.acd.router.statistics()["interactions"] == 0
        nxt = voice.call("+34911000003", "100")
        await wait_until(lambda: nxt.state is InteractionState.ACTIVE and nxt.agent == "alice")
        assert voice.dialed == ["+34911000002"]  # exactly once


def _tone(path: Path, seconds: float = 0.1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"".join(struct.pack("<h", int(3000 * math.sin(n / 3))) for n in range(int(8000 * seconds))))


async def test_a_voice_channel_without_announce_plays_the_announcement_prompts(tmp_path: Path) -> None:
    for name in ("queue-you-are-next", "queue-you-are-caller", "number-2"):  # no wait prompts: skipped
        _tone(tmp_path / "prompts" / "en" / f"{name}.wav")
    async with open_test_engine(CONFIG.format(frequency=0.5), plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        async with engine.bus.subscribe("t") as events:
            first = voice.call("+34911000001", "100")
            second = voice.call("+34911000002", "100")
            await wait_until(lambda: [p for i, p in voice.played if i == second.id].count("number-2") >= 2)
            said: dict[str, set[int]] = {}
            with trio.fail_after(20):
                async for event in events:
                    if event.event == "QueueCallerAnnounce":
                        said.setdefault(event.interaction, set()).add(event.fields["Position"])
                    if len(said.get(second.id, ())) and len(said.get(first.id, ())):
                        break
        assert said == {first.id: {1}, second.id: {2}}
        assert (f"{first.id}", "queue-you-are-next") in voice.played
        assert [p for i, p in voice.played if i == second.id][:2] == ["queue-you-are-caller", "number-2"]
        voice.register("fake:alice")
        await wait_until(lambda: first.state is InteractionState.ACTIVE)
        count = len([1 for i, _ in voice.played if i == first.id])
        await voice.caller_hangs_up(first)
        await wait_until(lambda: second.state is InteractionState.ACTIVE)
        await voice.caller_hangs_up(second)
        await wait_until(lambda: engine.acd.statistics()["announcing"] == 0)
        assert len([1 for i, _ in voice.played if i == first.id]) == count  # nothing said once connected


def test_announcement_prompt_names() -> None:
    assert announcement_prompts(1, None, None) == ["queue-you-are-next"]
    assert announcement_prompts(3, 30, 50) == ["queue-you-are-caller", "number-3", "queue-estimated-wait",
                                               "queue-less-than-a-minute"]
    assert announcement_prompts(2, 100, 130) == ["queue-you-are-caller", "number-2", "queue-estimated-wait",
                                                 "number-3", "queue-minutes"]
    assert announcement_prompts(500, 0, 1e9)[1] == "number-99" and announcement_prompts(500, 0, 1e9)[3] == "number-99"
    assert announcement_prompts(4, 10, 20, say_position=False) == ["queue-estimated-wait", "queue-less-than-a-minute"]
    assert announcement_prompts(2, 0, float("inf")) == ["queue-you-are-caller", "number-2"]


class NoRecordChannel(FakeVoiceChannel):
    """Like SIP today: plays prompts, cannot record."""

    record = VoiceChannel.record


class NoRecordChannels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", NoRecordChannel)


OVERFLOW = """
[[agents]]
id = "alice"
endpoint = "fake:alice"
auto_login = false

[[queues]]
name = "sales"
members = ["alice"]
max_wait = 0.2
overflow = { voicemail = "sales" }

[[routes]]
match = "100"
queue = "sales"
"""


async def test_an_overflow_the_channel_cannot_take_ends_the_call_instead_of_leaving_it_up(tmp_path: Path) -> None:
    _tone(tmp_path / "prompts" / "en" / "vm-greeting-sales.wav")
    async with open_test_engine(OVERFLOW, plugins=[NoRecordChannels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        call = voice.call("+34911000009", "100")
        await wait_until(lambda: call.state is InteractionState.ENDED)
        assert voice.hung_up and voice.hung_up[0][0] == call.id
        assert voice.played == []  # no greeting for a message that cannot be taken
        (row,) = await engine.cdr()
        assert row["disposition"] == "CONGESTION"
        assert engine.acd.router.statistics()["interactions"] == 0
