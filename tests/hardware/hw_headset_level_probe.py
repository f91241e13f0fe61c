"""Run in a subprocess by test_hw_headset_levels.py, so ALSA reads the test's own configuration.

``levels OUT.json``: the Headset driver on ALSA's default PCM (file/null) with an event bus; it plays
1 s of tone while ALSA feeds it the test's capture file; write the DeviceLevel events it published.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import trio

from engine import EventBus
from engine.abc import DeviceHealth, DeviceSpec


async def levels(out: str) -> None:
    from hardware.headset import Headset

    bus = EventBus()
    headset = Headset(DeviceSpec("desk", "headset", "default", options={"rate": 48000, "buffer_frames": 200}),
                      SimpleNamespace(bus=bus, data_dir=None))  # fmt: skip
    amplitude = float(sys.argv[3])
    tone = (np.sin(np.arange(8000) * 2 * np.pi * 1000 / 8000) * amplitude).astype(np.int16)
    seen: list[dict] = []
    async with bus.subscribe("probe", buffer=1000) as events, trio.open_nursery() as nursery:
        await nursery.start(headset.run)
        with trio.fail_after(20):
            await headset.wait_health(DeviceHealth.OK, DeviceHealth.UNAVAILABLE, DeviceHealth.DISCONNECTED)
        if headset.health() is DeviceHealth.OK:
            nursery.start_soon(_drain, headset)
            for start in range(0, len(tone), 160):
                headset.send_frame_nowait(tone[start : start + 160])
            # Until a level event saw both the tone going out and the capture file coming in.
            with trio.fail_after(20):
                async for event in events:
                    if event.event == "DeviceLevel":
                        seen.append(dict(event.fields))
                        if event.fields["InputDbfs"] > -60 and event.fields["OutputDbfs"] > -60:
                            break
        nursery.cancel_scope.cancel()
    await trio.Path(out).write_text(json.dumps({"health": headset.health().value, "reason": headset.describe()["reason"],
                                                "events": seen}))  # fmt: skip


async def _drain(headset) -> None:
    while True:
        await headset.receive_frame()


if __name__ == "__main__":
    trio.run(levels, sys.argv[2])
