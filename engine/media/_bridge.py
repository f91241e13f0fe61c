"""Bridges (two legs relayed, optionally recorded) and conference rooms (mixed on the media clock)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._audio import FRAME_SAMPLES, Sink, Source
from ._endpoint import RtpEndpoint
from ._errors import MediaUsageError
from ._g711 import CODECS, SILENCE_BYTE
from ._mixer import Conference, Role
from ._recording import Recording

if TYPE_CHECKING:
    from ._engine import MediaEngine

__all__ = ["Bridge", "ConferenceRoom", "record_tick"]

log = logging.getLogger("centralita.media")

_RECORD_BACKLOG_FRAMES = 10  # per leg; beyond this (clock drift, a burst) the oldest audio is dropped
_PREBUFFER_SAMPLES = 2 * FRAME_SAMPLES
_BATCH_TICKS = 25  # decode and hand to the recording every half second (a crash loses at most ~1 s)


class _LegBuffer:
    """One leg's G.711 payload bytes waiting for the recorder (one byte is one sample).

    Packets arrive with jitter and in any size (20 or 30 ms); the recorder takes exactly one 160-sample
    frame per tick. Waiting for two frames before playing out (and again after running dry) keeps
    jitter from punching 20 ms holes of silence into the recording. Bytes, not samples: the relay path
    only appends a slice, and decoding happens once per batch (half a second) in one numpy operation.
    """

    __slots__ = ("chunks", "samples", "primed", "silence", "decode")

    def __init__(self, codec: str) -> None:
        self.chunks: list[bytes] = []
        self.samples = 0
        self.primed = False
        self.silence = bytes([SILENCE_BYTE[codec]]) * FRAME_SAMPLES
        self.decode = CODECS[codec][2]

    def append(self, payload: bytes) -> None:
        self.chunks.append(payload)
        self.samples += len(payload)
        while self.samples > _RECORD_BACKLOG_FRAMES * FRAME_SAMPLES:  # clock drift or a burst
            self.samples -= len(self.chunks.pop(0))

    def pop_frame(self, *, draining: bool = False) -> bytes | None:
        """160 payload bytes, or None for a frame of silence (nothing arrived)."""
        if not self.primed and (self.samples >= _PREBUFFER_SAMPLES or (draining and self.samples)):
            self.primed = True
        if not self.primed or self.samples == 0:
            self.primed = False
            return None
        chunks = self.chunks
        head = chunks[0]
        if len(head) == FRAME_SAMPLES:  # the usual 20 ms packet
            self.samples -= FRAME_SAMPLES
            return chunks.pop(0)
        parts, need = [], FRAME_SAMPLES
        while need and chunks:
            head = chunks[0]
            if len(head) <= need:
                parts.append(chunks.pop(0))
                need -= len(head)
            else:
                parts.append(head[:need])
                chunks[0] = head[need:]
                need = 0
        self.samples -= FRAME_SAMPLES - need
        if need:
            parts.append(self.silence[:need])
            self.primed = False
        return b"".join(parts)

    def clear(self) -> None:
        self.chunks.clear()
        self.samples = 0
        self.primed = False


class Bridge:
    """Two legs connected. Relayed packet by packet when both are G.711 and nothing needs the audio."""

    def __init__(self, engine: MediaEngine, caller: RtpEndpoint, agent: RtpEndpoint) -> None:
        self.engine = engine
        self.caller = caller
        self.agent = agent
        self.recording: Recording | None = None
        self._fifo = {"caller": _LegBuffer(caller.codec), "agent": _LegBuffer(agent.codec)}
        self._batch: dict[str, list[bytes | None]] = {"caller": [], "agent": []}
        self._batch_size = _BATCH_TICKS
        self._pair_legs()

    def _pair_legs(self) -> None:
        # (fifo, frames) per leg, caller first: what record_tick walks every 20 ms
        self._legs = tuple((self._fifo[side], self._batch[side]) for side in ("caller", "agent"))

    def start_recording(self, path: str | Path, *, stereo: bool = True,
                        on_alarm: Callable[[Recording, OSError], None] | None = None) -> Recording:
        """Record both legs (caller left, agent right when stereo); on demand, at any point in the call."""
        if self.recording is not None and not self.recording.closed:
            raise MediaUsageError("this bridge is already recording")
        user_alarm = on_alarm or self.engine.on_recording_alarm
        engine = self.engine

        def alarm(recording: Recording, error: OSError) -> None:
            engine.recording_alarms += 1
            log.error("recording %s stopped: %s (the call goes on)", recording.path, error)
            if user_alarm is not None:
                try:
                    user_alarm(recording, error)
                except Exception:
                    engine.callback_errors += 1
                    log.exception("recording alarm callback failed")

        self.recording = Recording(path, stereo=stereo, on_alarm=alarm, flush_seconds=0.5)
        self._fifo = {"caller": _LegBuffer(self.caller.codec), "agent": _LegBuffer(self.agent.codec)}
        self._pair_legs()
        # first batch after a random part of the interval: bridges recorded together spread their
        # decoding and disk writes over the ticks instead of all landing on one
        self._batch_size = random.randint(1, _BATCH_TICKS)
        self.caller._record_side = self._fifo["caller"]
        self.agent._record_side = self._fifo["agent"]
        self.engine._recording_bridges.add(self)
        return self.recording

    def stop_recording(self) -> None:
        """Write what is still queued, close the file (idempotent)."""
        recording = self.recording
        self.caller._record_side = self.agent._record_side = None
        self.engine._recording_bridges.discard(self)
        if recording is not None and not recording.closed:
            while self._fifo["caller"].samples or self._fifo["agent"].samples:
                self._take_frames(draining=True)
            self._write_batch(recording)
            recording.close()
        for side in ("caller", "agent"):
            self._fifo[side].clear()
            self._batch[side].clear()

    def _write_tick(self) -> None:
        record_tick((self,))

    def _take_frames(self, *, draining: bool = False) -> None:
        for side in ("caller", "agent"):
            self._batch[side].append(self._fifo[side].pop_frame(draining=draining))

    def _write_batch(self, recording: Recording) -> None:
        if not self._batch["caller"]:
            return
        legs = []
        for side in ("caller", "agent"):
            fifo, frames = self._fifo[side], self._batch[side]
            pcm = fifo.decode(b"".join(fifo.silence if f is None else f for f in frames))
            silent = [i for i, f in enumerate(frames) if f is None]
            if silent:  # true digital silence (A-law's quietest code decodes to 8, not 0)
                pcm.reshape(-1, FRAME_SAMPLES)[silent] = 0
            legs.append(pcm)
            frames.clear()
        recording.write(legs[0], legs[1])

    def close(self) -> None:
        self.stop_recording()
        self.engine.unbridge(self)


def record_tick(bridges: Iterable[Bridge]) -> None:
    """One 20 ms step of every recorded bridge: take a frame (or a gap) from each leg's buffer.

    The media clock runs this for hundreds of recorded calls 50 times a second, so the usual case - a
    primed buffer whose next chunk is one 20 ms packet - is inlined here (what ``_LegBuffer.pop_frame``
    does for it); everything else goes through ``pop_frame``.
    """
    for bridge in bridges:
        recording = bridge.recording
        if recording is None:
            continue
        if recording.closed:  # the disk filled up: the call goes on, unrecorded
            bridge.stop_recording()
            continue
        for fifo, frames in bridge._legs:
            chunks = fifo.chunks
            if fifo.primed and chunks and len(chunks[0]) == FRAME_SAMPLES:
                fifo.samples -= FRAME_SAMPLES
                frames.append(chunks.pop(0))
            else:
                frames.append(fifo.pop_frame())
        if len(frames) >= bridge._batch_size:  # (frames: the agent's; both legs always have as many)
            bridge._batch_size = _BATCH_TICKS
            bridge._write_batch(recording)


class ConferenceRoom:
    """A :class:`Conference` mixed on the media clock. Members are any Source/Sink pair."""

    def __init__(self, engine: MediaEngine) -> None:
        self.engine = engine
        self.conference = Conference()
        self._members: dict[str, tuple[Source, Sink]] = {}
        self._legs: dict[str, RtpEndpoint] = {}
        self.recording: Recording | None = None
        self._recorded: tuple[str, str] = ("caller", "agent")

    def start_recording(self, path: str | Path, *, stereo: bool = True, left: str = "caller", right: str = "agent",
                        on_alarm: Callable[[Recording, OSError], None] | None = None) -> Recording:
        """Record what members ``left`` and ``right`` say (left and right channel when stereo, else
        mixed), as they said it: before mixing, so a supervisor's whisper never lands in the file."""
        if self.recording is not None and not self.recording.closed:
            raise MediaUsageError("this room is already recording")
        self.recording = Recording(path, stereo=stereo, on_alarm=on_alarm or self.engine.on_recording_alarm)
        self._recorded = (left, right)
        return self.recording

    def stop_recording(self) -> None:
        """Write what is buffered and close the file (idempotent)."""
        if self.recording is not None:
            self.recording.close()

    def join(self, name: str, source: Source, sink: Sink, role: Role | str = Role.PARTY, *,
             whisper_to: str | None = None) -> None:
        self.conference.add(name, role, whisper_to=whisper_to)
        self._members[name] = (source, sink)

    def join_endpoint(self, name: str, endpoint: RtpEndpoint, role: Role | str = Role.PARTY, *,
                      whisper_to: str | None = None) -> None:
        if endpoint.closed:
            raise MediaUsageError(f"{endpoint.name} is released")
        self.engine.unbridge(endpoint.bridge)
        self.join(name, endpoint.source, endpoint.sink, role, whisper_to=whisper_to)
        self._legs[name] = endpoint
        self.engine._wake(endpoint)

    def set_role(self, name: str, role: Role | str, *, whisper_to: str | None = None) -> None:
        self.conference.set_role(name, role, whisper_to=whisper_to)

    def leave(self, name: str) -> None:
        self.conference.remove(name)
        self._members.pop(name, None)
        self._legs.pop(name, None)

    def _tick(self) -> None:
        for name in [n for n, leg in self._legs.items() if leg.closed]:
            self.leave(name)  # that leg hung up
        inputs = {name: source.read_frame() for name, (source, _) in self._members.items()}
        recording = self.recording
        if recording is not None and not recording.closed:
            left, right = (inputs.get(name) for name in self._recorded)
            quiet = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            recording.write(quiet if left is None else left, quiet if right is None else right)
        for name, frame in self.conference.mix(inputs).items():
            self._members[name][1].write_frame(frame)

    def close(self) -> None:
        self.stop_recording()
        self._members.clear()
        self._legs.clear()
        self.engine._rooms.discard(self)
