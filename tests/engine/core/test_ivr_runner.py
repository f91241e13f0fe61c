"""A caller walks an IVR flow on a real engine: prompts play, digits choose, the queue takes over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

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

[[queues]]
name = "support"
members = ["alice"]
wrapup = 0

[[routes]]
match = "100"
flow = "main"

[[flows]]
name = "main"
start = "welcome"

[flows.nodes.welcome]
type = "menu"
prompt = "welcome"
options = { "1" = "to_sales", "2" = "to_support", "9" = "bye" }
timeout = 5
retries = 2

[flows.nodes.to_sales]
type = "queue"
queue = "sales"

[flows.nodes.to_support]
type = "queue"
queue = "support"

[flows.nodes.bye]
type = "hangup"
"""


@pytest.fixture(autouse=True)
def prompts(tmp_path: Path) -> None:
    write_prompts(tmp_path, "welcome")  # the engine refuses a flow whose prompt it cannot play


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)



async def test_menu_digit_sends_the_caller_to_the_chosen_queue(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        async with engine.bus.subscribe("t") as events:
            call = voice.call("+34911000111", "100")
            await wait_until(lambda: call.state is InteractionState.IVR and voice.played)
            assert voice.answered == [call.id] and voice.played[0] == (call.id, "welcome")
            voice.press(call, "2")
            await wait_until(lambda: call.state is InteractionState.QUEUED)
            assert call.queue == "support"
            digits = []
            with trio.move_on_after(1):
                async for event in events:
                    if event.event == "DTMFEnd":
                        digits.append((event.fields["Digit"], event.fields["Direction"]))
                        break
            assert digits == [("2", "Received")]
        voice.register("fake:alice")
        await wait_until(lambda: call.state is InteractionState.ACTIVE)


async def test_hangup_option_ends_the_call(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        call = voice.call("+34911000222", "100")
        await wait_until(lambda: voice.played)
        voice.press(call, "9")
        await wait_until(lambda: call.state is InteractionState.ENDED)
        assert voice.hung_up and voice.hung_up[0][0] == call.id
        assert call.attributes["ivr"]["outcome"] == "hangup"


async def test_caller_hanging_up_in_the_flow_is_counted_and_leaks_nothing(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        call = voice.call("+34911000333", "100")
        await wait_until(lambda: voice.played)
        await voice.caller_hangs_up(call)
        await wait_until(lambda: engine.ivr.statistics()["active"] == 0)
        assert call.state is InteractionState.ENDED
        assert engine.acd.router.statistics()["interactions"] == 0


VOICEMAIL_FLOW = CONFIG.replace('options = { "1" = "to_sales", "2" = "to_support", "9" = "bye" }',
                                'options = { "1" = "to_sales", "2" = "to_support", "9" = "bye", "5" = "vm" }') + """
[flows.nodes.vm]
type = "voicemail"
box = "sales"
"""


async def test_voicemail_node_records_stores_and_notifies(tmp_path: Path) -> None:
    import wave

    async with open_test_engine(VOICEMAIL_FLOW, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        async with engine.bus.subscribe("t") as events:
            call = voice.call("+34911000444", "100")
            await wait_until(lambda: voice.played)
            voice.press(call, "5")
            await wait_until(lambda: call.state is InteractionState.ENDED)
            with trio.fail_after(10):
                async for event in events:
                    if event.event == "MessageWaiting":
                        break
        assert event.fields["Mailbox"] == "sales" and event.fields["New"] == 1
        (message,) = await engine.voicemail.list("sales")
        assert message["caller"] == "+34911000444" and message["seconds"] == 3.0
        path = await engine.voicemail.audio(message["id"])
        with wave.open(str(path)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getnframes()) == (8000, 1, 24000)
        (heard,) = await engine.voicemail.list("sales")
        assert heard["heard"] == 1
        # and through the API, as the console's supervisors get it
        import httpx

        from engine.console import add_token

        token = await add_token(engine.store, "vm-test", "supervisor")
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=engine.console.url, headers=auth) as client:
            listing = (await client.get("/api/v1/voicemail", params={"box": "sales"})).json()
            assert [m["id"] for m in listing] == [message["id"]]
            audio = await client.get(f"/api/v1/voicemail/{message['id']}/audio")
            assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
            assert audio.content[:4] == b"RIFF" and len(audio.content) == 44 + 2 * 24000
            assert (await client.get("/api/v1/voicemail/nosuchmessage/audio")).status_code == 404


CALLBACK_FLOW = CONFIG.replace('options = { "1" = "to_sales", "2" = "to_support", "9" = "bye" }',
                               'options = { "1" = "to_sales", "2" = "to_support", "9" = "bye", "3" = "cb" }') + """
[flows.nodes.cb]
type = "callback"
queue = "support"
"""


async def test_callback_keeps_the_place_reserves_the_agent_then_dials_once(tmp_path: Path) -> None:
    async with open_test_engine(CALLBACK_FLOW, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        first = voice.call("+34911000001", "100")  # waits in support (nobody is registered yet)
        await wait_until(lambda: voice.played)
        voice.press(first, "2")
        await wait_until(lambda: first.state is InteractionState.QUEUED)
        second = voice.call("+34911000002", "100")  # asks for a callback and hangs up
        await wait_until(lambda: len(voice.played) >= 2)
        voice.press(second, "3")
        await wait_until(lambda: second.state is InteractionState.ENDED)
        assert engine.queue_detail("support")["waiting"] == 2  # the callback kept its place
        voice.register("fake:alice")
        await wait_until(lambda: first.state is InteractionState.ACTIVE)  # first come, first served
        assert voice.dialed == []
        await voice.caller_hangs_up(first)
        await wait_until(lambda: voice.dialed == ["+34911000002"])
        callback = next(i for i in engine.all_interactions() if i.attributes.get("callback_for") == second.id)
        await wait_until(lambda: callback.state is InteractionState.ACTIVE)
        assert callback.agent == "alice" and (callback.id, "fake:alice") in voice.bridged
        rows = await engine.store.fetchall("SELECT value FROM kv WHERE component = 'callbacks'")
        assert rows == [{"value": "answered"}]
