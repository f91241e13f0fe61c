"""The headset driver through real PortAudio on ALSA's file/null plugins, and without PortAudio."""

from __future__ import annotations

import ctypes.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import trio

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("hw_headset_probe.py")
INSTALL = "apt-get install -y libportaudio2 libasound2-plugins alsa-utils"


def dominant_frequency(samples: np.ndarray, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


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


async def run_probe(mode: str, tmp_path: Path, env: dict[str, str]) -> dict:
    out = tmp_path / "result.json"
    with trio.fail_after(120):  # killed, not left running, if the driver ever hangs
        result = await trio.run_process(
            [sys.executable, str(PROBE), mode, str(out)],
            check=False,
            capture_stderr=True,
            env=env,
            cwd=str(REPO),
        )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return json.loads(out.read_text())


async def test_headset_really_records_and_plays_through_alsa_at_48khz(tmp_path: Path) -> None:
    assert ctypes.util.find_library("portaudio"), f"PortAudio is missing: {INSTALL}"
    asoundrc(tmp_path)
    caller = (np.sin(np.arange(16000) * 2 * np.pi * 697 / 8000) * 10000).astype("<i2")
    caller.tofile(tmp_path / "in.raw")
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    env.pop("ALSA_CONFIG_PATH", None)
    result = await run_probe("capture-play", tmp_path, env)
    assert result["health"] == "ok", result["reason"]
    heard = np.array(result["heard"], dtype=np.int16)
    assert len(heard) == 50 * 160
    assert abs(dominant_frequency(heard[1600:]) - 697) < 15  # what the agent said, resampled 48k -> 8k
    played = np.fromfile(tmp_path / "played.raw", dtype="<i2")
    loud = played[np.abs(played) > 1000]
    assert len(loud) > 4000, "the tone never reached the earpiece"
    start = int(np.flatnonzero(np.abs(played) > 1000)[0])
    assert abs(dominant_frequency(played[start : start + 4000]) - 1000) < 15  # 8k -> 48k -> ALSA 8k
    assert result["stats"]["callback_errors"] == 0


async def test_engine_starts_without_portaudio_and_says_what_to_install(tmp_path: Path) -> None:
    fake = tmp_path / "fake_site"
    fake.mkdir()
    # What sounddevice itself raises when the shared library is missing.
    (fake / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    env = {**os.environ, "PYTHONPATH": f"{fake}{os.pathsep}{REPO}"}
    result = await run_probe("no-portaudio", tmp_path, env)
    assert result["health"] == "unavailable"
    assert "apt-get install libportaudio2" in result["reason"]
    assert result["status"]["health"] == "unavailable"


async def test_a_headset_that_is_not_plugged_in_is_reported_disconnected(tmp_path: Path) -> None:
    asoundrc(tmp_path)
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    env.pop("ALSA_CONFIG_PATH", None)
    result = await run_probe("missing", tmp_path, env)
    assert result["health"] == "disconnected"
    assert "no audio device named 'Jabra Evolve 20'" in result["reason"]


def named_headset_asoundrc(directory: Path) -> None:
    """A PCM named "jabra" (PortAudio lists ALSA's user-defined PCMs by name), on file/null."""
    (directory / "in.raw").write_bytes(b"\x00\x10" * 80000)
    (directory / ".asoundrc").write_text(f"""
pcm.jabra {{
    type asym
    playback.pcm {{ type plug slave {{ pcm {{ type file slave.pcm "null" file "{directory}/played.raw" format "raw" }}
                                     format S16_LE rate 8000 channels 1 }} }}
    capture.pcm {{ type plug slave {{ pcm {{ type file slave.pcm "null" file "/dev/null" infile "{directory}/in.raw"
                                            format "raw" }} format S16_LE rate 8000 channels 1 }} }}
    hint {{ show on description "Jabra" }}
}}
""")


def alsa_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    env.pop("ALSA_CONFIG_PATH", None)
    return env


async def test_full_buffers_drop_and_count_and_never_raise_into_portaudio(tmp_path: Path) -> None:
    assert ctypes.util.find_library("portaudio"), f"PortAudio is missing: {INSTALL}"
    named_headset_asoundrc(tmp_path)
    result = await run_probe("starved", tmp_path, alsa_env(tmp_path))
    assert result["health"] == "ok", result["reason"]
    assert result["queued_dropped"] == 10  # 14 frames offered to a 4-frame earpiece buffer
    assert result["stats"]["playout_dropped"] == 10
    assert result["starved_dropped"] > 0  # trio blocked: the capture buffer overflowed, counted
    assert result["stats"]["callback_errors"] == 0  # nothing raised in PortAudio's thread
    # the stream survived: same stream, still healthy, audio still arriving in 20 ms frames
    assert result["health_after"] == "ok" and not result["reopened"] and result["frame_len"] == 160
    assert result["stats"]["unplugs"] == 0


async def test_a_headset_unplugged_mid_use_is_disconnected_then_comes_back_when_replugged(tmp_path: Path) -> None:
    assert ctypes.util.find_library("portaudio"), f"PortAudio is missing: {INSTALL}"
    named_headset_asoundrc(tmp_path)
    result = await run_probe("replug", tmp_path, alsa_env(tmp_path))
    assert result["health"] == "ok", result["reason"]
    assert result["gone"] == {"health": "disconnected", "reason": "no audio device named 'jabra'"}
    states = [(e["State"], e["Reason"]) for e in result["events"]]
    assert states == [
        ("ok", ""),
        ("disconnected", "jabra stopped (unplugged?)"),
        ("disconnected", "no audio device named 'jabra'"),
        ("ok", ""),
    ]
    assert result["heard"] == [160, 160]  # audio before the unplug and after the replug
    assert result["stats"]["opens"] == 2 and result["stats"]["unplugs"] == 1
    assert result["stats"]["callback_errors"] == 0
