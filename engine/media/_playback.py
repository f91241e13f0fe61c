"""Prompts, the prompt library, music on hold and text-to-speech.

Prompts are decoded, mixed to mono and resampled to 8 kHz when they are *loaded* (when a flow or a
queue is configured), so a broken file is a :class:`PromptFormatError` at load time, never a silent
caller later. Loaded prompts are immutable int16 arrays shared by every call playing them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ._audio import FRAME_SAMPLES
from ._errors import PromptFormatError, PromptNotFoundError, TtsUnavailableError
from ._wav import load_wav_8k

__all__ = ["Prompt", "PromptPlayer", "PromptLibrary", "MusicOnHold", "TextToSpeech", "load_prompt"]


class Prompt:
    """8 kHz mono int16 audio loaded from a file (read-only)."""

    __slots__ = ("name", "samples")

    def __init__(self, name: str, samples: np.ndarray) -> None:
        self.name = name
        samples = np.asarray(samples, dtype=np.int16).copy()
        samples.flags.writeable = False
        self.samples = samples

    @property
    def duration(self) -> float:
        return len(self.samples) / 8000.0

    def player(self, *, loop: bool = False) -> PromptPlayer:
        return PromptPlayer(self, loop=loop)


def load_prompt(path: str | os.PathLike[str]) -> Prompt:
    samples = load_wav_8k(path)
    if len(samples) == 0:
        raise PromptFormatError(f"{path}: the prompt holds no audio")
    return Prompt(Path(path).stem, samples)


class PromptPlayer:
    """A :class:`Source` over a prompt; ``loop=True`` for music on hold. The last frame is padded."""

    def __init__(self, prompt: Prompt, *, loop: bool = False) -> None:
        self.prompt = prompt
        self.loop = loop
        self.position = 0
        self.finished = False

    def read_frame(self) -> np.ndarray | None:
        samples = self.prompt.samples
        if self.position >= len(samples):
            if not self.loop:
                self.finished = True
                return None
            self.position = 0
        end = self.position + FRAME_SAMPLES
        frame = samples[self.position : end]
        self.position = end
        if len(frame) < FRAME_SAMPLES:
            rest = FRAME_SAMPLES - len(frame)
            if self.loop:
                self.position = rest
                return np.concatenate([frame, samples[:rest]])
            return np.concatenate([frame, np.zeros(rest, dtype=np.int16)])
        return frame.copy()


class PromptLibrary:
    """Prompts in per-language folders: ``<root>/<language>/<name>.wav``.

    Lookup tries the asked language, then its base (``es`` for ``es-MX``), then each fallback language
    in order, then ``<root>/<name>.wav``. Loaded prompts are cached.
    """

    def __init__(self, root: str | os.PathLike[str], *, fallback: Iterable[str] = ("en",)) -> None:
        self.root = Path(root)
        self.fallback = tuple(fallback)
        self._cache: dict[Path, Prompt] = {}

    def candidates(self, name: str, language: str | None = None) -> list[Path]:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise PromptNotFoundError(f"not a prompt name: {name!r}")
        file = name if name.endswith(".wav") else name + ".wav"
        languages: list[str] = []
        if language:
            languages.append(language)
            if "-" in language or "_" in language:
                languages.append(language.replace("_", "-").split("-")[0])
        languages.extend(self.fallback)
        seen: list[Path] = []
        for lang in languages:
            path = self.root / lang / file
            if path not in seen:
                seen.append(path)
        seen.append(self.root / file)
        return seen

    def find(self, name: str, language: str | None = None) -> Path:
        candidates = self.candidates(name, language)
        for path in candidates:
            if path.is_file():
                return path
        raise PromptNotFoundError(f"prompt {name!r} not found; looked in " + ", ".join(map(str, candidates)))

    def has_prompt(self, name: str, language: str | None = None) -> bool:
        """Is there a file for this prompt (in the language or a fallback)? For flow validation."""
        try:
            self.find(name, language)
        except PromptNotFoundError:
            return False
        return True

    def load(self, name: str, language: str | None = None) -> Prompt:
        path = self.find(name, language)
        prompt = self._cache.get(path)
        if prompt is None:
            prompt = self._cache[path] = load_prompt(path)
        return prompt

    def validate(self, names: Iterable[str], languages: Iterable[str | None] = (None,)) -> None:
        """Load every prompt a flow uses, in every language it offers: errors now, not mid-call."""
        for language in languages:
            for name in names:
                self.load(name, language)


class MusicOnHold:
    """One looped prompt per queue (the file is loaded once); every caller gets their own position."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.prompt = load_prompt(path)

    def player(self) -> PromptPlayer:
        return PromptPlayer(self.prompt, loop=True)


class TextToSpeech:
    """espeak-ng through a subprocess, cached as 8 kHz WAV files named by a hash of (text, voice, speed).

    Without espeak-ng, :meth:`synthesize` raises :class:`TtsUnavailableError` (with the install
    command); nothing else in media depends on it.
    """

    def __init__(self, cache_dir: str | os.PathLike[str], *, executable: str = "espeak-ng", timeout: float = 30.0):
        self.cache_dir = Path(cache_dir)
        self.executable = executable
        self.timeout = timeout

    def available(self) -> bool:
        return shutil.which(self.executable) is not None

    def cache_path(self, text: str, voice: str = "en", speed: int = 160) -> Path:
        key = hashlib.sha256(f"{voice}\x00{speed}\x00{text}".encode()).hexdigest()[:32]
        return self.cache_dir / f"tts-{key}.wav"

    async def synthesize(self, text: str, *, voice: str = "en", speed: int = 160) -> Prompt:
        import trio  # the only trio use in this module: running the subprocess

        if not text.strip():
            raise ValueError("nothing to say")
        target = self.cache_path(text, voice, speed)
        if not target.is_file():
            exe = shutil.which(self.executable)
            if exe is None:
                raise TtsUnavailableError(
                    f"text-to-speech needs {self.executable}; install it with 'apt-get install -y espeak-ng'"
                )
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(f".{os.getpid()}.part")
            with trio.fail_after(self.timeout):
                # "--" ends options, so text starting with "-" is spoken, not parsed.
                await trio.run_process(
                    [exe, "-v", voice, "-s", str(speed), "-w", str(partial), "--", text],
                    capture_stdout=True,
                    capture_stderr=True,
                )
            samples = load_wav_8k(partial)
            from ._recording import Recording

            rec = Recording(partial.with_suffix(".8k"), stereo=False)
            rec.write(samples)
            rec.close()
            os.replace(partial.with_suffix(".8k"), target)
            partial.unlink(missing_ok=True)
        return load_prompt(target)
