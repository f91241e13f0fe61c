"""Shared bits of the voice tests: prompts made of known tones, a baresip caller saying a given
signal, and spectrum measures (imported by name; the conftest puts this folder's sibling on sys.path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import trio
from baresip_agent import read_wav, tone, write_wav

from engine import InteractionState
from engine.media import decode_ulaw, encode_ulaw
from engine.testing import wait_until

PHONES = """
[[sip.users]]
name = "1001"
password = "s3cret"

[[sip.users]]
name = "2001"
password = "s3cret"
"""


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(8000 * seconds), dtype=np.int16)


def write_prompt(data_dir: Path, name: str, samples: np.ndarray) -> Path:
    path = data_dir / "prompts" / "en" / f"{name}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, samples)
    return path


def band_energy(samples: np.ndarray, low: float, high: float) -> float:
    data = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data)))) ** 2
    freqs = np.fft.rfftfreq(len(data), 1 / 8000)
    return float(spectrum[(freqs >= low) & (freqs <= high)].sum())


def share(samples: np.ndarray, hz: float) -> float:
    """The part of ``samples``' energy within 30 Hz of ``hz``."""
    return band_energy(samples, hz - 30, hz + 30) / max(band_energy(samples, 50, 3950), 1e-9)


def frames(samples: np.ndarray) -> np.ndarray:
    return samples[: len(samples) // 160 * 160].reshape(-1, 160)


def loud_mask(samples: np.ndarray, threshold: int = 1000) -> np.ndarray:
    """Which 20 ms frames carry sound."""
    return np.abs(frames(samples).astype(np.int32)).max(axis=1) > threshold


def frame_tones(samples: np.ndarray, threshold: int = 1000) -> np.ndarray:
    """The dominant frequency (Hz, 50 Hz steps) of each loud 20 ms frame, in order; silent frames are
    left out. A phone's jitter buffer may keep the last few frames of a burst, so count, do not time."""
    loud = frames(samples)[loud_mask(samples, threshold)].astype(np.float64)
    if len(loud) == 0:
        return np.zeros(0)
    spectra = np.abs(np.fft.rfft(loud, axis=1))
    spectra[:, 0] = 0.0
    return np.argmax(spectra, axis=1) * 50.0


def count_frames_at(tones: np.ndarray, hz: float) -> int:
    return int(np.sum(np.abs(tones - hz) <= 50))


def set_caller_audio(phone: Any, samples: np.ndarray) -> None:
    """What the baresip phone says on its next call (aufile opens the file when the call starts)."""
    write_wav(phone.directory / "tone.wav", samples)


def heard(phone: Any) -> np.ndarray:
    """Everything the phone heard on its calls (sndfile's decoded-audio files), at 8 kHz."""
    files = phone.recordings("dec")
    assert files, "the phone recorded nothing it heard"
    audio, rate = read_wav(files[-1])
    assert rate == 8000, rate
    return audio


async def dial(phone: Any, channel: Any, number: str) -> None:
    answer = await phone.command("dial", f"sip:{number}@127.0.0.1:{channel.bound[0].port}")
    assert "error" not in str(answer.get("data", "")).lower(), answer


async def wait_for_interaction(engine: Any, *states: InteractionState, timeout: float = 20) -> Any:
    await wait_until(lambda: any(i.state in states for i in engine.interactions.values()), timeout=timeout)
    return next(i for i in engine.interactions.values() if i.state in states)


async def hang_up_and_wait_for_cdr(phone: Any, engine: Any, interaction_id: str) -> dict[str, Any]:
    await phone.command("hangup")
    return await cdr_row(engine, interaction_id)


async def cdr_row(engine: Any, interaction_id: str) -> dict[str, Any]:
    with trio.fail_after(20):
        while True:
            rows = [r for r in await engine.cdr() if r["uniqueid"] == interaction_id]
            if rows:
                return rows[0]
            await trio.sleep(0.05)


__all__ = ["PHONES", "band_energy", "cdr_row", "count_frames_at", "dial", "frame_tones", "frames", "hang_up_and_wait_for_cdr", "heard",
           "loud_mask", "set_caller_audio", "share", "silence", "tone", "wait_for_interaction", "write_prompt"]


class ToneResponder:
    """A far party's RTP behind a trunk: answers whatever address the engine's media comes from with a
    PCMU tone of ``hz``, and keeps what it hears (decoded) in ``heard``."""

    def __init__(self, hz: float, *, ssrc: int = 0x4321) -> None:
        self.hz = hz
        self.ssrc = ssrc
        self.sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        self.heard: list[np.ndarray] = []

    async def run(self) -> None:
        samples = tone(self.hz, 1.0)
        seq, position = 0, 0
        while True:
            data, address = await self.sock.recvfrom(2048)
            if len(data) < 12 or data[1] & 0x7F != 0:
                continue
            self.heard.append(decode_ulaw(np.frombuffer(data[12:], np.uint8).tobytes()))
            frame = samples[position : position + 160]
            position = (position + 160) % (len(samples) - 160)
            header = bytes([0x80, 0]) + seq.to_bytes(2, "big") + (seq * 160).to_bytes(4, "big") + self.ssrc.to_bytes(4, "big")
            seq = (seq + 1) & 0xFFFF
            await self.sock.sendto(header + encode_ulaw(frame), address)
