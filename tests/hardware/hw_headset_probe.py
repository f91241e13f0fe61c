"""Run in a subprocess by test_hw_headset.py, so ALSA reads the test's own configuration.

``capture-play OUT.json``: run the Headset driver on ALSA's default PCM, collect 1 s of captured frames
and play 1 s of 1 kHz tone; write what was heard and the driver's counters.
``missing``: a headset name no device has: the driver reports it disconnected (and keeps looking).
``starved OUT.json``: a headset named "jabra" with 4-frame buffers: playout queued past the buffer is
dropped and counted; then the trio thread is blocked while PortAudio keeps calling back, so captured
audio overflows; the counters, the callback errors and whether audio still flows afterwards.
``replug OUT.json``: the "jabra" PCM vanishes from ALSA's configuration and its stream stops mid-use
(what PortAudio sees on a USB unplug), then the configuration comes back; the health events seen.
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


async def starved(out: str) -> None:
    import time

    from hardware.headset import Headset

    headset = Headset(DeviceSpec("desk", "headset", "jabra", options={"rate": 48000, "buffer_frames": 4}))
    tone = (np.sin(np.arange(160) * 2 * np.pi * 1000 / 8000) * 8000).astype(np.int16)
    # the far end talks before the earpiece is open: only buffer_frames wait, the rest are dropped
    for _ in range(14):
        headset.send_frame_nowait(tone)
    queued_dropped = headset.counters["playout_dropped"]
    async with trio.open_nursery() as nursery:
        await nursery.start(headset.run)
        with trio.fail_after(20):
            await headset.wait_health(DeviceHealth.OK, DeviceHealth.UNAVAILABLE, DeviceHealth.DISCONNECTED)
        if headset.health() is DeviceHealth.OK:
            with trio.fail_after(20):
                await headset.wait_playout_drained()
            before = headset.counters["captured_dropped"]
            # The fault under test, not a wait: trio's thread is starved while PortAudio keeps calling
            # back; nobody drains the capture buffer. The callback must drop and count, not raise.
            opens_before = headset.counters["opens"]
            time.sleep(1.0)  # noqa: ASYNC251 - blocking trio on purpose is the fault under test
            starved_dropped = headset.counters["captured_dropped"] - before
            with trio.fail_after(20):
                frame = await headset.receive_frame()  # trio catches up: audio still flows
                frame = await headset.receive_frame()
            result = {
                "queued_dropped": queued_dropped,
                "starved_dropped": starved_dropped,
                "frame_len": len(frame),
                "health_after": headset.health().value,
                "reopened": headset.counters["opens"] != opens_before,
            }
        else:
            result = {}
        stats = dict(headset.statistics())
        nursery.cancel_scope.cancel()
    result.update(health=headset.health().value, reason=headset.describe()["reason"], stats=stats)
    await trio.Path(out).write_text(json.dumps(result))


async def replug(out: str) -> None:
    import os
    from types import SimpleNamespace

    from engine import EventBus
    from engine.testing import wait_until
    from hardware.headset import Headset

    config = os.path.expanduser("~/.asoundrc")
    context = SimpleNamespace(bus=EventBus(), data_dir=None)
    headset = Headset(DeviceSpec("desk", "headset", "jabra", options={"rate": 48000, "rescan_interval": 0.1}), context)
    events: list[dict] = []
    context.bus.add_listener(lambda e: events.append(dict(e.fields)) if e.event == "DeviceStateChange" else None)
    heard = []
    async with trio.open_nursery() as nursery:
        await nursery.start(headset.run)
        with trio.fail_after(20):
            await headset.wait_health(DeviceHealth.OK, DeviceHealth.UNAVAILABLE, DeviceHealth.DISCONNECTED)
        if headset.health() is DeviceHealth.OK:
            with trio.fail_after(20):
                heard.append(len(await headset.receive_frame()))
            # unplug: the device leaves ALSA's list and its open stream stops, as PortAudio's does
            os.rename(config, config + ".unplugged")
            await trio.to_thread.run_sync(headset._stream.abort)
            await wait_until(lambda: "no audio device named" in headset.describe()["reason"])
            gone = {"health": headset.health().value, "reason": headset.describe()["reason"]}
            os.rename(config + ".unplugged", config)  # replug
            with trio.fail_after(20):
                await headset.wait_health(DeviceHealth.OK)
            def recorded() -> int:  # frames the callback delivered, kept or dropped (nobody reads meanwhile)
                return headset.counters["captured_frames"] + headset.counters["captured_dropped"]

            before = recorded()
            await wait_until(lambda: recorded() > before)  # the reopened stream records
            heard.append(len(await headset.receive_frame()))
        else:
            gone = {}
        stats = dict(headset.statistics())
        nursery.cancel_scope.cancel()
    result = {"gone": gone, "events": events, "heard": heard, "stats": stats,
              "health": headset.health().value, "reason": headset.describe()["reason"]}
    await trio.Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    mode, target = sys.argv[1], sys.argv[2]
    trio.run(
        {
            "capture-play": capture_play,
            "no-portaudio": no_portaudio,
            "missing": missing_device,
            "starved": starved,
            "replug": replug,
        }[mode],
        target,
    )
