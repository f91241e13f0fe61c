"""A call on a voice modem in voice mode (:class:`VoiceCall`): 20 ms frames of 8 kHz PCM both ways.

It is also an ``engine.media`` Source and Sink, so the media framework can mix it like any leg. The
modem (``_device.VoiceModem``) feeds it from its reader task and carries its frames to the serial port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import trio

from .. import _g711
from ._callerid import CallerId
from ._dle import shield
from ._profiles import VoiceFormat

if TYPE_CHECKING:
    from ._device import VoiceModem

__all__ = ["FRAME_SAMPLES", "VoiceCall"]

FRAME_SAMPLES = 160  # 20 ms at 8 kHz


class VoiceCall:
    """One call in voice mode. Receive with :meth:`receive_frame`, send with :meth:`send_frame`."""

    def __init__(
        self,
        modem: VoiceModem,
        voice_format: VoiceFormat,
        caller_id: CallerId,
        direction: str,
        buffer_frames: int = 100,
    ) -> None:
        self.modem = modem
        self.format = voice_format
        self.caller_id = caller_id
        self.direction = direction
        self._frames_send, self._frames = trio.open_memory_channel[np.ndarray](buffer_frames)
        self._digits_send, self.digits = trio.open_memory_channel[str](64)
        self._remainder = b""
        self.ended = trio.Event()
        #: Set once the driver has put the line back on hook: the line can take the next call.
        self.released = trio.Event()
        self.end_reason = ""
        self.stats = {
            "frames_received": 0,
            "frames_dropped": 0,
            "frames_sent": 0,
            "digits": 0,
            "line_events": 0,
            "receive_underruns": 0,
            "transmit_dropped": 0,
        }
        self.line_events: list[str] = []

    # called from the reader task (synchronously); must never raise
    def _audio(self, data: bytes) -> None:
        width = _g711.FORMATS[self.format.fmt]
        data = self._remainder + data
        frame_bytes = FRAME_SAMPLES * width
        usable = len(data) - len(data) % frame_bytes
        self._remainder = data[usable:]
        for start in range(0, usable, frame_bytes):
            samples = _g711.decode(data[start : start + frame_bytes], self.format.fmt)
            try:
                self._frames_send.send_nowait(samples)
                self.stats["frames_received"] += 1
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                self.stats["frames_dropped"] += 1

    def _digit(self, digit: str) -> None:
        self.stats["digits"] += 1
        try:
            self._digits_send.send_nowait(digit)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def _end(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.ended.set()
        self._frames_send.close()
        self._digits_send.close()

    # ---- engine.media Source/Sink: join a conference with room.join("caller", call, call)
    def read_frame(self) -> np.ndarray | None:
        """Pulled every 20 ms by the media clock: the next frame from the line, silence if none has
        arrived yet (counted), None once the call has ended."""
        try:
            return self._frames.receive_nowait()
        except trio.WouldBlock:
            self.stats["receive_underruns"] += 1
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return None

    def write_frame(self, frame: np.ndarray) -> None:
        """Pushed every 20 ms by the media clock: queue ``frame`` for the line. Never blocks; a full
        queue (the modem stopped taking audio) drops the frame and counts it."""
        if self.ended.is_set():
            return
        wire = shield(_g711.encode(frame, self.format.fmt))
        try:
            self.modem._transmit_send.send_nowait((self, wire))
        except trio.WouldBlock:
            self.stats["transmit_dropped"] += 1

    async def receive_frame(self) -> np.ndarray:
        """The next 20 ms frame; raises :class:`trio.EndOfChannel` once the call has ended."""
        return await self._frames.receive()

    async def send_frame(self, pcm: np.ndarray | bytes) -> None:
        """Play PCM (int16 samples or little-endian bytes) to the line."""
        if self.ended.is_set():
            raise trio.ClosedResourceError(f"call ended ({self.end_reason})")
        samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, (bytes, bytearray)) else pcm
        await self.modem._send_audio(shield(_g711.encode(samples, self.format.fmt)))
        self.stats["frames_sent"] += 1

    async def hangup(self) -> None:
        await self.modem._hangup(self, "local-hangup")

    async def flash(self) -> None:
        await self.modem._flash(self)
