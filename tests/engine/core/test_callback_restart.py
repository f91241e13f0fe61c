"""A booked callback survives an engine restart: it is still in line afterwards and dialed exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import InteractionState, hookimpl
from engine.testing import FakeVoiceChannel, open_test_engine, wait_until

CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"

[[queues]]
name = "sales"
members = ["alice"]
wrapup = 0

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


async def test_a_callback_booked_before_a_restart_is_dialed_once_after_it(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        first = voice.call("+34911000001", "200")
        await wait_until(lambda: first.state is InteractionState.ENDED)
        await wait_until(lambda: engine.acd.router.statistics()["interactions"] == 1)
        second = voice.call("+34911000002", "200")
        await wait_until(lambda: second.state is InteractionState.ENDED)
        await wait_until(lambda: engine.acd.router.statistics()["interactions"] == 2)
        assert voice.dialed == []  # nobody to take them yet

    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        assert engine.acd.router.statistics()["interactions"] == 2  # both requests are back in line
        voice.register("fake:alice")
        await wait_until(lambda: voice.dialed == ["+34911000001"])  # in the order they were booked
        callback = next(i for i in engine.all_interactions() if i.attributes.get("callback_for") == first.id)
        await wait_until(lambda: callback.state is InteractionState.ACTIVE and callback.agent == "alice")
        await voice.caller_hangs_up(callback)
        await wait_until(lambda: voice.dialed == ["+34911000001", "+34911000002"])
        second_callback = next(i for i in engine.all_interactions() if i.attributes.get("callback_for") == second.id)
        await wait_until(lambda: second_callback.state is InteractionState.ACTIVE)
        await voice.caller_hangs_up(second_callback)
        await wait_until(lambda: engine.acd.router.statistics()["interactions"] == 0)

    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        voice.register("fake:alice")
        assert engine.acd.router.statistics()["interactions"] == 0  # done callbacks do not come back
        assert voice.dialed == []
