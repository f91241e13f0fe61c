"""Analog-line calls inside the real engine: an emulated call becomes a routed voice interaction, and
the caller hanging up (before or after the answer) ends it with a CDR."""

from __future__ import annotations

from functools import partial

import trio

from engine.abc import DeviceHealth
from engine.testing import open_test_engine
from hardware.voice_modem import plugin as voice_plugin


def config(link: str) -> str:
    return f"""
[[devices]]
name = "line1"
driver = "voice-modem"
port = "{link}"
options = {{ command_timeout = 1.0, ring_gone = 0.6 }}

[[queues]]
name = "support"
members = []

[[routes]]
match = "line1"
queue = "support"
"""


async def test_a_call_on_the_line_is_an_interaction_and_its_hangup_writes_the_cdr(
    nursery, voice_emulator, tmp_path
) -> None:
    async with open_test_engine(
        config(voice_emulator.link), plugins=[voice_plugin], data_dir=tmp_path
    ) as engine:
        line = engine.devices.get("line1")
        with trio.fail_after(15):
            await line.wait_health(DeviceHealth.OK)
        async with engine.bus.subscribe("fxo-test") as events:
            await voice_emulator.ring("5551234", "ANA LOPEZ", rings=2)
            with trio.fail_after(15):
                async for hangup in events:
                    if hangup.event == "Hangup":
                        break
        with trio.fail_after(15):
            await engine.channels["fxo"].wait_ended(1)
        (interaction,) = engine.list_interactions()
        assert (interaction["from"], interaction["to"], interaction["kind"]) == ("5551234", "line1", "voice")
        assert interaction["queue"] == "support", interaction
        assert interaction["state"] in ("ended", "wrapup"), interaction
        assert hangup.fields["Cause"] == "caller-abandoned"
        rows = await engine.cdr()
        assert [(r["src"], r["dst"], r["disposition"]) for r in rows] == [("5551234", "line1", "NO ANSWER")]
        assert '"ANA LOPEZ" <5551234>' == rows[0]["clid"]


def write_prompt(path, frequency: float, seconds: float) -> None:
    import wave

    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    tone = (np.sin(np.arange(int(8000 * seconds)) * 2 * np.pi * frequency / 8000) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(tone.tobytes())


async def test_ivr_answers_plays_its_prompt_through_the_modem_and_hears_the_callers_dtmf(
    nursery, voice_emulator, tmp_path
) -> None:
    import numpy as np

    write_prompt(tmp_path / "prompts" / "en" / "welcome.wav", 440, 0.3)
    write_prompt(tmp_path / "prompts" / "en" / "menu.wav", 440, 0.2)
    text = (
        config(voice_emulator.link)
        .replace('queue = "support"\n', 'flow = "main"\n', 1)
        .replace(
            '[[routes]]\nmatch = "line1"\nqueue = "support"', '[[routes]]\nmatch = "line1"\nflow = "main"'
        )
    )
    text += """
[[flows]]
name = "main"
start = "welcome"

[flows.nodes.welcome]
type = "play"
prompt = "welcome"
next = "menu"

[flows.nodes.menu]
type = "menu"
prompt = "menu"
options = { "1" = "support" }
timeout = 10

[flows.nodes.support]
type = "queue"
queue = "support"
"""
    async with open_test_engine(text, plugins=[voice_plugin], data_dir=tmp_path) as engine:
        with trio.fail_after(15):
            await engine.devices.get("line1").wait_health(DeviceHealth.OK)
        nursery.start_soon(partial(voice_emulator.ring, "600111222", "", rings=4, interval=0.2))
        # The IVR answers and plays the prompts: ~0.5 s of 440 Hz reaches the line.
        await voice_emulator.wait_until(lambda e: len(e.received_audio()) >= 4000, timeout=15)
        heard = voice_emulator.received_audio()[:2400].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(heard))
        assert abs(np.fft.rfftfreq(len(heard), 1 / 8000)[int(np.argmax(spectrum))] - 440) < 10
        await voice_emulator.send_dtmf("1")
        with trio.fail_after(15):
            async with engine.bus.subscribe("fxo-ivr-test") as events:
                while not any(
                    i["queue"] == "support" and i["state"] == "queued" for i in engine.list_interactions()
                ):
                    await events.receive()
        await voice_emulator.remote_hangup("l")
        with trio.fail_after(15):
            await engine.channels["fxo"].wait_ended(1)
        rows = await engine.cdr()
        assert [(r["src"], r["dst"]) for r in rows] == [("600111222", "line1")]
        await voice_emulator.wait_until(lambda e: not e.state.off_hook)


async def test_unplugging_one_line_mid_call_ends_only_its_call_with_a_cdr(nursery, tmp_path) -> None:
    from hardware.emulators import VoiceModemEmulator

    first, second = (VoiceModemEmulator(link_dir=str(tmp_path / name)) for name in ("a", "b"))
    for emulator in (first, second):
        await nursery.start(emulator.run)
    text = f"""
[[devices]]
name = "line1"
driver = "voice-modem"
port = "{first.link}"
options = {{ command_timeout = 1.0 }}

[[devices]]
name = "line2"
driver = "voice-modem"
port = "{second.link}"
options = {{ command_timeout = 1.0 }}

[[queues]]
name = "support"
members = []

[[routes]]
match = "line1"
queue = "support"

[[routes]]
match = "line2"
queue = "support"
"""
    data = tmp_path / "data"
    data.mkdir()
    async with open_test_engine(text, plugins=[voice_plugin], data_dir=data) as engine:
        with trio.fail_after(15):
            for name in ("line1", "line2"):
                await engine.devices.get(name).wait_health(DeviceHealth.OK)
        channel = engine.channels["fxo"]
        nursery.start_soon(partial(first.ring, "600000001", "", rings=3, interval=0.1))
        nursery.start_soon(partial(second.ring, "600000002", "", rings=3, interval=0.1))
        with trio.fail_after(15):
            async with engine.bus.subscribe("fxo-unplug-test") as events:
                while len(engine.list_interactions()) < 2:
                    await events.receive()
        for interaction in engine.interactions.values():
            assert await channel.answer(interaction)  # as an agent's pickup would
        first.unplug()
        with trio.fail_after(15):
            await channel.wait_ended(1)
        states = {i["from"]: i["state"] for i in engine.list_interactions()}
        assert states["600000002"] == "queued" and states["600000001"] in ("ended", "wrapup")
        rows = await engine.cdr()
        assert [r["src"] for r in rows] == ["600000001"]
        assert second.state.voice  # the other call is untouched
        first.replug()
        with trio.fail_after(15):
            await engine.devices.get("line1").wait_health(DeviceHealth.OK)
