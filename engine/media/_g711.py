"""G.711 µ-law (PCMU) and A-law (PCMA) with numpy lookup tables.

The tables are computed once at import from the ITU-T G.711 segment rules (``audioop`` left the
standard library in Python 3.13). Encoding indexes a 65,536-entry table with the int16 samples viewed as
uint16; decoding indexes a 256-entry table with the payload bytes. A third table translates µ-law
bytes straight to A-law bytes (and back) so two legs with different G.711 laws can still be relayed
packet by packet without a decode/encode round.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "decode_alaw",
    "decode_ulaw",
    "encode_alaw",
    "encode_ulaw",
    "transcode_table",
    "CODECS",
    "SILENCE_BYTE",
]

_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def _build_ulaw_decode() -> np.ndarray:
    code = np.arange(256, dtype=np.int32)
    u = ~code & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_ulaw_encode() -> np.ndarray:
    pcm = np.arange(65536, dtype=np.int32)
    pcm = np.where(pcm >= 32768, pcm - 65536, pcm)  # index is the uint16 view of an int16 sample
    sign = np.where(pcm < 0, 0x80, 0)
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + _ULAW_BIAS
    exponent = np.floor(np.log2(mag >> 7)).astype(np.int32)  # mag >> 7 is 1..255, so exponent is 0..7
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def _build_alaw_decode() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _build_alaw_encode() -> np.ndarray:
    pcm = np.arange(65536, dtype=np.int32)
    pcm = np.where(pcm >= 32768, pcm - 65536, pcm) >> 3  # A-law works on 13 bits
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    pcm = np.where(pcm >= 0, pcm, -pcm - 1)
    seg_ends = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    seg = np.searchsorted(seg_ends, pcm)  # first segment whose end >= pcm
    shifted = np.where(seg < 2, pcm >> 1, pcm >> np.maximum(seg, 1))
    aval = (np.minimum(seg, 7) << 4) | (shifted & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    return ((aval ^ mask) & 0xFF).astype(np.uint8)


_ULAW_DEC = _build_ulaw_decode()
_ULAW_ENC = _build_ulaw_encode()
_ALAW_DEC = _build_alaw_decode()
_ALAW_ENC = _build_alaw_encode()
_ULAW_TO_ALAW = _ALAW_ENC[_ULAW_DEC.view(np.uint16)].tobytes()
_ALAW_TO_ULAW = _ULAW_ENC[_ALAW_DEC.view(np.uint16)].tobytes()

#: The byte each law uses for digital silence (0 after decoding).
SILENCE_BYTE = {"PCMU": 0xFF, "PCMA": 0xD5}


def encode_ulaw(pcm: np.ndarray) -> bytes:
    """int16 samples -> µ-law bytes."""
    return _ULAW_ENC[np.asarray(pcm, dtype=np.int16).view(np.uint16)].tobytes()


def decode_ulaw(payload: bytes | bytearray | memoryview) -> np.ndarray:
    """µ-law bytes -> int16 samples (a new array)."""
    return _ULAW_DEC[np.frombuffer(payload, dtype=np.uint8)]


def encode_alaw(pcm: np.ndarray) -> bytes:
    """int16 samples -> A-law bytes."""
    return _ALAW_ENC[np.asarray(pcm, dtype=np.int16).view(np.uint16)].tobytes()


def decode_alaw(payload: bytes | bytearray | memoryview) -> np.ndarray:
    """A-law bytes -> int16 samples (a new array)."""
    return _ALAW_DEC[np.frombuffer(payload, dtype=np.uint8)]


def transcode_table(from_codec: str, to_codec: str) -> bytes | None:
    """A ``bytes.translate`` table from one G.711 law to the other, or None when they are the same."""
    if from_codec == to_codec:
        return None
    if (from_codec, to_codec) == ("PCMU", "PCMA"):
        return _ULAW_TO_ALAW
    if (from_codec, to_codec) == ("PCMA", "PCMU"):
        return _ALAW_TO_ULAW
    raise ValueError(f"no G.711 translation from {from_codec!r} to {to_codec!r}")


#: codec name -> (static RTP payload type, encode, decode)
CODECS = {
    "PCMU": (0, encode_ulaw, decode_ulaw),
    "PCMA": (8, encode_alaw, decode_alaw),
}
