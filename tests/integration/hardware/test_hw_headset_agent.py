"""The receptionist's headset as an agent endpoint (``headset:desk``): an analog caller queued to it
rings in the earpiece, the offer is accepted through the API, and the two talk through real PortAudio
on ALSA's file/null plugins until the agent hangs up."""

from __future__ import annotations

import ctypes.util
import json
import os
import sys
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import trio

from analog_helpers import dominant_frequency, loud_frames, share_of_power_near, tone

REPO = Path(__file__).resolve().parents[3]
PROBE = Path(__file__).with_name("headset_agent_probe.py")
INSTALL = "apt-get install -y libportaudio2 libasound2-plugins alsa-utils"
AGENT_HZ, CALLER_HZ, RING_HZ = 1300, 700, 425


def feed_microphone(path: Path, samples: np.ndarray, stop: threading.Event) -> None:
    """The receptionist talks into the microphone in real time. ALSA's ``null`` PCM runs as fast as it
    can be fed (hundreds of times real time); reading the capture side from a FIFO fed at 8 kHz keeps
    the stream near real time, as a real headset is. PortAudio opens the device more than once (to
    probe it, then to stream), so the FIFO is reopened whenever its reader goes away."""
    data = samples.astype("<i2").tobytes()
    chunk = 320  # 20 ms at 8 kHz, 16-bit
    position = 0
    while not stop.is_set():
        with open(path, "wb", buffering=0) as fifo:  # blocks until ALSA opens the capture side
            next_write = time.monotonic()
            while not stop.is_set():
                try:
                    fifo.write(data[position : position + chunk])
                except BrokenPipeError:
                    break  # that reader closed; wait for the next one
                position = (position + chunk) % len(data)
                next_write += 0.02
                time.sleep(max(0.0, next_write - time.monotonic()))


def release_microphone(path: Path, stop: threading.Event) -> None:
    """Stop the feeder, even when it is blocked opening the FIFO for a reader that never comes."""
    stop.set()
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except OSError:
        pass


def asoundrc(directory: Path) -> None:
    (directory / ".asoundrc").write_text(f"""
pcm.fileout {{ type file slave.pcm "null" file "{directory}/played.raw" format "raw" }}
pcm.filein {{ type file slave.pcm "null" file "/dev/null" infile "{directory}/in.raw" format "raw" }}
pcm.!default {{
    type asym
    playback.pcm {{ type plug slave {{ pcm "fileout" format S16_LE rate 8000 channels 1 }} }}
    capture.pcm {{ type plug slave {{ pcm "filein" format S16_LE rate 8000 channels 1 }} }}
}}
""")


async def test_an_analog_caller_rings_the_receptionists_headset_and_they_talk(tmp_path: Path) -> None:
    assert ctypes.util.find_library("portaudio"), f"PortAudio is missing: {INSTALL}"
    asoundrc(tmp_path)
    os.mkfifo(tmp_path / "in.raw")
    stop = threading.Event()
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join([str(REPO), str(PROBE.parent)])}
    env.pop("ALSA_CONFIG_PATH", None)
    out = tmp_path / "result.json"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(trio.to_thread.run_sync, feed_microphone, tmp_path / "in.raw", tone(AGENT_HZ, 1), stop,
                    abandon_on_cancel=True)
        )
        try:
            with trio.fail_after(180):
                done = await trio.run_process(
                    [sys.executable, str(PROBE), "fxo-to-headset", str(out)],
                    check=False, capture_stderr=True, env=env, cwd=str(REPO),
                )
        finally:
            release_microphone(tmp_path / "in.raw", stop)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    result = json.loads(out.read_text())
    assert result["headset_health"] == "ok", result.get("reason")
    assert result["called"]["Agent"] == "reception"

    played = np.fromfile(tmp_path / "played.raw", dtype="<i2")
    ring_from, ring_to = result["ring"]
    assert share_of_power_near(played[ring_from:ring_to], RING_HZ) > 0.8, "the earpiece never rang"
    assert result["line_off_hook_while_ringing"] is False  # the line is answered only when the agent is

    talk_from, talk_to = result["talk"]
    # The headset runs a little faster than real time here (see feed_microphone): its audio has gaps,
    # so the check is the dominant frequency (neither side ever sends the other's tone).
    assert abs(dominant_frequency(played[talk_from + 4000 : talk_to]) - CALLER_HZ) < 20, "the caller was not heard"
    heard = loud_frames(np.array(result["heard_by_caller"], dtype=np.int16))
    assert len(heard) >= 25 * 160, "the receptionist was not heard on the line"
    assert abs(dominant_frequency(heard) - AGENT_HZ) < 20

    (row,) = result["cdr"]
    assert (row["src"], row["dst"], row["dstchannel"], row["disposition"]) == ("600111222", "line1", "reception", "ANSWERED")
    assert result["headset"]["offers"] == 1 and result["headset"]["answered"] == 1
    assert result["headset"]["in_use"] == {}  # free for the next call
