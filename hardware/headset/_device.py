"""The headset driver: a local agent position on the appliance (sounddevice/PortAudio).

Audio crosses threads in bounded buffers. The PortAudio callback (a foreign real-time thread) never
blocks and never raises: captured blocks go to trio with ``TrioToken.run_sync_soon`` into a bounded
channel (a full channel drops the block and counts it; raising there would crash trio with a
TrioInternalError, ecosystem.md §3.1), and playout is taken from a bounded deque (an empty deque
plays silence and counts an underrun). Frames on the trio side are 20 ms of 8 kHz int16 mono.

Unplug: the stream stops being active (or PortAudio errors); the driver reports DISCONNECTED, and
while no stream is open it rescans the devices for the name, reopening when it is back.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import trio

from engine.abc import Capability, Device, DeviceHealth, DeviceSpec
from engine.media import Resampler, frame_dbfs

from .._health_file import event_text, write_health_snapshot
from ._audio import audio_backend

__all__ = ["Headset"]

log = logging.getLogger("centralita.hardware.headset")
FRAME = 160
#: What the level meter reads with nothing measured yet (the media framework's digital silence).
SILENCE_DBFS = -120.0
#: A DeviceLevel event is published when a level moved by this much, or after this many 200 ms ticks
#: anyway: a live meter without five identical events a second per idle headset on the bus.
LEVEL_STEP_DB = 1.0
LEVEL_HEARTBEAT_TICKS = 10


class Headset(Device):
    capabilities = Capability.AUDIO

    def __init__(self, spec: DeviceSpec, context: Any = None) -> None:
        options = dict(spec.options)
        self.spec = spec
        self.name = spec.name
        self.context = context
        self.device_name = str(options.get("device") or spec.port or "default")
        self.rate = int(options.get("rate", 48000))
        if self.rate % 50:
            raise ValueError(f"device {spec.name}: rate must be a multiple of 50 Hz (20 ms blocks)")
        self.block = self.rate // 50
        self.rescan_interval = float(options.get("rescan_interval", 2.0))
        self.buffer_frames = int(options.get("buffer_frames", 50))
        self._health = DeviceHealth.STARTING
        self._reason = ""
        self._changed = trio.Event()
        self._frames_send, self._frames = trio.open_memory_channel[np.ndarray](self.buffer_frames)
        self._playout: collections.deque[bytes] = collections.deque()
        self._captured = np.zeros(0, dtype=np.int16)
        # Streaming windowed-sinc resamplers (engine.media): no clicks at block edges, DTMF intact.
        self._down = Resampler(self.rate, 8000)
        self._up = Resampler(8000, self.rate)
        self.counters = {
            "captured_frames": 0,
            "captured_dropped": 0,
            "played_blocks": 0,
            "underruns": 0,
            "playout_dropped": 0,
            "callback_errors": 0,
            "status_flags": 0,
            "opens": 0,
            "unplugs": 0,
        }
        self._closed = False
        self._stream: Any = None
        self._tick = trio.Event()  # set once per batch of PortAudio callbacks (from the trio thread)
        self._capture: collections.deque[bytes] = collections.deque()
        self._wakeup_pending = False
        # Level meter: the loudest 20 ms frame (RMS dBFS, engine.media.frame_dbfs) since the last tick.
        self._input_peak = self._output_peak = SILENCE_DBFS
        self._published_levels = (SILENCE_DBFS, SILENCE_DBFS)
        self._ticks_since_level = 0

    # ------------------------------------------------------------------ Device
    def health(self) -> DeviceHealth:
        return self._health

    def _set_health(self, health: DeviceHealth, reason: str = "") -> None:
        if (health, reason) == (self._health, self._reason):
            return
        self._health, self._reason = health, reason
        self._changed.set()
        self._changed = trio.Event()
        bus = getattr(self.context, "bus", None)
        if bus is not None:
            bus.publish("DeviceStateChange", Device=self.name, State=health.value, Reason=event_text(reason))
        write_health_snapshot(getattr(self.context, "data_dir", None), self.name, health.value, self.describe())

    async def wait_health(self, *wanted: DeviceHealth) -> DeviceHealth:
        while self._health not in wanted:
            await self._changed.wait()
        return self._health

    def statistics(self) -> Mapping[str, Any]:
        return {"health": self._health.value, **self.counters}

    def describe(self) -> Mapping[str, Any]:
        return {"driver": "headset", "device": self.device_name, "rate": self.rate, "reason": self._reason}

    # ------------------------------------------------------------------ audio API (trio side)
    async def receive_frame(self) -> np.ndarray:
        """The next 20 ms of what the agent said (160 int16 samples at 8 kHz)."""
        return await self._frames.receive()

    def send_frame_nowait(self, pcm: np.ndarray) -> None:
        """Queue 20 ms of 8 kHz audio for the earpiece. A full buffer drops it (counted)."""
        if len(self._playout) >= self.buffer_frames:
            self.counters["playout_dropped"] += 1
            return
        pcm = np.asarray(pcm, dtype=np.int16)
        self._output_peak = max(self._output_peak, frame_dbfs(pcm))
        block = self._up.process(pcm)
        if len(block):
            self._playout.append(block.astype("<i2").tobytes())

    # ---- engine.media Source/Sink: room.join("agent", headset, headset)
    def read_frame(self) -> np.ndarray | None:
        """What the agent said in the last 20 ms, or silence when nothing is buffered."""
        try:
            return self._frames.receive_nowait()
        except trio.WouldBlock:
            return np.zeros(FRAME, dtype=np.int16)

    def write_frame(self, frame: np.ndarray) -> None:
        self.send_frame_nowait(frame)

    # ------------------------------------------------------------------ PortAudio side
    def _callback(self, indata: Any, outdata: Any, frames: int, time: Any, status: Any) -> None:
        # PortAudio's thread: no blocking, no exceptions out of here.
        try:
            if status:
                self.counters["status_flags"] += 1
            # Captured audio goes into a bounded deque; trio is woken at most once per batch, so a
            # device faster than real time (ALSA's null PCM) cannot flood trio's run_sync_soon queue.
            if len(self._capture) >= self.buffer_frames:
                self.counters["captured_dropped"] += 1
            else:
                self._capture.append(bytes(indata))
            if not self._wakeup_pending:
                self._wakeup_pending = True
                try:
                    self._token.run_sync_soon(self._deliver)
                except trio.RunFinishedError:
                    pass
            wanted = len(outdata)
            block = b""
            while len(block) < wanted:
                try:
                    block += self._playout.popleft()
                except IndexError:
                    break
            if len(block) > wanted:
                self._playout.appendleft(block[wanted:])  # this thread is the only consumer
                block = block[:wanted]
            if len(block) < wanted:
                if not block:
                    self.counters["underruns"] += 1
                block += b"\x00" * (wanted - len(block))
            else:
                self.counters["played_blocks"] += 1
            outdata[:] = block
        except Exception:  # noqa: BLE001 - the PortAudio boundary: nothing may escape
            self.counters["callback_errors"] += 1

    async def wait_playout_drained(self) -> None:
        """Wait until everything queued with :meth:`send_frame_nowait` has gone to PortAudio."""
        while self._playout:
            await self._tick.wait()

    def _deliver(self) -> None:
        # Runs in the trio thread via run_sync_soon: must never raise (TrioInternalError otherwise).
        self._wakeup_pending = False  # cleared before draining: a block appended meanwhile re-arms it
        self._tick.set()
        self._tick = trio.Event()
        # Only what is there now: a device faster than real time must not keep trio in here forever.
        for _ in range(len(self._capture)):
            try:
                raw = self._capture.popleft()
            except IndexError:
                return
            self._convert(raw)

    def _convert(self, raw: bytes) -> None:
        try:
            samples = self._down.process(np.frombuffer(raw, dtype="<i2"))
            self._captured = np.concatenate((self._captured, samples)) if len(self._captured) else samples
            while len(self._captured) >= FRAME:
                frame, self._captured = self._captured[:FRAME].copy(), self._captured[FRAME:]
                try:
                    self._input_peak = max(self._input_peak, frame_dbfs(frame))
                    self._frames_send.send_nowait(frame)
                    self.counters["captured_frames"] += 1
                except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                    self.counters["captured_dropped"] += 1
        except Exception:  # noqa: BLE001 - the PortAudio boundary: nothing may escape
            self.counters["callback_errors"] += 1

    # ------------------------------------------------------------------ lifecycle
    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        backend = audio_backend()
        if backend.error:
            self._set_health(DeviceHealth.UNAVAILABLE, backend.error)
            log.warning("headset %s unavailable: %s", self.name, backend.error)
            await trio.sleep_forever()
        self._token = trio.lowlevel.current_trio_token()
        while not self._closed:
            device = backend.find(self.device_name)
            if device is None:
                self._set_health(DeviceHealth.DISCONNECTED, f"no audio device named {self.device_name!r}")
                await trio.sleep(self.rescan_interval)
                backend.rescan()
                continue
            try:
                stream = backend.sd.RawStream(
                    device=device["index"],
                    samplerate=self.rate,
                    channels=1,
                    dtype="int16",
                    blocksize=self.block,
                    callback=self._callback,
                )
                stream.start()
            except Exception as exc:  # PortAudioError and friends: translate at the boundary  # noqa: BLE001 - the PortAudio boundary: nothing may escape
                self._set_health(DeviceHealth.DISCONNECTED, f"cannot open {device['name']}: {exc}")
                await trio.sleep(self.rescan_interval)
                continue
            self.counters["opens"] += 1
            self._stream = stream
            self._set_health(DeviceHealth.OK)
            try:
                while stream.active and not self._closed:
                    await trio.sleep(0.2)
                    self._publish_levels()
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self._close_stream, stream)
            if not self._closed:
                self.counters["unplugs"] += 1
                self._set_health(DeviceHealth.DISCONNECTED, f"{device['name']} stopped (unplugged?)")
                await trio.sleep(self.rescan_interval)
                backend.rescan()

    def _publish_levels(self) -> None:
        """``DeviceLevel`` (Device, InputDbfs, OutputDbfs) for the console's live meter; called every 200 ms."""
        levels = (round(self._input_peak, 1), round(self._output_peak, 1))
        self._input_peak = self._output_peak = SILENCE_DBFS
        self._ticks_since_level += 1
        moved = any(abs(new - old) >= LEVEL_STEP_DB for new, old in zip(levels, self._published_levels, strict=True))
        if not moved and self._ticks_since_level < LEVEL_HEARTBEAT_TICKS:
            return
        self._published_levels = levels
        self._ticks_since_level = 0
        bus = getattr(self.context, "bus", None)
        if bus is not None:
            bus.publish("DeviceLevel", Device=self.name, InputDbfs=levels[0], OutputDbfs=levels[1])

    def _close_stream(self, stream: Any) -> None:
        try:
            stream.abort()
            stream.close()
        except Exception as exc:  # noqa: BLE001 - an unplugged device may fail to close; it is gone anyway
            log.debug("headset %s: closing the stream: %s", self.name, exc)
        self._stream = None

    async def aclose(self) -> None:
        self._closed = True
        await trio.lowlevel.checkpoint()
