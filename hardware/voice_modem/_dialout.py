"""Dialling out on an analog line: from a dial string to a :class:`~engine.abc.DialResult`.

An analog line says little about how a call went. The modem's final result code to ``ATD`` covers the
line itself (``NO DIALTONE``, ``BUSY`` from modems that listen for it before returning, ``NO ANSWER``
from modems with ringback timers); after that, in voice mode, a busy tone or dial tone (``<DLE>b``,
``<DLE>d``) during the first ``answer_wait`` seconds means the far end is busy or gone. Nothing tells
us when a person picks up: unless the profile says the line reports answer, a call still up after
``answer_wait`` counts as answered, and the line's capabilities (no ``ANSWER_SUPERVISION``) make the
dialer run preview or progressive campaigns, never predictive ones, on it.
"""

from __future__ import annotations

import trio

from engine import DeviceError
from engine.abc import DialResult

from .._at import AtCommandError
from .._atport import AtCommandTimeout
from ._device import VoiceCall, VoiceModem
from ._profiles import InvalidDialString, check_dial_string

__all__ = ["DIAL_RESULT_OUTCOMES", "analog_dial_string", "dial"]

#: The modem's final result code to ATD -> the dial outcome.
DIAL_RESULT_OUTCOMES = {
    "BUSY": "busy",
    "NO ANSWER": "no-answer",
    "NO CARRIER": "no-answer",
    "NO DIALTONE": "congestion",
    "NO DIAL TONE": "congestion",
}


def analog_dial_string(number: str) -> str:
    """The engine hands over numbers as ``+`` and digits (``engine.check_dial``); an analog line dials
    digits only, through whatever prefix its exchange needs, so a ``+`` number is refused here rather
    than guessed at. Raises :class:`InvalidDialString`."""
    return check_dial_string(number)


async def dial(device: VoiceModem, number: str) -> tuple[DialResult, VoiceCall | None]:
    """Dial ``number`` on ``device``; return the outcome and, when answered, the call (in voice mode)."""
    try:
        digits = analog_dial_string(number)
    except InvalidDialString:
        return DialResult("invalid"), None
    try:
        call = await device.dial(digits)
    except AtCommandError as exc:
        return DialResult(DIAL_RESULT_OUTCOMES.get(exc.result.final.upper(), "failed")), None
    except (AtCommandTimeout, DeviceError):
        return DialResult("failed"), None
    if device.line_capabilities.reports_answer:
        return DialResult("answered"), call
    # Listen for a busy tone or the dial tone coming back before calling it answered.
    try:
        with trio.move_on_after(device.timings.answer_wait):
            await call.ended.wait()
    except BaseException:
        with trio.CancelScope(shield=True):
            await call.hangup()  # withdrawn while listening: never leave the line off hook
        raise
    if call.ended.is_set():
        reason = call.end_reason
        return DialResult("busy" if reason == "remote-busy" else "failed"), None
    return DialResult("answered"), call
