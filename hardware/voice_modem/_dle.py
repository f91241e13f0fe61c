"""V.253 DLE shielding for voice receive/transmit (sans-IO).

In voice mode the modem's byte stream is audio in which 0x10 (DLE) introduces a two-byte code:
``<DLE><DLE>`` is one literal 0x10 sample, ``<DLE><ETX>`` ends the stream, and every other
``<DLE><code>`` is an in-band event. A DLE may be the last byte of one read and its code the first of
the next, so the decoder keeps that one byte of state. Unknown codes are counted and skipped; the audio
around them is kept.

Modem -> host codes (V.253 §6.5 and the chipset references in reliability.md §6.4):

======  ===============================  =====================================================
code    meaning                          what the driver does
======  ===============================  =====================================================
0-9*#   DTMF digit (A-D too)             a DTMF event (debounced: :class:`DtmfDebouncer`)
``/``   start of DTMF tone (shielded)    ignored (the digit code itself is the event)
``~``   end of DTMF tone                 ignored
b       busy tone                        the call ends (far end busy or hung up)
d       dial tone                        the call ends (the line is idle again)
s       silence detected                 reported; ends an IVR call on a long silence
q       quiet after speech               reported
l       loop-current interruption        the call ends: the far end hung up (FXO)
h / H   local handset on / off hook      reported
c / e   fax / data calling tone          reported
o / u   receive overrun / transmit under counted
R       ring (in voice mode)             reported
======  ===============================  =====================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "DLE",
    "END_OF_CALL_CODES",
    "ETX",
    "HOST_ABORT_RECEIVE",
    "HOST_END_TRANSMIT",
    "AudioData",
    "DleDecoder",
    "DleEvent",
    "DtmfDebouncer",
    "EndOfStream",
    "shield",
]

DLE = 0x10
ETX = 0x03
SUB = 0x1A  # some modems send <DLE><SUB> for <DLE><DLE><DLE> (two literal DLEs), V.253 §6.5.2

DTMF_CODES = frozenset(b"0123456789*#ABCD")
EVENT_CODES = {
    ord("b"): "busy",
    ord("d"): "dial-tone",
    ord("s"): "silence",
    ord("q"): "quiet",
    ord("l"): "loop-current-drop",
    ord("h"): "handset-on-hook",
    ord("H"): "handset-off-hook",
    ord("c"): "fax-calling-tone",
    ord("e"): "data-calling-tone",
    ord("o"): "receive-overrun",
    ord("u"): "transmit-underrun",
    ord("R"): "ring",
    ord("/"): "dtmf-start",
    ord("~"): "dtmf-end",
}
#: Events after which an FXO call is over: the far end hung up, or the line is idle/busy again.
END_OF_CALL_CODES = frozenset({"busy", "dial-tone", "loop-current-drop"})

HOST_END_TRANSMIT = bytes([DLE, ETX])
HOST_ABORT_RECEIVE = b"\x10!"


@dataclass(frozen=True)
class AudioData:
    data: bytes


@dataclass(frozen=True)
class DleEvent:
    #: ``"dtmf"`` or a name from the table above.
    kind: str
    digit: str = ""


@dataclass(frozen=True)
class EndOfStream:
    """``<DLE><ETX>``: the modem left voice mode. ``rest`` is what followed it (AT text)."""

    rest: bytes


DleOutput = AudioData | DleEvent | EndOfStream


@dataclass
class DleDecoder:
    """Modem -> host voice stream decoder. Feed reads with :meth:`feed`; it returns what they held."""

    pending_dle: bool = False
    finished: bool = False
    unknown_codes: int = 0
    events: int = 0
    audio_bytes: int = 0
    unknown_seen: set[int] = field(default_factory=set)

    def feed(self, data: bytes) -> list[DleOutput]:
        if self.finished:
            return [EndOfStream(bytes(data))]
        out: list[DleOutput] = []
        audio = bytearray()
        index = 0
        if self.pending_dle and data:
            self.pending_dle = False
            index = self._code(data[0], audio, out, data, 1)
            if self.finished:
                return out
        size = len(data)
        while index < size:
            dle_at = data.find(DLE, index)
            if dle_at < 0:
                audio += data[index:]
                break
            audio += data[index:dle_at]
            if dle_at + 1 >= size:
                self.pending_dle = True
                break
            index = self._code(data[dle_at + 1], audio, out, data, dle_at + 2)
            if self.finished:
                return out
        self._flush(audio, out)
        return out

    def _flush(self, audio: bytearray, out: list[DleOutput]) -> None:
        if audio:
            self.audio_bytes += len(audio)
            out.append(AudioData(bytes(audio)))
            audio.clear()

    def _code(self, code: int, audio: bytearray, out: list[DleOutput], data: bytes, next_index: int) -> int:
        if code == DLE:
            audio.append(DLE)
            return next_index
        if code == SUB:
            audio += bytes([DLE, DLE])
            return next_index
        self._flush(audio, out)
        if code == ETX:
            self.finished = True
            out.append(EndOfStream(bytes(data[next_index:])))
            return len(data)
        if code in DTMF_CODES:
            self.events += 1
            out.append(DleEvent("dtmf", chr(code)))
        elif code in EVENT_CODES:
            self.events += 1
            out.append(DleEvent(EVENT_CODES[code]))
        else:
            self.unknown_codes += 1
            if len(self.unknown_seen) < 64:
                self.unknown_seen.add(code)
        return next_index


def shield(audio: bytes | bytearray | memoryview) -> bytes:
    """Host -> modem: double every DLE so an audio byte 0x10 is never taken for a command."""
    return bytes(audio).replace(b"\x10", b"\x10\x10")


class DtmfDebouncer:
    """One key press, one digit.

    Some chipsets repeat ``<DLE>5`` every frame while the key is held (reliability.md V05). A digit
    equal to the previous one within ``hold`` seconds of its last report is the same press; a
    different digit, or the same one after a gap, is a new press. Shielded ``<DLE>/``...``<DLE>~``
    start/end markers, when the modem sends them, end a press explicitly.
    """

    def __init__(self, hold: float = 0.12) -> None:
        self.hold = hold
        self._last_digit = ""
        self._last_seen = -1e18
        self.repeats = 0

    def feed(self, event: DleEvent, now: float) -> str | None:
        if event.kind == "dtmf-end":
            self._last_digit = ""
            return None
        if event.kind != "dtmf":
            return None
        same = event.digit == self._last_digit and now - self._last_seen <= self.hold
        self._last_digit = event.digit
        self._last_seen = now
        if same:
            self.repeats += 1
            return None
        return event.digit


def codes_in(events: Iterable[DleOutput]) -> list[str]:
    """Test helper: the event kinds (digits as themselves) in order."""
    return [e.digit or e.kind for e in events if isinstance(e, DleEvent)]
