"""WAV reading (any PCM rate/width/channels, float, G.711) into 8 kHz mono int16, and a streaming writer.

The reader is our own small RIFF parser rather than the ``wave`` module because prompts come from
users: ``wave`` rejects WAVE_FORMAT_EXTENSIBLE before Python 3.12 and float files always, and its
errors do not say what to do. Every unsupported file raises :class:`PromptFormatError` naming the file
and the format found. Reading is bounded: files over ``MAX_PROMPT_BYTES`` are refused.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._audio import SAMPLE_RATE, resample
from ._errors import PromptFormatError
from ._g711 import decode_alaw, decode_ulaw

__all__ = ["read_wav", "load_wav_8k", "WavInfo", "wav_header", "MAX_PROMPT_BYTES"]

MAX_PROMPT_BYTES = 64 * 1024 * 1024
_PCM, _FLOAT, _ALAW, _ULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_FORMAT_NAMES = {2: "MS ADPCM", 0x11: "IMA ADPCM", 0x31: "GSM 6.10", 0x55: "MP3", 0x50: "MPEG"}


@dataclass(frozen=True, slots=True)
class WavInfo:
    format_tag: int
    channels: int
    sample_rate: int
    bits: int
    frames: int


def wav_header(channels: int, sample_rate: int, data_bytes: int, bits: int = 16) -> bytes:
    """A canonical 44-byte PCM WAV header."""
    block = channels * bits // 8
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, _PCM, channels, sample_rate,
        sample_rate * block, block, bits, b"data", data_bytes,
    )


def read_wav(path: str | os.PathLike[str]) -> tuple[WavInfo, np.ndarray]:
    """Read a WAV file: (info, float64 samples shaped (frames, channels) in -32768..32767 scale)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_PROMPT_BYTES:
            raise PromptFormatError(f"{path}: {size} bytes is larger than the {MAX_PROMPT_BYTES}-byte prompt limit")
        data = path.read_bytes()
    except PromptFormatError:
        raise
    except OSError as exc:
        raise PromptFormatError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise PromptFormatError(f"{path}: not a WAV file (no RIFF/WAVE header); convert it with "
                                f"'sox {path.name} -r 8000 -c 1 -b 16 out.wav'")
    fmt: tuple[int, int, int, int] | None = None
    pcm: bytes | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, chunk_size = struct.unpack_from("<4sI", data, offset)
        body = data[offset + 8 : offset + 8 + chunk_size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise PromptFormatError(f"{path}: fmt chunk too short")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == _EXTENSIBLE:
                if len(body) < 40:
                    raise PromptFormatError(f"{path}: WAVE_FORMAT_EXTENSIBLE without its sub-format")
                tag = struct.unpack_from("<H", body, 24)[0]
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            pcm = body
            break
        offset += 8 + chunk_size + (chunk_size & 1)
    if fmt is None or pcm is None:
        raise PromptFormatError(f"{path}: WAV file without {'fmt' if fmt is None else 'data'} chunk")
    tag, channels, rate, bits = fmt
    if channels < 1 or channels > 16 or rate < 1000 or rate > 384000:
        raise PromptFormatError(f"{path}: implausible WAV format ({channels} channels at {rate} Hz)")
    samples = _decode(path, tag, bits, pcm)
    frames = len(samples) // channels
    samples = samples[: frames * channels].reshape(frames, channels)
    return WavInfo(tag, channels, rate, bits, frames), samples


def _decode(path: Path, tag: int, bits: int, pcm: bytes) -> np.ndarray:
    if tag == _PCM and bits == 8:
        return (np.frombuffer(pcm, np.uint8).astype(np.float64) - 128.0) * 256.0
    if tag == _PCM and bits == 16:
        return np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2").astype(np.float64)
    if tag == _PCM and bits == 24:
        raw = np.frombuffer(pcm[: len(pcm) // 3 * 3], np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value.astype(np.float64) / 256.0
    if tag == _PCM and bits == 32:
        return np.frombuffer(pcm[: len(pcm) // 4 * 4], "<i4").astype(np.float64) / 65536.0
    if tag == _FLOAT and bits in (32, 64):
        dtype = "<f4" if bits == 32 else "<f8"
        width = bits // 8
        values = np.frombuffer(pcm[: len(pcm) // width * width], dtype).astype(np.float64)
        return np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0) * 32767.0
    if tag == _ALAW and bits == 8:
        return decode_alaw(pcm).astype(np.float64)
    if tag == _ULAW and bits == 8:
        return decode_ulaw(pcm).astype(np.float64)
    name = _FORMAT_NAMES.get(tag, f"format tag 0x{tag:04x}")
    raise PromptFormatError(
        f"{path}: unsupported WAV encoding ({name}, {bits} bits); use PCM, float, A-law or µ-law, e.g. "
        f"'sox {path.name} -r 8000 -c 1 -b 16 out.wav'"
    )


def load_wav_8k(path: str | os.PathLike[str]) -> np.ndarray:
    """A WAV file as 8 kHz mono int16: channels averaged, resampled, clipped."""
    info, samples = read_wav(path)
    mono = samples.mean(axis=1) if info.channels > 1 else samples[:, 0]
    mono = np.clip(np.round(mono), -32768, 32767).astype(np.int16)
    return resample(mono, info.sample_rate, SAMPLE_RATE)
