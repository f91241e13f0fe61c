"""SMS text: GSM 03.38 default alphabet vs UCS-2 chosen automatically, splitting into concatenated parts
with a UDH (IEI 0x00, 8-bit reference), and joining received parts back (pure; time is an argument).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from ._pdu import DC_DEFAULT, DC_LATIN1, DC_UCS2

# GSM 03.38 default alphabet, code point = index. "\x1b" is the escape to the extension table.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}
assert len(GSM7_BASIC) == 128
_ENCODE = {ch: code for code, ch in enumerate(GSM7_BASIC) if ch != "\x1b"}
_EXT_DECODE = {code: ch for ch, code in GSM7_EXTENSION.items()}

SINGLE_GSM7 = 160
PART_GSM7 = 153
SINGLE_UCS2 = 70  # UTF-16 code units
PART_UCS2 = 67
MAX_PARTS = 255


def gsm7_septets(text: str) -> list[int] | None:
    """The text as GSM 7-bit septets (one per int), or None if a character is not in the alphabet."""
    out: list[int] = []
    for ch in text:
        code = _ENCODE.get(ch)
        if code is not None:
            out.append(code)
            continue
        ext = GSM7_EXTENSION.get(ch)
        if ext is None:
            return None
        out += [0x1B, ext]
    return out


def decode_gsm7_unpacked(data: bytes) -> str:
    """Septets carried one per octet (SMPP data_coding 0). Unknown codes become '?'."""
    out: list[str] = []
    escape = False
    for byte in data:
        code = byte & 0x7F
        if escape:
            out.append(_EXT_DECODE.get(code, "?"))
            escape = False
        elif code == 0x1B:
            escape = True
        else:
            out.append(GSM7_BASIC[code])
    return "".join(out)


@dataclass(frozen=True)
class Part:
    data_coding: int
    payload: bytes  # short_message bytes, UDH included when ``udh`` is set
    udh: bool


def split(text: str, reference: int) -> list[Part]:
    """Encode ``text`` in as few parts as possible; GSM 7-bit when every character fits, else UCS-2."""
    septets = gsm7_septets(text)
    if septets is not None:
        if len(septets) <= SINGLE_GSM7:
            return [Part(DC_DEFAULT, bytes(septets), False)]
        chunks: list[list[int]] = []
        current: list[int] = []
        i = 0
        while i < len(septets):
            step = 2 if septets[i] == 0x1B else 1  # never split an escape from its character
            if len(current) + step > PART_GSM7:
                chunks.append(current)
                current = []
            current += septets[i:i + step]
            i += step
        chunks.append(current)
        return _with_udh(DC_DEFAULT, [bytes(c) for c in chunks], reference)
    units = text.encode("utf-16-be")
    if len(units) <= SINGLE_UCS2 * 2:
        return [Part(DC_UCS2, units, False)]
    byte_chunks: list[bytes] = []
    start = 0
    while start < len(units):
        end = min(len(units), start + PART_UCS2 * 2)
        if end < len(units) and 0xD8 <= units[end - 2] <= 0xDB:
            end -= 2  # keep a surrogate pair together
        byte_chunks.append(units[start:end])
        start = end
    return _with_udh(DC_UCS2, byte_chunks, reference)


def _with_udh(data_coding: int, chunks: list[bytes], reference: int) -> list[Part]:
    if len(chunks) > MAX_PARTS:
        raise ValueError(f"message needs {len(chunks)} parts; SMS concatenation allows {MAX_PARTS}")
    total = len(chunks)
    return [Part(data_coding, bytes([5, 0, 3, reference & 0xFF, total, n]) + chunk, True) for n, chunk in enumerate(chunks, 1)]


def decode_payload(data_coding: int, payload: bytes) -> tuple[str, str]:
    """(text, problem): the problem is empty unless the coding is unsupported or the bytes are broken."""
    coding = data_coding & 0xFF
    if coding == DC_DEFAULT or ((coding & 0xF0) == 0xF0 and not coding & 0x04):  # 0xFx: message class, GSM 7-bit
        return decode_gsm7_unpacked(payload), ""
    if coding == DC_UCS2:
        text = payload.decode("utf-16-be", errors="replace")
        return text, "" if "\ufffd" not in text else "invalid UCS-2 replaced"
    if coding == DC_LATIN1:
        return payload.decode("latin-1"), ""
    if coding == 0x01:  # IA5 (ASCII)
        return payload.decode("ascii", errors="replace"), ""
    return f"(unsupported data_coding 0x{coding:02x}: {len(payload)} bytes not shown)", f"unsupported data_coding 0x{coding:02x}"


@dataclass(frozen=True)
class Udh:
    reference: int
    total: int
    number: int


def strip_udh(payload: bytes) -> tuple[Udh | None, bytes]:
    """Split a UDH off ``payload``; returns the concatenation info if it has one (8- or 16-bit ref)."""
    if not payload:
        return None, payload
    length = payload[0]
    if 1 + length > len(payload):
        return None, payload  # claims a UDH longer than the message: treat as plain data
    header, body = payload[1:1 + length], payload[1 + length:]
    i = 0
    info = None
    while i + 2 <= len(header):
        iei, size = header[i], header[i + 1]
        value = header[i + 2:i + 2 + size]
        if iei == 0x00 and size == 3 and len(value) == 3:
            info = Udh(value[0], value[1], value[2])
        elif iei == 0x08 and size == 4 and len(value) == 4:
            info = Udh((value[0] << 8) | value[1], value[2], value[3])
        i += 2 + size
    if info is not None and not (1 <= info.number <= info.total):
        info = None
    return info, body


@dataclass
class _Group:
    first_seen: float
    total: int
    parts: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Joined:
    sender: str
    text: str
    complete: bool
    keys: tuple[str, ...]  # the external ids of every part, for idempotent storage


class Reassembler:
    """Joins concatenated parts. A group missing parts after ``timeout`` is released incomplete (never
    silently dropped); at most ``max_groups`` are pending, the oldest released first."""

    def __init__(self, *, timeout: float = 120.0, max_groups: int = 1000) -> None:
        self.timeout = timeout
        self.max_groups = max_groups
        self._groups: OrderedDict[tuple[str, int, int], _Group] = OrderedDict()
        self._keys: dict[tuple[str, int, int], list[str]] = {}

    def add(self, sender: str, udh: Udh, text: str, key: str, now: float) -> list[Joined]:
        group_key = (sender, udh.reference, udh.total)
        group = self._groups.get(group_key)
        if group is None:
            group = self._groups[group_key] = _Group(now, udh.total)
            self._keys[group_key] = []
        group.parts.setdefault(udh.number, text)
        if key not in self._keys[group_key]:
            self._keys[group_key].append(key)
        out: list[Joined] = []
        if len(group.parts) == group.total:
            out.append(self._release(group_key, complete=True))
        while len(self._groups) > self.max_groups:
            out.append(self._release(next(iter(self._groups)), complete=False))
        return out

    def next_timer(self) -> float | None:
        return min((g.first_seen + self.timeout for g in self._groups.values()), default=None)

    def handle_timer(self, now: float) -> list[Joined]:
        expired = [k for k, g in self._groups.items() if g.first_seen + self.timeout <= now]
        return [self._release(k, complete=False) for k in expired]

    def _release(self, group_key: tuple[str, int, int], *, complete: bool) -> Joined:
        group = self._groups.pop(group_key)
        keys = self._keys.pop(group_key)
        text = "".join(group.parts.get(n, "[…]") for n in range(1, group.total + 1))
        return Joined(group_key[0], text, complete, tuple(keys))
