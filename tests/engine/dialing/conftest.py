"""Shared helpers for the dialer tests: the labelled AMD set (8 kHz mono mu-law or PCM WAV)."""

from __future__ import annotations

import csv
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

AMD_SET = Path(__file__).resolve().parent / "data" / "amd"


def _mulaw_table() -> np.ndarray:
    # ITU-T G.711 mu-law expansion, from the definition (bias 0x84, inverted bits)
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


_MULAW = _mulaw_table()


def read_wav(path: Path) -> np.ndarray:
    """int16 samples of an 8 kHz mono WAV, PCM 16-bit or G.711 mu-law (format 7)."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file")
    pos, fmt, payload = 12, None, None
    while pos + 8 <= len(data):
        kind, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if kind == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif kind == b"data":
            payload = body
        pos += 8 + size + (size & 1)
    if fmt is None or payload is None:
        raise ValueError(f"{path}: no fmt or data chunk")
    code, channels, rate, _, _, bits = fmt
    if channels != 1 or rate != 8000:
        raise ValueError(f"{path}: expected 8 kHz mono, got {rate} Hz x {channels}")
    if code == 7 and bits == 8:
        return _MULAW[np.frombuffer(payload, dtype=np.uint8)]
    if code == 1 and bits == 16:
        return np.frombuffer(payload[: len(payload) // 2 * 2], dtype="<i2").astype(np.int16)
    raise ValueError(f"{path}: unsupported WAV format {code}/{bits} bits")


@dataclass(frozen=True)
class Clip:
    name: str
    label: str
    speech_start: float
    speech_end: float
    beep_start: float | None
    samples: np.ndarray

    def frames(self):
        usable = len(self.samples) // 160 * 160
        return self.samples[:usable].reshape(-1, 160)


def load_set() -> list[Clip]:
    labels = AMD_SET / "labels.csv"
    if not labels.exists():
        raise FileNotFoundError(f"{labels} is missing: run .venv/bin/python tests/engine/dialing/make_amd_set.py")
    clips = []
    with open(labels, newline="") as f:
        for row in csv.DictReader(f):
            clips.append(Clip(row["file"], row["label"], float(row["speech_start"]), float(row["speech_end"]),
                              float(row["beep_start"]) if row["beep_start"] else None,
                              read_wav(AMD_SET / row["file"])))
    return clips


@pytest.fixture(scope="session")
def amd_clips() -> list[Clip]:
    return load_set()
