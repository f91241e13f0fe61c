"""Voice-modem sample formats <-> 8 kHz int16 PCM frames.

µ-law and A-law use the media framework's G.711 tables (``engine.media``); the 8-bit unsigned and
16-bit little-endian linear formats some modems offer instead are converted here.
"""

from __future__ import annotations

import numpy as np

from engine.media import decode_alaw, decode_ulaw, encode_alaw, encode_ulaw

__all__ = ["FORMATS", "decode", "encode"]

#: Modem sample formats: bytes per sample.
FORMATS = {"ulaw": 1, "alaw": 1, "linear8": 1, "linear16": 2}


def decode(data: bytes, fmt: str) -> np.ndarray:
    """Modem bytes -> int16 samples."""
    if fmt == "ulaw":
        return decode_ulaw(data)
    if fmt == "alaw":
        return decode_alaw(data)
    if fmt == "linear8":  # unsigned 8-bit, 0x80 = silence
        raw = np.frombuffer(data, dtype=np.uint8)
        return ((raw.astype(np.int16) - 128) << 8).astype(np.int16)
    if fmt == "linear16":
        usable = len(data) - len(data) % 2
        return np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
    raise ValueError(f"unknown sample format {fmt!r}")


def encode(samples: np.ndarray, fmt: str) -> bytes:
    """int16 samples -> modem bytes."""
    samples = np.asarray(samples, dtype=np.int16)
    if fmt == "ulaw":
        return encode_ulaw(samples)
    if fmt == "alaw":
        return encode_alaw(samples)
    if fmt == "linear8":
        return ((samples.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    if fmt == "linear16":
        return samples.astype("<i2").tobytes()
    raise ValueError(f"unknown sample format {fmt!r}")
