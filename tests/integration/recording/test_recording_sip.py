"""Call recording wired end to end with real SIP phones: a baresip caller saying a 500 Hz tone reaches a
queue, a baresip agent saying 1300 Hz answers, and the engine records the call (queue ``record =
true``, or on demand through the API), even with ``[sip] anchor_media`` off. The WAV is checked by
spectrum (caller left, agent right; mono holds both), the console's recordings API serves it, the bus
hears RecordingStarted/RecordingStopped, and a recordings disk that fills up leaves the call talking."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import trio
from baresip_agent import baresip_agent, loud, read_wav

from engine import InteractionState
from engine.console import add_token
from engine.testing import wait_until

pytestmark = pytest.mark.interop

CALLER_HZ, AGENT_HZ = 500.0, 1300.0

PHONES = """
[[sip.users]]
name = "1001"
password = "s3cret"

[[sip.users]]
name = "2001"
password = "s3cret"
"""


def contact_center(*, record: bool, record_format: str = "") -> str:
    layout = f'record_format = "{record_format}"\n' if record_format else ""
    return f"""
[[agents]]
id = "alice"
endpoint = "sip:1001"

[[agents]]
id = "bob"
endpoint = "sip:3001"

[[queues]]
name = "support"
members = ["alice"]
timeout = 10
wrapup = 0
record = {"true" if record else "false"}
{layout}
[[routes]]
match = "100"
queue = "support"
"""


def band_energy(samples: np.ndarray, low: float, high: float) -> float:
    data = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data)))) ** 2
    freqs = np.fft.rfftfreq(len(data), 1 / 8000)
    return float(spectrum[(freqs >= low) & (freqs <= high)].sum())


def share(samples: np.ndarray, hz: float) -> float:
    """The part of ``samples``' energy within 30 Hz of ``hz``."""
    return band_energy(samples, hz - 30, hz + 30) / max(band_energy(samples, 50, 3950), 1e-9)


def read_recording(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path)) as w:
        assert w.getframerate() == 8000 and w.getsampwidth() == 2
        channels = w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, channels)
    return channels, data


class Events:
    def __init__(self, engine: Any) -> None:
        self.seen: list[Any] = []
        engine.bus.add_listener(self.seen.append)

    def named(self, name: str) -> list[Any]:
        return [e for e in self.seen if e.event == name]


async def place_call(caller: Any, channel: Any, engine: Any) -> Any:
    """The caller dials the queue; returns the interaction once an agent is talking to it."""
    port = channel.bound[0].port
    answer = await caller.command("dial", f"sip:100@127.0.0.1:{port}")
    assert "error" not in str(answer.get("data", "")).lower(), answer
    await wait_until(lambda: any(i.state is InteractionState.ACTIVE for i in engine.interactions.values()), timeout=20)
    return next(i for i in engine.interactions.values() if i.state is InteractionState.ACTIVE)


async def hang_up(caller: Any, engine: Any, interaction: Any) -> dict[str, Any]:
    await caller.command("hangup")
    with trio.fail_after(20):
        while True:
            rows = [r for r in await engine.cdr() if r["uniqueid"] == interaction.id]
            if rows:
                return rows[0]
            await trio.sleep(0.05)


async def test_a_recorded_queue_records_the_call_in_stereo_and_the_console_serves_it(recording_engine, tmp_path):
    async with recording_engine(contact_center(record=True), sip=PHONES) as (engine, channel):
        assert not channel.settings.anchor_media  # the recording anchors the call by itself
        events = Events(engine)
        async with baresip_agent(channel, tmp_path, user="1001", frequency=AGENT_HZ), \
                baresip_agent(channel, tmp_path, user="2001", frequency=CALLER_HZ) as caller:
            interaction = await place_call(caller, channel, engine)
            await wait_until(lambda: events.named("RecordingStarted"), timeout=10)
            recording = engine.recorder.recording(interaction)
            assert recording is not None
            await wait_until(lambda: recording.duration >= 3.0, timeout=20)
            row = await hang_up(caller, engine, interaction)
        assert row["disposition"] == "ANSWERED" and row["dstchannel"] == "alice"
        await wait_until(lambda: events.named("RecordingStopped"), timeout=10)

        (started,) = events.named("RecordingStarted")
        (stopped,) = events.named("RecordingStopped")
        path = Path(started.fields["File"])
        assert started.interaction == stopped.interaction == interaction.id
        assert started.fields["Format"] == "stereo" and stopped.fields["File"] == str(path)
        assert path.parent == engine.recordings_dir and path.name.endswith(f"-{interaction.id}.wav")
        assert interaction.attributes["recording"] == str(path)
        assert engine.status()["recordings"] == {"started": 1, "stopped": 1, "failed": 0, "active": 0}

        channels, audio = read_recording(path)
        assert channels == 2
        seconds = len(audio) / 8000
        assert 2.5 <= seconds <= 30 and abs(seconds - stopped.fields["Duration"]) < 0.1
        assert abs(seconds - row["billsec"]) <= 1.5  # the whole conversation, from answer to hang-up
        left, right = loud(audio[:, 0].copy()), loud(audio[:, 1].copy())
        assert len(left) >= 8000 * 2 and len(right) >= 8000 * 2  # both sides spoke for seconds
        assert share(left, CALLER_HZ) > 0.8 and share(left, AGENT_HZ) < 0.05
        assert share(right, AGENT_HZ) > 0.8 and share(right, CALLER_HZ) < 0.05

        token = await add_token(engine.store, "sup", "supervisor")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30,
                                     headers={"authorization": f"Bearer {token}"}) as client:
            listed = (await client.get("/api/v1/recordings")).json()
            (entry,) = [r for r in listed if r["interaction"] == interaction.id]
            assert entry["file"] == path.name
            audio_response = await client.get("/api/v1/recordings/audio", params={"file": entry["file"]})
            assert audio_response.status_code == 200
            assert audio_response.headers["content-type"].startswith("audio/wav")
            assert audio_response.content == path.read_bytes()
            seen = (await client.get("/api/v1/interactions")).json()
            assert next(i for i in seen if i["id"] == interaction.id)["recording"] == str(path)


async def test_recording_on_demand_through_the_api_mono(recording_engine, tmp_path):
    """A queue that does not record: the agent starts and stops a recording of their own call; another
    agent may not; the file is mono with both voices mixed."""
    extra = contact_center(record=False, record_format="mono")
    async with recording_engine(extra, sip="anchor_media = true\n" + PHONES) as (engine, channel):
        events = Events(engine)
        alice = await add_token(engine.store, "alice", "agent")
        bob = await add_token(engine.store, "bob", "agent")
        async with baresip_agent(channel, tmp_path, user="1001", frequency=AGENT_HZ), \
                baresip_agent(channel, tmp_path, user="2001", frequency=CALLER_HZ) as caller, \
                httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            interaction = await place_call(caller, channel, engine)
            url = f"/api/v1/interactions/{interaction.id}/record"
            assert not events.named("RecordingStarted")  # not a recorded queue

            refused = await client.post(url, json={"action": "start"}, headers={"authorization": f"Bearer {bob}"})
            assert refused.status_code == 403
            bad = await client.post(url, json={"action": "pause"}, headers={"authorization": f"Bearer {alice}"})
            assert bad.status_code == 400
            started = await client.post(url, json={"action": "start"}, headers={"authorization": f"Bearer {alice}"})
            assert started.status_code == 200, started.text
            assert started.json()["recording_active"] is True
            path = Path(started.json()["recording"])
            again = await client.post(url, json={"action": "start"}, headers={"authorization": f"Bearer {alice}"})
            assert again.status_code == 200 and again.json()["recording"] == str(path)  # idempotent: one file
            assert len(events.named("RecordingStarted")) == 1

            recording = engine.recorder.recording(interaction)
            await wait_until(lambda: recording.duration >= 2.5, timeout=20)
            stopped = await client.post(url, json={"action": "stop"}, headers={"authorization": f"Bearer {alice}"})
            assert stopped.status_code == 200 and stopped.json()["recording_active"] is False
            (stop_event,) = events.named("RecordingStopped")
            assert stop_event.fields["Cause"] == "api"
            frames_at_stop = read_recording(path)[1].shape[0]
            # the call goes on unrecorded: the file no longer grows while the two keep talking
            # the call is answered (anchored on the engine's media) just after it enters its state
            await wait_until(lambda: channel.calls.calls[interaction.id].anchor is not None, timeout=10)
            anchor = channel.calls.calls[interaction.id].anchor.endpoint
            packets = anchor.packets_in
            await wait_until(lambda: anchor.packets_in >= packets + 50, timeout=10)
            assert read_recording(path)[1].shape[0] == frames_at_stop
            await hang_up(caller, engine, interaction)
            over = await client.post(url, json={"action": "start"}, headers={"authorization": f"Bearer {alice}"})
            assert over.status_code == 409  # the call has ended

        (start_event,) = events.named("RecordingStarted")
        assert start_event.fields["Format"] == "mono" and start_event.fields["File"] == str(path)
        channels, audio = read_recording(path)
        assert channels == 1 and 2.0 <= len(audio) / 8000 <= 30
        mixed = loud(audio[:, 0].copy())
        assert share(mixed, CALLER_HZ) > 0.2 and share(mixed, AGENT_HZ) > 0.2


async def test_a_full_recordings_disk_stops_the_recording_but_not_the_call(recording_engine, tmp_path, small_disk):
    extra = contact_center(record=True) + f'\n[media]\nrecordings = "{small_disk}"\n'
    async with recording_engine(extra, sip=PHONES) as (engine, channel):
        events = Events(engine)
        async with baresip_agent(channel, tmp_path, user="1001", frequency=AGENT_HZ), \
                baresip_agent(channel, tmp_path, user="2001", frequency=CALLER_HZ) as caller:
            interaction = await place_call(caller, channel, engine)
            await wait_until(lambda: events.named("RecordingFailed"), timeout=30)  # 96 KiB: about 3 s of stereo
            (failed,) = events.named("RecordingFailed")
            assert failed.interaction == interaction.id and "No space" in failed.fields["Cause"]
            # two more seconds of conversation after the disk filled up
            # the call is answered (anchored on the engine's media) just after it enters its state
            await wait_until(lambda: channel.calls.calls[interaction.id].anchor is not None, timeout=10)
            anchor = channel.calls.calls[interaction.id].anchor.endpoint
            packets = anchor.packets_in
            await wait_until(lambda: anchor.packets_in >= packets + 100, timeout=10)
            assert interaction.state is InteractionState.ACTIVE
            row = await hang_up(caller, engine, interaction)
        assert row["disposition"] == "ANSWERED" and row["billsec"] >= 1
        path = Path(failed.fields["File"])
        channels, audio = read_recording(path)  # what fitted is a valid WAV
        assert channels == 2 and len(audio) >= 8000
        heard = caller.recordings("dec")
        assert heard, "the caller's phone recorded nothing it heard"
        caller_heard, _ = read_wav(heard[0])
        # the caller heard the agent for longer than the disk could hold
        assert len(loud(caller_heard)) / 8000 > len(audio) / 8000 + 1.0


async def test_an_unusable_recordings_directory_leaves_the_call_unrecorded_but_connected(recording_engine, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the recordings directory should be")
    extra = contact_center(record=True) + f'\n[media]\nrecordings = "{blocker / "recordings"}"\n'
    async with recording_engine(extra, sip=PHONES) as (engine, channel):
        events = Events(engine)
        supervisor = await add_token(engine.store, "sup", "supervisor")
        async with baresip_agent(channel, tmp_path, user="1001", frequency=AGENT_HZ), \
                baresip_agent(channel, tmp_path, user="2001", frequency=CALLER_HZ) as caller, \
                httpx.AsyncClient(base_url=engine.console.url, timeout=30,
                                  headers={"authorization": f"Bearer {supervisor}"}) as client:
            interaction = await place_call(caller, channel, engine)
            await wait_until(lambda: events.named("RecordingFailed"), timeout=10)
            assert not events.named("RecordingStarted") and engine.recorder.recording(interaction) is None
            # the two still talk through the engine
            # the call is answered (anchored on the engine's media) just after it enters its state
            await wait_until(lambda: channel.calls.calls[interaction.id].anchor is not None, timeout=10)
            anchor = channel.calls.calls[interaction.id].anchor.endpoint
            packets = anchor.packets_in
            await wait_until(lambda: anchor.packets_in >= packets + 50, timeout=10)
            retry = await client.post(f"/api/v1/interactions/{interaction.id}/record", json={"action": "start"})
            assert retry.status_code == 409 and "cannot write" in retry.text
            row = await hang_up(caller, engine, interaction)
        assert row["disposition"] == "ANSWERED"
