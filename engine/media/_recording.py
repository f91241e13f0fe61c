"""Call recording to WAV (PCM16, 8 kHz), mono mixed or stereo split, and the retention policy.

Written incrementally: samples are buffered in memory and appended to the file every
``flush_seconds`` (1 s by default), and after each append the RIFF and data sizes in the header are
rewritten, so a crash of the process loses at most the last second and leaves a valid WAV. Writes go
straight to the file descriptor (no Python buffering) so we always know exactly how much landed.

A write error (ENOSPC on a full disk, EDQUOT, EIO...) never reaches the call: the recording truncates
itself to the last whole frame that was written, fixes the header, closes, and calls ``on_alarm`` once.
The caller keeps talking.

The writes are small (16 KB a second for a stereo call) and happen on the media clock's tick; on an
appliance's local disk they take microseconds. A recording on a slow network mount should go through
a thread instead (not done yet).
"""

from __future__ import annotations

import errno
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._audio import SAMPLE_RATE
from ._wav import wav_header

__all__ = ["Recording", "apply_retention"]

_HEADER_BYTES = 44


class Recording:
    """One WAV file being written. ``write(caller, agent)`` once per 20 ms tick."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        stereo: bool = True,
        flush_seconds: float = 1.0,
        on_alarm: Callable[[Recording, OSError], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.stereo = stereo
        self.channels = 2 if stereo else 1
        self.on_alarm = on_alarm
        self._flush_bytes = max(1, int(flush_seconds * SAMPLE_RATE)) * 2 * self.channels
        # The first flush comes after a random 50-100% of the interval, so hundreds of recordings
        # started together do not all hit the disk on the same media tick every second after.
        self._next_flush = max(2 * self.channels, int(self._flush_bytes * random.uniform(0.5, 1.0)))
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.data_bytes = 0  # bytes of samples safely in the file
        self.error: OSError | None = None
        self.closed = False
        self._fd: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o640)
            self._write_all(wav_header(self.channels, SAMPLE_RATE, 0))
        except OSError as exc:
            self._fail(exc)

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def duration(self) -> float:
        return (self.data_bytes + self._pending_bytes) / (2 * self.channels * SAMPLE_RATE)

    def write(self, caller: np.ndarray, agent: np.ndarray | None = None) -> None:
        """Append one tick: caller audio and agent audio (either may be silence), equal lengths."""
        if self.closed:
            return
        if agent is None:
            agent = np.zeros_like(caller)
        if self.stereo:
            both = np.empty(2 * len(caller), dtype="<i2")
            both[0::2] = caller
            both[1::2] = agent
            chunk = both.tobytes()
        else:
            mixed = caller.astype(np.int32) + agent.astype(np.int32)
            chunk = np.clip(mixed, -32768, 32767).astype("<i2").tobytes()
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        if self._pending_bytes >= self._next_flush:
            self._next_flush = self._flush_bytes
            self.flush()

    def write_frame(self, frame: np.ndarray) -> None:
        """The :class:`~engine.media.Sink` face: one leg's audio alone (voicemail, a message).

        ``leg.sinks.append(recording)`` records what the caller says on a terminated leg.
        """
        self.write(frame)

    def flush(self) -> None:
        if self.closed or self._fd is None or not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        try:
            self._write_all(data, counting=True)
            self._fix_header()
        except OSError as exc:
            self._fail(exc)

    def _write_all(self, data: bytes, *, counting: bool = False) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            if written <= 0:
                raise OSError(errno.EIO, "short write")
            if counting:
                self.data_bytes += written
            view = view[written:]

    def _fix_header(self) -> None:
        assert self._fd is not None
        os.pwrite(self._fd, wav_header(self.channels, SAMPLE_RATE, self.data_bytes)[:_HEADER_BYTES], 0)

    def _fail(self, exc: OSError) -> None:
        """Stop cleanly: keep what is whole, make the header true, close, raise the alarm once."""
        self.error = exc
        self._pending.clear()
        self._pending_bytes = 0
        if self._fd is not None:
            frame_bytes = 2 * self.channels
            self.data_bytes -= self.data_bytes % frame_bytes
            for step in (
                lambda: os.ftruncate(self._fd, _HEADER_BYTES + self.data_bytes),
                self._fix_header,
            ):
                try:
                    step()
                except OSError:
                    pass  # the disk is full or gone; the file is as good as we can make it
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        self.closed = True
        if self.on_alarm is not None:
            self.on_alarm(self, exc)

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        if self.closed:  # the last flush failed and already closed it
            return
        self.closed = True
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None


def apply_retention(directory: str | os.PathLike[str], max_age_days: float, *, now: float | None = None,
                    pattern: str = "*.wav") -> list[Path]:
    """Delete recordings (recursively) whose modification time is older than ``max_age_days``.

    Returns what was deleted. Files that vanish or cannot be deleted meanwhile are skipped.
    """
    if max_age_days < 0:
        raise ValueError("max_age_days must be >= 0")
    cutoff = (time.time() if now is None else now) - max_age_days * 86400.0
    deleted: list[Path] = []
    root = Path(directory)
    if not root.is_dir():
        return deleted
    for path in sorted(root.rglob(pattern)):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                path.unlink()
                deleted.append(path)
        except OSError:
            continue
    return deleted
