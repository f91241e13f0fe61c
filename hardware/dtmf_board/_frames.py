"""Framings of serial DTMF decoder boards (sans-IO). A profile names one framing.

``ascii``
    Each decoded digit is one ASCII character ``0-9 * # A-D``; CR, LF and spaces separate them.
    Boards built on a microcontroller + MT8870 usually print this way. The board watches one line.
``ascii-lines``
    Multi-line boards: one line of text per digit, ``<channel>:<digit>`` (``2:5``).
``mt8870-nibble``
    One byte per digit straight from the MT8870's Q1-Q4 outputs: the low nibble is the MT8870 code
    (1-9 = digits, 10 = ``0``, 11 = ``*``, 12 = ``#``, 13-15 = ``A-C``, 0 = ``D``), the high nibble the
    board's channel number.

Anything else (line noise, a wrong baud rate) is counted in ``noise`` and skipped; the parser never
raises on input and holds at most ``max_line`` bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FRAMINGS", "MT8870_CODES", "BoardDigit", "FrameParser", "encode_frames"]

MT8870_CODES = {
    1: "1",
    2: "2",
    3: "3",
    4: "4",
    5: "5",
    6: "6",
    7: "7",
    8: "8",
    9: "9",
    10: "0",
    11: "*",
    12: "#",
    13: "A",
    14: "B",
    15: "C",
    0: "D",
}
_CODE_OF = {digit: code for code, digit in MT8870_CODES.items()}
_DIGITS = frozenset("0123456789*#ABCD")
FRAMINGS = ("ascii", "ascii-lines", "mt8870-nibble")


@dataclass(frozen=True)
class BoardDigit:
    channel: int
    digit: str


class FrameParser:
    def __init__(self, framing: str = "ascii", *, max_line: int = 64) -> None:
        if framing not in FRAMINGS:
            raise ValueError(f"unknown DTMF board framing {framing!r} (known: {', '.join(FRAMINGS)})")
        self.framing = framing
        self.max_line = max_line
        self._line = bytearray()
        self.noise = 0
        self.digits = 0

    def feed(self, data: bytes) -> list[BoardDigit]:
        if self.framing == "mt8870-nibble":
            out = [BoardDigit(byte >> 4, MT8870_CODES[byte & 0x0F]) for byte in data]
        elif self.framing == "ascii":
            out = []
            for byte in data:
                ch = chr(byte).upper() if byte < 0x80 else ""
                if ch in _DIGITS and ch:
                    out.append(BoardDigit(0, ch))
                elif byte not in (0x0D, 0x0A, 0x20):
                    self.noise += 1
        else:
            out = self._lines(data)
        self.digits += len(out)
        return out

    def _lines(self, data: bytes) -> list[BoardDigit]:
        out = []
        for byte in data:
            if byte not in (0x0D, 0x0A):
                if len(self._line) >= self.max_line:
                    self.noise += 1
                    continue
                self._line.append(byte)
                continue
            if not self._line:
                continue
            text = self._line.decode("latin-1").strip()
            self._line.clear()
            channel, sep, digit = text.partition(":")
            digit = digit.strip().upper()
            if (
                sep
                and channel.strip().isdigit()
                and len(digit) == 1
                and digit in _DIGITS
                and int(channel) < 256
            ):
                out.append(BoardDigit(int(channel), digit))
            else:
                self.noise += len(text) or 1
        return out


def encode_frames(framing: str, digits: str, channel: int = 0) -> bytes:
    """What a board sends for ``digits`` (the emulator and tests use this)."""
    if framing == "mt8870-nibble":
        return bytes((channel & 0x0F) << 4 | _CODE_OF[d] for d in digits)
    if framing == "ascii":
        return "".join(f"{d}\r\n" for d in digits).encode()
    return "".join(f"{channel}:{d}\r\n" for d in digits).encode()
