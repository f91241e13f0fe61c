"""Run in a subprocess by test_hw_headset_agent.py, so ALSA reads the test's own ``~/.asoundrc``
(playback into ``played.raw``, capture from ``in.raw``).

``fxo-to-headset OUT.json``: a caller rings the emulated analog line, the queue offers the call to the
receptionist whose endpoint is ``headset:desk``, the earpiece rings, the probe accepts the offer through
the engine's API, the caller talks, then the agent hangs up through the API. Writes what the caller
heard, where in ``played.raw`` the ringing and the call were, the events and the CDR.
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

import numpy as np
import trio

from engine.abc import DeviceHealth
from engine.testing import open_test_engine, wait_until
from hardware.emulators import VoiceModemEmulator
from hardware.headset import plugin as headset_plugin
from hardware.voice_modem import plugin as voice_plugin

CALLER_HZ = 700


def config(link: str) -> str:
    return f"""
[[devices]]
name = "line1"
driver = "voice-modem"
port = "{link}"
options = {{ command_timeout = 1.0, ring_gone = 2.0 }}

[[devices]]
name = "desk"
driver = "headset"
port = "default"
options = {{ rate = 48000, buffer_frames = 200 }}

[[agents]]
id = "reception"
endpoint = "headset:desk"

[[queues]]
name = "front"
members = ["reception"]
timeout = 30
wrapup = 0

[[routes]]
match = "line1"
queue = "front"
"""


def played_samples(directory: Path) -> int:
    path = directory / "played.raw"
    return path.stat().st_size // 2 if path.exists() else 0


async def caller_speaks(emulator: VoiceModemEmulator, stop: trio.Event) -> None:
    """100 ms of the caller's tone every 100 ms, like a real line, until told to stop."""
    chunk = (np.sin(np.arange(800) * 2 * np.pi * CALLER_HZ / 8000) * 8000).astype(np.int16)
    next_chunk = trio.current_time()
    while not stop.is_set():
        await emulator.send_audio(chunk)
        next_chunk += 0.1
        await trio.sleep_until(next_chunk)


async def fxo_to_headset(out: Path) -> None:
    directory = out.parent
    result: dict = {}
    (directory / "data").mkdir(exist_ok=True)
    async with trio.open_nursery() as nursery:
        emulator = VoiceModemEmulator(link_dir=str(directory / "serial"))
        await nursery.start(emulator.run)
        async with open_test_engine(
            config(emulator.link), plugins=[voice_plugin, headset_plugin], data_dir=directory / "data"
        ) as engine:
            with trio.fail_after(20):
                await engine.devices.get("line1").wait_health(DeviceHealth.OK)
                headset_health = await engine.devices.get("desk").wait_health(
                    DeviceHealth.OK, DeviceHealth.UNAVAILABLE, DeviceHealth.DISCONNECTED
                )
            result["headset_health"] = headset_health.value
            if headset_health is not DeviceHealth.OK:
                result["reason"] = engine.devices.get("desk").describe()["reason"]
                out.write_text(json.dumps(result))
                nursery.cancel_scope.cancel()
                return
            await wait_until(lambda: engine.endpoint_reachable("headset:desk"), timeout=20)
            async with engine.bus.subscribe("probe") as events:
                nursery.start_soon(partial(emulator.ring, "600111222", "ANA LOPEZ", rings=300, interval=0.2))  # rings until answered
                with trio.fail_after(20):
                    async for event in events:
                        if event.event == "AgentCalled":
                            called = event
                            break
                result["called"] = dict(called.fields)
                ring_start = played_samples(directory)
                # The earpiece rings for a while before the receptionist picks up: 8 s, more than one
                # cadence (1 s on, 4 s off) plus the sound path's latency (ALSA and the test's FIFO).
                await wait_until(lambda: played_samples(directory) - ring_start >= 8 * 8000, timeout=30)
                result["ring"] = [ring_start, played_samples(directory)]
                result["line_off_hook_while_ringing"] = emulator.state.off_hook
                await engine.interaction_action(called.interaction, "accept", {"agent": "reception"})
                with trio.fail_after(20):
                    async for event in events:
                        if event.event == "BridgeEnter":
                            break
                mark = len(emulator.received_audio())
                talk_start = played_samples(directory)
                stop = trio.Event()
                nursery.start_soon(caller_speaks, emulator, stop)
                await emulator.wait_until(lambda e: len(e.received_audio()) - mark >= 16000, timeout=30)
                await wait_until(lambda: played_samples(directory) - talk_start >= 7 * 8000, timeout=30)
                stop.set()
                result["talk"] = [talk_start, played_samples(directory)]
                result["heard_by_caller"] = emulator.received_audio()[mark:].tolist()
                await engine.interaction_action(called.interaction, "hangup", {})
                await emulator.wait_until(lambda e: not e.state.off_hook, timeout=20)
                with trio.fail_after(20):
                    while not await engine.cdr():
                        await events.receive()
            result["cdr"] = await engine.cdr()
            result["headset"] = engine.channels["headset"].statistics()
        nursery.cancel_scope.cancel()
    out.write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    mode, target = sys.argv[1], Path(sys.argv[2])
    trio.run({"fxo-to-headset": fxo_to_headset}[mode], target)
