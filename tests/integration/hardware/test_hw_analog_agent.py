"""An ``fxo:LINE/NUMBER`` agent: a caller on one analog line is queued to an agent whose phone is
dialled on another line; they hear each other, and the agent hanging up puts both lines on hook."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import trio
from analog_helpers import dominant_frequency, tone

from engine.abc import DeviceHealth
from engine.testing import open_test_engine
from hardware.emulators import VoiceModemEmulator
from hardware.voice_modem import plugin as voice_plugin

CALLER_HZ, AGENT_HZ = 700, 1300


def two_lines(caller_link: str, agent_link: str) -> str:
    """line1 takes callers into the queue; its agent is dialled on line2."""
    return f"""
[[devices]]
name = "line1"
driver = "voice-modem"
port = "{caller_link}"
options = {{ command_timeout = 1.0, ring_gone = 2.0 }}

[[devices]]
name = "line2"
driver = "voice-modem"
port = "{agent_link}"
options = {{ command_timeout = 1.0, answer_wait = 0.5 }}

[[agents]]
id = "bob"
endpoint = "fxo:line2/5550100"

[[queues]]
name = "support"
members = ["bob"]
timeout = 20
wrapup = 0

[[routes]]
match = "line1"
queue = "support"
"""


async def speak(emulator: VoiceModemEmulator, frequency: float, stop: trio.Event) -> None:
    """100 ms of a tone every 100 ms, like a real line, until told to stop."""
    chunk = tone(frequency, 0.1)
    next_chunk = trio.current_time()
    while not stop.is_set():
        await emulator.send_audio(chunk)
        next_chunk += 0.1
        await trio.sleep_until(next_chunk)


async def test_a_caller_on_one_line_reaches_an_agent_dialled_on_another(nursery, tmp_path: Path) -> None:
    caller_line, agent_line = (VoiceModemEmulator(link_dir=str(tmp_path / name)) for name in ("in", "out"))
    for emulator in (caller_line, agent_line):
        await nursery.start(emulator.run)
    text = two_lines(caller_line.link, agent_line.link)
    data = tmp_path / "data"
    data.mkdir()
    async with open_test_engine(text, plugins=[voice_plugin], data_dir=data) as engine:
        with trio.fail_after(15):
            for name in ("line1", "line2"):
                await engine.devices.get(name).wait_health(DeviceHealth.OK)
        async with engine.bus.subscribe("fxo-agent") as events:
            nursery.start_soon(partial(caller_line.ring, "600555666", "", rings=300, interval=0.2))
            with trio.fail_after(30):
                async for event in events:
                    if event.event == "BridgeEnter":
                        break
            assert agent_line.state.dialled == ["5550100"]
            assert caller_line.state.off_hook and agent_line.state.off_hook
            stop = trio.Event()
            nursery.start_soon(speak, caller_line, CALLER_HZ, stop)
            nursery.start_soon(speak, agent_line, AGENT_HZ, stop)
            marks = len(caller_line.received_audio()), len(agent_line.received_audio())
            await caller_line.wait_until(lambda e: len(e.received_audio()) - marks[0] >= 16000, timeout=30)
            await agent_line.wait_until(lambda e: len(e.received_audio()) - marks[1] >= 16000, timeout=30)
            stop.set()
            assert abs(dominant_frequency(caller_line.received_audio()[-8000:]) - AGENT_HZ) < 20
            assert abs(dominant_frequency(agent_line.received_audio()[-8000:]) - CALLER_HZ) < 20
            await agent_line.remote_hangup("l")  # the agent puts the phone down
            await caller_line.wait_until(lambda e: not e.state.off_hook, timeout=20)
            await agent_line.wait_until(lambda e: not e.state.off_hook, timeout=20)
            with trio.fail_after(20):
                while not await engine.cdr():
                    await events.receive()
        (row,) = await engine.cdr()
        assert (row["src"], row["dst"], row["dstchannel"], row["disposition"]) == ("600555666", "line1", "bob", "ANSWERED")


async def test_a_busy_agent_phone_fails_the_offer_and_the_caller_waits_for_the_next_one(nursery, tmp_path: Path) -> None:
    caller_line, agent_line = (VoiceModemEmulator(link_dir=str(tmp_path / name)) for name in ("in", "out"))
    for emulator in (caller_line, agent_line):
        await nursery.start(emulator.run)
    agent_line.dial_result = "BUSY"  # the agent's phone is engaged the first time
    text = two_lines(caller_line.link, agent_line.link)
    data = tmp_path / "data"
    data.mkdir()
    async with open_test_engine(text, plugins=[voice_plugin], data_dir=data) as engine:
        with trio.fail_after(15):
            for name in ("line1", "line2"):
                await engine.devices.get(name).wait_health(DeviceHealth.OK)
        async with engine.bus.subscribe("fxo-agent-busy") as events:
            nursery.start_soon(partial(caller_line.ring, "600777888", "", rings=300, interval=0.2))
            seen = []
            with trio.fail_after(60):
                async for event in events:
                    seen.append(event.event)
                    if event.event == "BridgeEnter":
                        break
        # The first dial met a busy phone: that offer failed, the caller stayed queued (the line kept
        # ringing, unanswered) and the next offer reached the agent.
        assert agent_line.state.dialled == ["5550100", "5550100"]
        assert seen.count("AgentRingNoAnswer") >= 1 and "Hangup" not in seen
        assert engine.crossconnect.statistics()["failed"] == 1
        await caller_line.remote_hangup("l")
        await agent_line.wait_until(lambda e: not e.state.off_hook, timeout=20)
