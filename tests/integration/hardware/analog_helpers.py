"""Helpers for the analog-line integration tests (imported by name; conftest puts this folder on
sys.path): tones, a frequency check, and a baresip phone that records what it hears."""

from __future__ import annotations

import contextlib
import shutil
import socket
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio

SAMPLE_RATE = 8000

FAST_SIP = """
[sip]
listen = ["udp:127.0.0.1:0"]

[sip.security]
rate = 100000
burst = 100000

[sip.timers]
t1 = 0.1
t2 = 0.8
t4 = 1
qualify_interval = 0
ring_timeout = 15
"""

BARESIP_CONFIG = """poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
sip_trans_def\t\tudp
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\talsa.so
module\t\t\taufile.so
module\t\t\tsndfile.so
module\t\t\tmenu.so
module\t\t\tctrl_tcp.so
module_app\t\taccount.so
ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}
audio_source\t\taufile,{directory}/agent-says.wav
audio_player\t\talsa,null
audio_alert\t\talsa,null
snd_path\t\t{directory}/heard
"""


def tone(frequency: float, seconds: float, amplitude: int = 8000) -> np.ndarray:
    n = np.arange(int(SAMPLE_RATE * seconds))
    return (np.sin(2 * np.pi * frequency * n / SAMPLE_RATE) * amplitude).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.astype("<i2").tobytes())


def share_of_power_near(samples: np.ndarray, frequency: float, *, width: float = 40.0) -> float:
    """How much of the signal's power lies within ``width`` Hz of ``frequency`` (0..1)."""
    data = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data)))) ** 2
    freqs = np.fft.rfftfreq(len(data), 1 / SAMPLE_RATE)
    total = float(spectrum[freqs > 50].sum())
    if total == 0:
        return 0.0
    return float(spectrum[np.abs(freqs - frequency) <= width].sum()) / total


def dominant_frequency(samples: np.ndarray) -> float:
    data = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    return float(np.fft.rfftfreq(len(data), 1 / SAMPLE_RATE)[int(np.argmax(spectrum))])


def loud_frames(samples: np.ndarray, threshold: float = 1000.0) -> np.ndarray:
    """Only the 20 ms frames whose RMS is above ``threshold``, concatenated."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160).astype(np.float64)
    loud = np.sqrt((frames**2).mean(axis=1)) > threshold
    return samples[: len(frames) * 160].reshape(-1, 160)[loud].ravel()


def loud_part(samples: np.ndarray, threshold: int = 1000) -> np.ndarray:
    """From the first to the last sample louder than ``threshold``."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples[:0]


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as handle:
        assert handle.getframerate() == SAMPLE_RATE and handle.getnchannels() == 1
        return np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")


def free_sip_port() -> int:
    """A port P with UDP P, TCP P and TCP P+1 free: baresip listens on all three (TLS on P+1)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        sockets = []
        try:
            for kind, candidate in ((socket.SOCK_DGRAM, port), (socket.SOCK_STREAM, port), (socket.SOCK_STREAM, port + 1)):
                sock = socket.socket(socket.AF_INET, kind)
                sockets.append(sock)
                sock.bind(("127.0.0.1", candidate))
            return port
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port triple for baresip")


@contextlib.asynccontextmanager
async def baresip_agent(
    directory: Path, *, user: str, password: str, registrar_port: int, says: np.ndarray
) -> AsyncIterator[Any]:
    """A baresip phone registered as ``user``, answering automatically, saying ``says`` into every
    call and recording what it hears (``directory/heard/dump-*-dec.wav``)."""
    binary = shutil.which("baresip")
    if binary is None:
        pytest.fail("baresip is needed for this test: apt-get install -y baresip-core")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "heard").mkdir(exist_ok=True)
    write_wav(directory / "agent-says.wav", says)
    ctrl_port = free_sip_port()
    (directory / "config").write_text(
        BARESIP_CONFIG.format(sip_port=free_sip_port(), ctrl_port=ctrl_port, directory=directory)
    )
    (directory / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{registrar_port};transport=udp>;auth_pass={password};answermode=auto;regint=600\n"
    )
    log_path = directory / "baresip.log"
    with log_path.open("wb") as log:
        process = await trio.lowlevel.open_process(
            [binary, "-f", str(directory), "-n", "127.0.0.1"], stdin=None, stdout=log, stderr=log
        )
        try:
            process.log_path = log_path  # type: ignore[attr-defined]
            process.ctrl_port = ctrl_port  # type: ignore[attr-defined]
            yield process
        finally:
            process.terminate()
            with trio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


def recordings(directory: Path, kind: str = "dec") -> list[Path]:
    return sorted((directory / "heard").glob(f"dump-*-{kind}.wav"))


def complete_recording(directory: Path, kind: str = "dec") -> np.ndarray | None:
    """The phone's finished recording (its WAV header written at hang-up), or None while there is none."""
    for path in recordings(directory, kind):
        try:
            samples = read_wav(path)
        except (EOFError, wave.Error, AssertionError):
            continue
        if len(samples):
            return samples
    return None


async def baresip_command(ctrl_port: int, command: str, *, timeout: float = 10.0) -> None:
    """Send one ``ctrl_tcp`` command (a netstring of JSON), e.g. ``hangup``: the agent presses a key."""
    import json

    body = json.dumps({"command": command, "token": "centralita"}).encode()
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream("127.0.0.1", ctrl_port)
        async with stream:
            await stream.send_all(str(len(body)).encode() + b":" + body + b",")
            reply = await stream.receive_some(4096)  # baresip answers every command
    assert b'"response":true' in reply.replace(b" ", b""), reply
