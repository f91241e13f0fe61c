"""Helpers for testing code that uses the hardware drivers (like ``trio.testing``): short timers and
waiting for a driver event. The emulators themselves are in :mod:`hardware.emulators`."""

from __future__ import annotations

from typing import Any, TypeVar

import trio

from ._device import ReconnectPolicy
from .gsm_modem import GsmTimings
from .voice_modem import VoiceModemTimings

__all__ = ["FAST_GSM_TIMINGS", "FAST_RECONNECT", "FAST_VOICE_TIMINGS", "next_event"]

E = TypeVar("E")

FAST_RECONNECT = ReconnectPolicy(initial=0.05, maximum=0.2)
#: Generous enough for a loaded machine, short enough that fault tests finish quickly.
FAST_VOICE_TIMINGS = VoiceModemTimings(
    command_timeout=1.0, keepalive=3600, ring_gone=0.6, answer_after_rings=2
)
FAST_GSM_TIMINGS = GsmTimings(
    command_timeout=1.0,
    send_timeout=5.0,
    sim_wait=0.05,
    retries=2,
    retry_backoff=0.01,
    unhealthy_after=4,
    poll_interval=3600,
)


async def next_event(device: Any, kind: type[E], *, timeout: float = 10.0) -> E:
    """The next event of type ``kind`` from ``device.events`` (others are skipped); fails after ``timeout``."""
    with trio.fail_after(timeout):
        async for event in device.events:
            if isinstance(event, kind):
                return event
    raise AssertionError("the device's event channel closed")
