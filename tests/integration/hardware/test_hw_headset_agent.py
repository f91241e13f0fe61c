"""The receptionist's headset as an agent endpoint (``headset:desk``): an analog caller queued to it
rings in the earpiece, the offer is accepted through the API, and the two talk through real PortAudio
on ALSA's file/null plugins until the agent hangs up."""

from __future__ import annotations

import ctypes.util
import fcntl
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


def drain_earpiece(fifo: Path, kept: Path, stop: threading.Event) -> None:
    """The earpiece plays in real time. ALSA's ``null`` PCM runs as fast as it is allowed to (hundreds
    of times real time, which starves the engine); writing the playback into a FIFO that is read at
    8 kHz here keeps the whole stream at real time, as a real headset is. What is read is kept in
    ``kept``. PortAudio opens the device more than once (to probe it, then to stream), so the FIFO is
    reopened whenever its writer goes away."""
    chunk = 320  # 20 ms at 8 kHz, 16-bit
    with open(kept, "ab", buffering=0) as out:
        while not stop.is_set():
            fd = os.open(fifo, os.O_RDONLY)  # blocks until ALSA opens the playback side
            try:
                try:
                    fcntl.fcntl(fd, 1031, 4096)  # F_SETPIPE_SZ: a small pipe, little latency
                except OSError:
                    pass  # EBUSY: it holds more than that already; the latency is only larger
                next_read = time.monotonic()
                while not stop.is_set():
                    data = os.read(fd, chunk)
                    if not data:
                        break  # that writer closed; wait for the next one
                    out.write(data)
                    next_read += len(data) / 16000
                    time.sleep(max(0.0, next_read - time.monotonic()))
            finally:
                os.close(fd)


def release_earpiece(fifo: Path, stop: threading.Event) -> None:
    """Stop the drain, even when it is blocked opening the FIFO for a writer that never comes."""
    stop.set()
    try:
        os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))
    except OSError:
        pass


def asoundrc(directory: Path) -> None:
    (directory / ".asoundrc").write_text(f"""
pcm.fileout {{ type file slave.pcm "null" file "{directory}/earpiece.fifo" format "raw" }}
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
    tone(AGENT_HZ, 120).astype("<i2").tofile(tmp_path / "in.raw")  # what the receptionist says
    os.mkfifo(tmp_path / "earpiece.fifo")
    (tmp_path / "played.raw").touch()
    stop = threading.Event()
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join([str(REPO), str(PROBE.parent)])}
    env.pop("ALSA_CONFIG_PATH", None)
    out = tmp_path / "result.json"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(trio.to_thread.run_sync, drain_earpiece, tmp_path / "earpiece.fifo", tmp_path / "played.raw",
                    stop, abandon_on_cancel=True)
        )
        try:
            with trio.fail_after(180):
                done = await trio.run_process(
                    [sys.executable, str(PROBE), "fxo-to-headset", str(out)],
                    check=False, capture_stderr=True, env=env, cwd=str(REPO),
                )
        finally:
            release_earpiece(tmp_path / "earpiece.fifo", stop)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    result = json.loads(out.read_text())
    assert result["headset_health"] == "ok", result.get("reason")
    assert result["called"]["Agent"] == "reception"

    played = np.fromfile(tmp_path / "played.raw", dtype="<i2")
    ring_from, ring_to = result["ring"]
    assert share_of_power_near(played[ring_from:ring_to], RING_HZ) > 0.8, "the earpiece never rang"
    assert result["line_off_hook_while_ringing"] is False  # the line is answered only when the agent is

    _, talk_to = result["talk"]
    # The last 2 s: well past the sound path's latency, so the caller's voice, not the ringing.
    assert abs(dominant_frequency(played[talk_to - 2 * 8000 : talk_to]) - CALLER_HZ) < 20, "the caller was not heard"
    heard = loud_frames(np.array(result["heard_by_caller"], dtype=np.int16))
    assert len(heard) >= 25 * 160, "the receptionist was not heard on the line"
    assert abs(dominant_frequency(heard) - AGENT_HZ) < 20

    (row,) = result["cdr"]
    assert (row["src"], row["dst"], row["dstchannel"], row["disposition"]) == ("600111222", "line1", "reception", "ANSWERED")
    assert result["headset"]["offers"] == 1 and result["headset"]["answered"] == 1
    assert result["headset"]["in_use"] == {}  # free for the next call
