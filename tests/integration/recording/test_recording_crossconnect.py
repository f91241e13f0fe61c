"""A recorded call that crosses channels: an analog caller on the (emulated) voice modem reaches a queue
that records, a baresip SIP agent answers, and the engine's conference room writes the recording: the
line's caller left, the SIP agent right."""

from __future__ import annotations

import wave
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import trio
from baresip_agent import baresip_agent, loud
from sip_interop_helpers import FAST_TIMERS

from engine.abc import DeviceHealth
from engine.testing import open_test_engine, wait_until
from hardware.voice_modem import plugin as voice_plugin

pytestmark = pytest.mark.interop

CALLER_HZ, AGENT_HZ = 700.0, 1300.0


def config(link: str) -> str:
    return '[sip]\nlisten = ["udp:127.0.0.1:0"]\n\n[sip.security]\nrate = 100000\nburst = 100000\n' + FAST_TIMERS + f"""
[[sip.users]]
name = "1001"
password = "s3cret"

[[devices]]
name = "line1"
driver = "voice-modem"
port = "{link}"
options = {{ command_timeout = 1.0, ring_gone = 2.0 }}

[[agents]]
id = "alice"
endpoint = "sip:1001"

[[queues]]
name = "support"
members = ["alice"]
timeout = 15
wrapup = 0
record = true

[[routes]]
match = "line1"
queue = "support"
"""


def strongest(samples: np.ndarray) -> float:
    data = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(len(data), 1 / 8000)[int(np.argmax(spectrum))])


async def caller_speaks(emulator, stop: trio.Event) -> None:
    """The caller talks at the pace of a real line: 100 ms of tone every 100 ms, until told to stop."""
    n = np.arange(800)
    next_chunk, start = trio.current_time(), 0
    while not stop.is_set():
        piece = (8000 * np.sin(2 * np.pi * CALLER_HZ * (n + start) / 8000)).astype(np.int16)
        start += 800
        await emulator.send_audio(piece)
        next_chunk += 0.1
        await trio.sleep_until(next_chunk)


async def test_an_analog_caller_answered_by_a_sip_agent_is_recorded_by_the_room(nursery, voice_emulator, tmp_path: Path):
    import plugins.sip.plugin as sip_plugin

    async with open_test_engine(config(voice_emulator.link), plugins=[voice_plugin, sip_plugin], data_dir=tmp_path) as engine:
        sip = engine.channels["sip"]
        with trio.fail_after(15):
            await engine.devices.get("line1").wait_health(DeviceHealth.OK)
        events: list = []
        engine.bus.add_listener(lambda e: events.append(e) if e.event.startswith("Recording") else None)
        async with baresip_agent(sip, tmp_path, frequency=AGENT_HZ) as phone:
            nursery.start_soon(partial(voice_emulator.ring, "600333444", "", rings=300, interval=0.2))
            await wait_until(lambda: any(e.event == "RecordingStarted" for e in events), timeout=30)
            interaction = engine.find_interaction(events[0].interaction)
            stop = trio.Event()
            nursery.start_soon(caller_speaks, voice_emulator, stop)
            recording = engine.recorder.recording(interaction)
            await wait_until(lambda: recording.duration >= 3.0, timeout=30)
            stop.set()
            await phone.command("hangup")
            await wait_until(lambda: any(e.event == "RecordingStopped" for e in events), timeout=20)
            await voice_emulator.wait_until(lambda e: not e.state.off_hook, timeout=20)

    started = next(e for e in events if e.event == "RecordingStarted")
    assert started.fields["Format"] == "stereo" and started.fields["Queue"] == "support"
    path = Path(started.fields["File"])
    assert interaction.attributes["recording"] == str(path)
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    caller_side, agent_side = loud(audio[:, 0].copy()), loud(audio[:, 1].copy())
    assert len(caller_side) >= 8000 and len(agent_side) >= 8000 * 2
    assert abs(strongest(caller_side) - CALLER_HZ) < 15
    assert abs(strongest(agent_side) - AGENT_HZ) < 15
