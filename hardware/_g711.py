"""G.711 µ-law/A-law <-> 16-bit linear PCM by lookup table (numpy), and the 8-bit voice-modem formats.

A stop-gap for the drivers until ``engine.media`` ships its codecs; the tables follow ITU-T G.711.
"""

from __future__ import annotations

import numpy as np

__all__ = ["decode", "encode", "FORMATS"]


def _ulaw_to_linear(byte: int) -> int:
    byte = ~byte & 0xFF
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    magnitude = ((mantissa << 3) + 0x84) << exponent
    magnitude -= 0x84
    return -magnitude if sign else magnitude


def _alaw_to_linear(byte: int) -> int:
    byte ^= 0x55
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    if exponent == 0:
        magnitude = (mantissa << 4) + 8
    else:
        magnitude = ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude if sign else -magnitude


_ULAW_DECODE = np.array([_ulaw_to_linear(b) for b in range(256)], dtype=np.int16)
_ALAW_DECODE = np.array([_alaw_to_linear(b) for b in range(256)], dtype=np.int16)


def _build_encoder(decode_table: np.ndarray) -> np.ndarray:
    """For every 16-bit value, the code whose decoded value is nearest (ties to the smaller code)."""
    values = decode_table.astype(np.int32)
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    everything = np.arange(-32768, 32768, dtype=np.int32)
    right = np.clip(np.searchsorted(sorted_values, everything), 1, len(sorted_values) - 1)
    left = right - 1
    pick_left = (everything - sorted_values[left]) <= (sorted_values[right] - everything)
    chosen = np.where(pick_left, left, right)
    return order[chosen].astype(np.uint8)


_ULAW_ENCODE = _build_encoder(_ULAW_DECODE)
_ALAW_ENCODE = _build_encoder(_ALAW_DECODE)

#: Modem sample formats: bytes per sample.
FORMATS = {"ulaw": 1, "alaw": 1, "linear8": 1, "linear16": 2}


def decode(data: bytes, fmt: str) -> np.ndarray:
    """Modem bytes -> int16 samples."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if fmt == "ulaw":
        return _ULAW_DECODE[raw]
    if fmt == "alaw":
        return _ALAW_DECODE[raw]
    if fmt == "linear8":  # unsigned 8-bit, 0x80 = silence
        return ((raw.astype(np.int16) - 128) << 8).astype(np.int16)
    if fmt == "linear16":
        usable = len(data) - len(data) % 2
        return np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
    raise ValueError(f"unknown sample format {fmt!r}")


def encode(samples: np.ndarray, fmt: str) -> bytes:
    """int16 samples -> modem bytes."""
    samples = np.asarray(samples, dtype=np.int16)
    if fmt == "ulaw":
        return _ULAW_ENCODE[samples.astype(np.int32) + 32768].tobytes()
    if fmt == "alaw":
        return _ALAW_ENCODE[samples.astype(np.int32) + 32768].tobytes()
    if fmt == "linear8":
        return ((samples.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    if fmt == "linear16":
        return samples.astype("<i2").tobytes()
    raise ValueError(f"unknown sample format {fmt!r}")
