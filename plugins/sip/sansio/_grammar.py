"""Small pieces of the RFC 3261 grammar shared by the URI, address and Via parsers.

Everything here works on ``str`` (header sections are decoded as UTF-8 first) and raises ``ValueError``
with a short description; callers turn that into a :class:`SipParseError` with the right status.
"""

from __future__ import annotations

import re

TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_WS = " \t"

# Characters that may appear unescaped in each URI component (RFC 3261 §25.1).
_UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()"
USER_SAFE = frozenset(_UNRESERVED + "&=+$,;?/")
PASSWORD_SAFE = frozenset(_UNRESERVED + "&=+$,")
PARAM_SAFE = frozenset(_UNRESERVED + "[]/:&+$")
HEADER_SAFE = frozenset(_UNRESERVED + "[]/?:+$")

Params = dict[str, "str | None"]


def is_token(text: str) -> bool:
    return _TOKEN_RE.fullmatch(text) is not None


def unescape(text: str) -> str:
    """Decode ``%XX`` escapes; a ``%`` not followed by two hex digits is an error."""
    if "%" not in text:
        return text
    raw = text.encode("utf-8")
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b == 0x25:
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or not all(c in b"0123456789abcdefABCDEF" for c in pair):
                raise ValueError("bad %-escape")
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(b)
            i += 1
    return out.decode("utf-8", errors="surrogateescape")


def escape(text: str, safe: frozenset[str]) -> str:
    """Escape every character outside ``safe`` as ``%XX`` (UTF-8 bytes)."""
    if all(c in safe for c in text):
        return text
    out = []
    for ch in text:
        if ch in safe:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", errors="surrogateescape"))
    return "".join(out)


def quote(text: str) -> str:
    """Make a quoted-string (RFC 3261 §25.1) of ``text``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(text: str) -> str:
    """Undo :func:`quote`; a value that is not quoted is returned unchanged."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if "\\" not in inner:
            return inner
        out = []
        i = 0
        while i < len(inner):
            ch = inner[i]
            if ch == "\\" and i + 1 < len(inner):
                out.append(inner[i + 1])
                i += 2
            else:
                out.append(ch)
                i += 1
        return "".join(out)
    return text


def scan_quoted(text: str, start: int) -> int:
    """``text[start]`` is ``"``: return the index just past the closing quote."""
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n or text[i + 1] in "\r\n":
                raise ValueError("bad quoted-pair")
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise ValueError("unterminated quoted string")


def split_outside(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` except inside quoted strings and ``<...>``."""
    if sep not in text:
        return [text]
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts = []
    depth = 0
    last = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            try:
                i = scan_quoted(text, i)
            except ValueError:
                i = n  # an unterminated quote swallows the rest; the element parser rejects it
            continue
        if ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif ch == sep and not depth:
            parts.append(text[last:i])
            last = i + 1
        i += 1
    parts.append(text[last:])
    return parts


def parse_params(text: str) -> Params:
    """Parse ``;name[=value]`` generic-params (LWS allowed around ``;`` and ``=``).

    ``text`` starts at the first ``;`` (or is empty). Names are lower-cased; values are kept as sent
    (quoted strings keep their quotes). Empty parameters and non-token names are errors.
    """
    params: Params = {}
    text = text.strip(_WS)
    if not text:
        return params
    if text[0] != ";":
        raise ValueError("expected ';' before parameters")
    for piece in split_outside(text[1:], ";"):
        name, eq, value = piece.partition("=")
        name = name.strip(_WS)
        if not is_token(name):
            raise ValueError(f"bad parameter name {name!r}")
        if eq:
            value = value.strip(_WS)
            if not value:
                raise ValueError(f"empty value for parameter {name!r}")
            if value[0] == '"':
                if scan_quoted(value, 0) != len(value):
                    raise ValueError("junk after quoted parameter value")
            elif not all(c in TOKEN_CHARS or c in "[]:" for c in value):
                raise ValueError(f"bad value for parameter {name!r}")
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())
