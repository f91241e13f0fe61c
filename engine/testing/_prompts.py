"""Prompt files for tests: the engine checks at load time that every prompt a flow names can be played."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..media._wav import wav_header

__all__ = ["write_prompts"]


def write_prompts(data_dir: Path, *names: str, language: str = "en", seconds: float = 0.3,
                  frequency: float = 440.0) -> list[Path]:
    """Write a short tone as ``<data_dir>/prompts/<language>/<name>.wav`` for each name (8 kHz mono).

    Each prompt gets its own pitch (``frequency`` plus 40 Hz per position), so a test that listens can
    tell them apart.
    """
    folder = Path(data_dir) / "prompts" / language
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    t = np.arange(int(8000 * seconds)) / 8000.0
    for index, name in enumerate(names):
        pcm = (0.3 * 32767 * np.sin(2 * np.pi * (frequency + 40 * index) * t)).astype("<i2").tobytes()
        path = folder / f"{name}.wav"
        path.write_bytes(wav_header(1, 8000, len(pcm)) + pcm)
        written.append(path)
    return written
