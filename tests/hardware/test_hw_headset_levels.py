"""The headset's live level meter through real PortAudio on ALSA's file/null plugins: the DeviceLevel
event carries the level of the tone it played and of the audio it captured."""

from __future__ import annotations

import ctypes.util
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import trio

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("hw_headset_level_probe.py")
INSTALL = "apt-get install -y libportaudio2 libasound2-plugins alsa-utils"


def asoundrc(directory: Path) -> None:
    """ALSA's default PCM on file/null at 8 kHz: plays into played.raw, captures from in.raw."""
    (directory / ".asoundrc").write_text(f"""
pcm.fileout {{ type file slave.pcm "null" file "{directory}/played.raw" format "raw" }}
pcm.filein {{ type file slave.pcm "null" file "/dev/null" infile "{directory}/in.raw" format "raw" }}
pcm.!default {{
    type asym
    playback.pcm {{ type plug slave {{ pcm "fileout" format S16_LE rate 8000 channels 1 }} }}
    capture.pcm {{ type plug slave {{ pcm "filein" format S16_LE rate 8000 channels 1 }} }}
}}
""")


def sine_dbfs(amplitude: float) -> float:
    return 20 * math.log10(amplitude / 32767)  # a sine's RMS against a full-scale sine


async def test_level_events_carry_the_played_and_captured_tone_levels(tmp_path: Path) -> None:
    assert ctypes.util.find_library("portaudio"), f"PortAudio is missing: {INSTALL}"
    asoundrc(tmp_path)
    captured_amplitude, played_amplitude = 10000, 4000
    (np.sin(np.arange(16000) * 2 * np.pi * 697 / 8000) * captured_amplitude).astype("<i2").tofile(tmp_path / "in.raw")
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    env.pop("ALSA_CONFIG_PATH", None)
    out = tmp_path / "levels.json"
    with trio.fail_after(120):
        result = await trio.run_process([sys.executable, str(PROBE), "levels", str(out), str(played_amplitude)],
                                        check=False, capture_stderr=True, env=env, cwd=str(REPO))  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    report = json.loads(out.read_text())
    assert report["health"] == "ok", report["reason"]
    events = report["events"]
    assert all(e["Device"] == "desk" for e in events)
    loudest_in = max(e["InputDbfs"] for e in events)
    loudest_out = max(e["OutputDbfs"] for e in events)
    # -10.3 dBFS captured (after 48 kHz -> 8 kHz resampling), -18.3 dBFS played: about right, and apart.
    assert abs(loudest_in - sine_dbfs(captured_amplitude)) < 1.5, events
    assert abs(loudest_out - sine_dbfs(played_amplitude)) < 1.0, events
