"""Answering-machine detection on live media for the dialer service (the trio side of
:class:`engine.dialing.AnswerListener`).

The far end's audio is read where the media framework decodes it: a sink appended to the call's RTP
endpoint (``RtpEndpoint.sinks``) gets every 20 ms frame the endpoint's clock produces, and the media
framework's own voice-activity measurement (:class:`engine.media.VoiceActivityDetector`, run here
without hang-over so the detector still sees the short pauses between words) says which frames are
speech. The sink never blocks the media clock: frames go through a bounded channel and are dropped
(counted) if this task falls behind. Gaps count as silence only while the endpoint receives no packets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import trio

from .dialing import AnswerListener, BeepEnded, Decided
from .media import FRAME_SECONDS, VoiceActivityDetector

log = logging.getLogger("centralita.dialer")

__all__ = ["listen_to_answer"]

#: ~1 s of frames: enough to ride out a slow scheduler turn, bounded whatever the far end sends
_QUEUE_FRAMES = 50
#: frames later than this are not coming: count the time as silence even though packets arrive
_GIVE_UP_WAITING = 0.5


class _Tap:
    """A media Sink handing frames to the listening task; must not block the media clock."""

    def __init__(self, send: trio.MemorySendChannel[tuple[np.ndarray, float]], clock: Callable[[], float]) -> None:
        self._send = send
        self._clock = clock
        self.dropped = 0

    def write_frame(self, frame: np.ndarray) -> None:
        try:
            self._send.send_nowait((frame.copy(), self._clock()))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.dropped += 1


async def listen_to_answer(endpoint: Any, listener: AnswerListener, clock: Callable[[], float],
                           on_event: Callable[[Decided | BeepEnded], bool]) -> None:
    """Feed ``listener`` from ``endpoint`` until it is done, the endpoint closes, or ``on_event``
    returns False (the call is gone). ``on_event`` is called for each event as it happens."""
    send, receive = trio.open_memory_channel[tuple[np.ndarray, float]](_QUEUE_FRAMES)
    tap = _Tap(send, clock)
    vad = VoiceActivityDetector(hangover_ms=0)
    endpoint.sinks.append(tap)
    packets = getattr(endpoint, "packets_in", None)
    try:
        while not listener.done and not getattr(endpoint, "closed", False):
            events: list[Decided | BeepEnded] = []
            timed_out = True
            # At least a frame's time per wait: frames that are late must not turn this into a busy loop
            # that starves the media clock producing them.
            with trio.move_on_after(max(FRAME_SECONDS, listener.next_deadline() - clock())):
                frame, at = await receive.receive()
                timed_out = False
                events = listener.feed(frame, at, voiced=vad.feed(frame))
            if timed_out:
                # Nothing decoded in time. Silence only if nothing was received either (packets that came
                # in are frames the media clock has yet to decode on a busy machine), or if the frames are
                # so late that they will not come any more (the media clock skips a stall of over 0.2 s;
                # packets it cannot decode, a wrong payload type, never make frames).
                now = clock()
                arrived = getattr(endpoint, "packets_in", None)
                if arrived is None or arrived == packets or now - listener.next_deadline() > _GIVE_UP_WAITING:
                    events = listener.catch_up(now)
                packets = arrived
            for event in events:
                if not on_event(event):
                    return
    finally:
        try:
            endpoint.sinks.remove(tap)
        except ValueError:
            pass
        send.close()
        if tap.dropped:
            log.info("dialer: %d frames of %s arrived faster than detection read them", tap.dropped,
                     getattr(endpoint, "name", "a call"))
