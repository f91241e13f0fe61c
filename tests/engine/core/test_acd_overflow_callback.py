"""``overflow = { callback = true }``: a caller who has waited ``max_wait`` is called back instead of
being dropped, keeping their place; a caller without a number to call back waits on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import InteractionState, hookimpl
from engine.testing import FakeVoiceChannel, open_test_engine, wait_until, write_prompts

CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"

[[queues]]
name = "sales"
members = ["alice"]
wrapup = 0
max_wait = 0.3
overflow = { callback = true }

[[routes]]
match = "100"
queue = "sales"
"""


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)


async def test_a_caller_past_max_wait_is_called_back_once_in_their_place(tmp_path: Path) -> None:
    write_prompts(tmp_path, "callback-booked")
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        first = voice.call("+34911000001", "100")
        await wait_until(lambda: first.state is InteractionState.ENDED)
        assert (first.id, "callback-booked") in voice.played
        assert not first.attributes.get("abandoned")
        second = voice.call("+34911000002", "100")  # joins behind the booked callback
        await wait_until(lambda: second.state is InteractionState.ENDED)
        assert engine.acd.router.statistics()["interactions"] == 2  # both still hold their place
        voice.register("fake:alice")
        await wait_until(lambda: voice.dialed == ["+34911000001"])  # the first in line is called first
        callback = next(i for i in engine.all_interactions() if i.attributes.get("callback_for") == first.id)
        await wait_until(lambda: callback.state is InteractionState.ACTIVE and callback.agent == "alice")
        await voice.caller_hangs_up(callback)
        await wait_until(lambda: voice.dialed == ["+34911000001", "+34911000002"])
        second_callback = next(i for i in engine.all_interactions() if i.attributes.get("callback_for") == second.id)
        await wait_until(lambda: second_callback.state is InteractionState.ACTIVE)
        await voice.caller_hangs_up(second_callback)
        # nothing is left in routing to dial: each booked callback was dialed exactly once, although both
        # waited past max_wait again while booked
        await wait_until(lambda: engine.acd.router.statistics()["interactions"] == 0)
        assert voice.dialed == ["+34911000001", "+34911000002"]


async def test_a_caller_with_no_number_to_call_back_keeps_waiting(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        anonymous = voice.call("anonymous", "100")
        await wait_until(lambda: engine.acd.router.queue_status("sales", now=engine.acd.clock())["overflowed"] == 1)
        assert anonymous.state is InteractionState.QUEUED
        voice.register("fake:alice")
        await wait_until(lambda: anonymous.state is InteractionState.ACTIVE and anonymous.agent == "alice")
        assert voice.dialed == []
