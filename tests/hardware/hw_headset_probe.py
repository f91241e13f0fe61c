"""Run in a subprocess by test_hw_headset.py, so ALSA reads the test's own configuration.

``capture-play OUT.json``: run the Headset driver on ALSA's default PCM, collect 1 s of captured frames
and play 1 s of 1 kHz tone; write what was heard and the driver's counters.
``missing``: a headset name no device has: the driver reports it disconnected (and keeps looking).
``no-portaudio``: with a sounddevice that cannot load PortAudio, run the real engine with the
headset plugin and report the headset's health and the engine's readiness.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import trio

from engine.abc import DeviceHealth, DeviceSpec


async def capture_play(out: str) -> None:
    from hardware.headset import Headset

    headset = Headset(DeviceSpec("desk", "headset", "default", options={"rate": 48000, "buffer_frames": 200}))
    tone = (np.sin(np.arange(8000) * 2 * np.pi * 1000 / 8000) * 8000).astype(np.int16)
    async with trio.open_nursery() as nursery:
        await nursery.start(headset.run)
        with trio.fail_after(20):
            await headset.wait_health(DeviceHealth.OK, DeviceHealth.UNAVAILABLE, DeviceHealth.DISCONNECTED)
        frames = []
        if headset.health() is DeviceHealth.OK:
            for start in range(0, len(tone), 160):
                headset.send_frame_nowait(tone[start : start + 160])
            with trio.fail_after(20):
                while len(frames) < 50:
                    frames.append(await headset.receive_frame())
            with trio.fail_after(20):
                await headset.wait_playout_drained()
        stats = dict(headset.statistics())
        nursery.cancel_scope.cancel()
    heard = np.concatenate(frames) if frames else np.zeros(0, np.int16)
    await trio.Path(out).write_text(
        json.dumps(
            {
                "health": headset.health().value,
                "reason": headset.describe()["reason"],
                "stats": stats,
                "heard": heard.tolist(),
            }
        )
    )


async def no_portaudio(out: str) -> None:
    from engine.testing import open_test_engine
    from hardware.headset import plugin

    config = '[[devices]]\nname = "desk"\ndriver = "headset"\nport = "default"\n'
    async with open_test_engine(config, plugins=[plugin]) as engine:
        device = engine.devices.get("desk")
        with trio.fail_after(20):
            await device.wait_health(DeviceHealth.UNAVAILABLE)
        result = {
            "health": device.health().value,
            "reason": device.describe()["reason"],
            "status": engine.status()["devices"]["desk"],
        }
    await trio.Path(out).write_text(json.dumps(result))


async def missing_device(out: str) -> None:
    from hardware.headset import Headset

    headset = Headset(DeviceSpec("desk", "headset", "Jabra Evolve 20", options={"rescan_interval": 0.1}))
    async with trio.open_nursery() as nursery:
        await nursery.start(headset.run)
        with trio.fail_after(20):
            await headset.wait_health(DeviceHealth.DISCONNECTED, DeviceHealth.UNAVAILABLE)
        nursery.cancel_scope.cancel()
    await trio.Path(out).write_text(
        json.dumps({"health": headset.health().value, "reason": headset.describe()["reason"]})
    )


if __name__ == "__main__":
    mode, target = sys.argv[1], sys.argv[2]
    trio.run(
        {"capture-play": capture_play, "no-portaudio": no_portaudio, "missing": missing_device}[mode], target
    )
