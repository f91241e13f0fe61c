"""The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 §6.2.1), and septet packing."""

from __future__ import annotations

__all__ = [
    "GSM7_BASIC",
    "decode_gsm7",
    "encode_gsm7",
    "gsm7_length",
    "is_gsm7",
    "pack_septets",
    "unpack_septets",
]

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(GSM7_BASIC) == 128
ESCAPE = 0x1B
GSM7_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_ENCODE_BASIC = {ch: code for code, ch in enumerate(GSM7_BASIC) if code != ESCAPE}
_ENCODE_EXTENSION = {ch: code for code, ch in GSM7_EXTENSION.items()}


def is_gsm7(text: str) -> bool:
    return all(ch in _ENCODE_BASIC or ch in _ENCODE_EXTENSION for ch in text)


def encode_gsm7(text: str) -> list[int]:
    """Text -> septet values (extension characters take two). Raises ValueError if not GSM 7-bit."""
    out: list[int] = []
    for ch in text:
        code = _ENCODE_BASIC.get(ch)
        if code is not None:
            out.append(code)
            continue
        ext = _ENCODE_EXTENSION.get(ch)
        if ext is None:
            raise ValueError(f"{ch!r} is not in the GSM 7-bit alphabet")
        out += (ESCAPE, ext)
    return out


def gsm7_length(ch: str) -> int:
    return 2 if ch in _ENCODE_EXTENSION else 1


def decode_gsm7(septets: list[int]) -> str:
    """Septets -> text. An unknown extension code reads as its basic character (TS 23.038 says
    display the default-table character); a trailing lone ESC reads as a space."""
    out = []
    escaped = False
    for code in septets:
        if escaped:
            escaped = False
            out.append(GSM7_EXTENSION.get(code, GSM7_BASIC[code] if code != ESCAPE else " "))
        elif code == ESCAPE:
            escaped = True
        else:
            out.append(GSM7_BASIC[code])
    if escaped:
        out.append(" ")
    return "".join(out)


def pack_septets(septets: list[int], fill_bits: int = 0) -> bytes:
    """Pack 7-bit values LSB first, after ``fill_bits`` zero bits (aligning text after a UDH)."""
    acc = 0
    nbits = fill_bits
    out = bytearray()
    for value in septets:
        acc |= (value & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """Unpack ``count`` septets from ``data`` after skipping ``fill_bits``. Raises ValueError if short."""
    needed = (fill_bits + 7 * count + 7) // 8
    if needed > len(data):
        raise ValueError(f"user data holds {len(data)} octets, {count} septets need {needed}")
    value = int.from_bytes(data[:needed], "little") >> fill_bits
    return [(value >> (7 * i)) & 0x7F for i in range(count)]
