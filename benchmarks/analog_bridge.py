"""CPU cost of one bridged analog call: a caller on one emulated voice modem talking to an agent dialled
on another (``fxo:LINE/NUMBER``), through the real drivers, the fxo channel, CrossConnect and the
engine.media conference mixer.

Prints one JSON object: process CPU time per second of wall time while the engine and both emulators
sit idle, and while one call is bridged with both sides talking (100 ms of tone every 100 ms each way);
the difference is what one analog call costs. The emulators' firmware side runs in the same process, so
the call figure includes it (a real modem does that work in its own chip): it is an upper bound.

    .venv/bin/python benchmarks/analog_bridge.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import trio

from engine.abc import DeviceHealth
from engine.testing import open_test_engine
from hardware.emulators import VoiceModemEmulator
from hardware.voice_modem import plugin as voice_plugin

CONFIG = """
[[devices]]
name = "line1"
driver = "voice-modem"
port = "{caller}"
options = {{ command_timeout = 2.0, ring_gone = 3.0, keepalive = 3600.0 }}

[[devices]]
name = "line2"
driver = "voice-modem"
port = "{agent}"
options = {{ command_timeout = 2.0, answer_wait = 0.5, keepalive = 3600.0 }}

[[agents]]
id = "bob"
endpoint = "fxo:line2/5550100"

[[queues]]
name = "support"
members = ["bob"]
timeout = 30
wrapup = 0

[[routes]]
match = "line1"
queue = "support"
"""


async def speak(emulator: VoiceModemEmulator, frequency: float) -> None:
    chunk = (np.sin(np.arange(800) * 2 * np.pi * frequency / 8000) * 8000).astype(np.int16)
    next_chunk = trio.current_time()
    while True:
        await emulator.send_audio(chunk)
        next_chunk += 0.1
        await trio.sleep_until(next_chunk)


async def cpu_per_second(seconds: float) -> float:
    cpu, wall = time.process_time(), time.perf_counter()
    await trio.sleep(seconds)  # the measurement window itself
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


async def main(seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "data").mkdir()
        async with trio.open_nursery() as nursery:
            caller, agent = (VoiceModemEmulator(link_dir=str(directory / name)) for name in ("in", "out"))
            for emulator in (caller, agent):
                await nursery.start(emulator.run)
            text = CONFIG.format(caller=caller.link, agent=agent.link)
            async with open_test_engine(text, plugins=[voice_plugin], data_dir=directory / "data") as engine:
                with trio.fail_after(30):
                    for name in ("line1", "line2"):
                        await engine.devices.get(name).wait_health(DeviceHealth.OK)
                idle = await cpu_per_second(seconds)
                async with engine.bus.subscribe("bench") as events:
                    nursery.start_soon(partial(caller.ring, "600111222", "", rings=300, interval=0.2))
                    with trio.fail_after(60):
                        async for event in events:
                            if event.event == "BridgeEnter":
                                break
                nursery.start_soon(speak, caller, 700)
                nursery.start_soon(speak, agent, 1300)
                received = len(caller.received_audio()), len(agent.received_audio())
                bridged = await cpu_per_second(seconds)
                carried = (len(caller.received_audio()) - received[0], len(agent.received_audio()) - received[1])
            nursery.cancel_scope.cancel()
    return {
        "benchmark": "analog_bridge",
        "seconds": seconds,
        "idle_cpu_ms_per_s": round(idle * 1000, 2),
        "bridged_cpu_ms_per_s": round(bridged * 1000, 2),
        "one_call_cpu_ms_per_s": round((bridged - idle) * 1000, 2),
        "one_call_cpu_share_of_a_core": round(bridged - idle, 4),
        "audio_carried_s": [round(n / 8000, 2) for n in carried],
        "loadavg": os.getloadavg(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(trio.run(main, args.seconds)))
