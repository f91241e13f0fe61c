"""Helpers for the analog-line integration tests (imported by name; conftest puts this folder on
sys.path): tones, a frequency check, and a baresip phone that records what it hears. The baresip
plumbing itself is shared with the SIP tests (``tests/integration/sip/baresip_agent.py``)."""

from __future__ import annotations

import contextlib
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from baresip_agent import (
    baresip_account,
    baresip_config,
    ctrl_tcp_command,
    free_sip_port,
    open_baresip,
    tone,  # noqa: F401 -- re-exported: the analog tests import it from here
    write_wav,
)

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


@contextlib.asynccontextmanager
async def baresip_agent(
    directory: Path, *, user: str, password: str, registrar_port: int, says: np.ndarray
) -> AsyncIterator[Any]:
    """A baresip phone registered as ``user``, answering automatically, saying ``says`` into every
    call and recording what it hears (``directory/heard/dump-*-dec.wav``)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "heard").mkdir(exist_ok=True)
    write_wav(directory / "agent-says.wav", says)
    ctrl_port = free_sip_port()
    (directory / "config").write_text(
        baresip_config(directory, sip_port=free_sip_port(), source="agent-says.wav", ctrl_port=ctrl_port, record_dir="heard")
    )
    (directory / "accounts").write_text(baresip_account(user, password, registrar_port))
    log_path = directory / "baresip.log"
    async with open_baresip(directory, log_path) as process:
        process.log_path = log_path  # type: ignore[attr-defined]
        process.ctrl_port = ctrl_port  # type: ignore[attr-defined]
        yield process


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
    """Send one ``ctrl_tcp`` command, e.g. ``hangup``: the agent presses a key. Events baresip sends
    on the same connection first (CALL_CLOSED when the far end hung up) are skipped, not failures."""
    reply = await ctrl_tcp_command(ctrl_port, command, token="centralita", timeout=timeout)
    assert reply.get("response") is True, reply
