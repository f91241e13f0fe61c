"""IMAP4rev1 (RFC 3501) client protocol, sans-IO: build commands, split the server's byte stream into
responses (lines with their literals), and read the few response forms this client needs.

Bounded: a line longer than ``max_line`` or a literal larger than ``max_literal`` is a peer error, so a
hostile or broken server cannot make us buffer without limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine import LocalProtocolError, RemoteProtocolError


class ImapServerError(RemoteProtocolError):
    """The server sent something unparseable or refused a command (NO/BAD); ``reply`` is its line."""

    def __init__(self, message: str, reply: str = "") -> None:
        super().__init__(message)
        self.reply = reply


class ImapUsageError(LocalProtocolError):
    """We tried to send something IMAP cannot carry (e.g. a line break in a quoted string)."""


@dataclass
class Response:
    """One server response. ``tag`` is ``"*"`` (untagged), ``"+"`` (continuation) or a command tag.

    ``line`` is the response with every literal replaced by ``{N}`` markers; ``literals`` holds them.
    """

    tag: str
    line: bytes
    literals: list[bytes] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.line.decode("utf-8", "replace")

    def status(self) -> str:
        """``OK``, ``NO``, ``BAD``, ``PREAUTH`` or ``BYE`` for a status response, else ``""``."""
        parts = self.line.split(b" ", 2)
        word = parts[1].upper() if len(parts) > 1 else b""
        return word.decode("ascii", "replace") if word in (b"OK", b"NO", b"BAD", b"PREAUTH", b"BYE") else ""


_LITERAL = re.compile(rb"\{(\d{1,12})\+?\}\r\n$")


class ResponseReader:
    def __init__(self, *, max_line: int = 64 * 1024, max_literal: int = 64 * 1024 * 1024) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self._buffer = bytearray()
        self._line = bytearray()
        self._literals: list[bytes] = []
        self._need_literal: int | None = None

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_response(self) -> Response | None:
        while True:
            if self._need_literal is not None:
                if len(self._buffer) < self._need_literal:
                    return None
                self._literals.append(bytes(self._buffer[: self._need_literal]))
                del self._buffer[: self._need_literal]
                self._need_literal = None
                continue
            end = self._buffer.find(b"\r\n")
            if end < 0:
                if len(self._buffer) + len(self._line) > self.max_line:
                    raise ImapServerError(f"response line longer than {self.max_line} bytes")
                return None
            chunk = bytes(self._buffer[: end + 2])
            del self._buffer[: end + 2]
            if len(self._line) + len(chunk) > self.max_line:
                raise ImapServerError(f"response line longer than {self.max_line} bytes")
            literal = _LITERAL.search(chunk)
            if literal:
                size = int(literal.group(1))
                if size > self.max_literal:
                    raise ImapServerError(f"literal of {size} bytes is over the {self.max_literal}-byte limit")
                self._line += chunk[: literal.start()] + b"{" + str(len(self._literals)).encode() + b"}"
                self._need_literal = size
                continue
            self._line += chunk[:-2]
            line = bytes(self._line)
            self._line.clear()
            literals, self._literals = self._literals, []
            tag, _, _ = line.partition(b" ")
            if not tag:
                raise ImapServerError("empty response line", line.decode("utf-8", "replace"))
            return Response(tag.decode("ascii", "replace"), line, literals)


def quote(value: str) -> bytes:
    """An IMAP quoted string. Refuses what a quoted string cannot carry."""
    if any(c in value for c in "\r\n\x00"):
        raise ImapUsageError("IMAP strings cannot contain CR, LF or NUL")
    return b'"' + value.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8") + b'"'


class CommandBuilder:
    """Numbers commands: ``A0001 LOGIN ...``."""

    def __init__(self, prefix: str = "C") -> None:
        self.prefix = prefix
        self.counter = 0

    def build(self, command: str, *args: bytes) -> tuple[str, bytes]:
        self.counter += 1
        tag = f"{self.prefix}{self.counter:04d}"
        return tag, b" ".join([tag.encode(), command.encode(), *args]) + b"\r\n"


# ------------------------------------------------------------------------------- response readers

_CODE = re.compile(rb"\[([A-Z\-]+)(?: ([^\]]*))?\]", re.IGNORECASE)
_CAPS = re.compile(rb"(?:^\* |\[)CAPABILITY ([^\]\r\n]*)")
_FETCH = re.compile(rb"^\* (\d+) FETCH \((.*)\)$", re.IGNORECASE | re.DOTALL)
_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.IGNORECASE)
_BODY_LITERAL = re.compile(rb"\bBODY\[[^\]]*\](?:<\d+>)? \{(\d+)\}", re.IGNORECASE)
_EXISTS = re.compile(rb"^\* (\d+) EXISTS$", re.IGNORECASE)


def capabilities(response: Response) -> set[str] | None:
    match = _CAPS.search(response.line)
    if match is None:
        return None
    return {c.upper() for c in match.group(1).decode("ascii", "replace").split()}


def response_code(response: Response) -> tuple[str, str] | None:
    match = _CODE.search(response.line)
    if match is None:
        return None
    return match.group(1).decode("ascii", "replace").upper(), (match.group(2) or b"").decode("ascii", "replace")


def search_uids(response: Response) -> list[int] | None:
    parts = response.line.split()
    if len(parts) >= 2 and parts[0] == b"*" and parts[1].upper() == b"SEARCH":
        try:
            return [int(p) for p in parts[2:]]
        except ValueError:
            raise ImapServerError("SEARCH response with a non-number", response.text) from None
    return None


@dataclass(frozen=True)
class FetchItem:
    uid: int
    size: int | None
    body: bytes | None


def fetch_item(response: Response) -> FetchItem | None:
    match = _FETCH.match(response.line)
    if match is None:
        return None
    inner = match.group(2)
    uid = _UID.search(inner)
    if uid is None:
        return None  # an unsolicited FLAGS update without UID
    size = _SIZE.search(inner)
    body = _BODY_LITERAL.search(inner)
    data = None
    if body is not None:
        index = int(body.group(1))
        if index >= len(response.literals):
            raise ImapServerError("FETCH body refers to a literal that was not sent", response.text)
        data = response.literals[index]
    return FetchItem(int(uid.group(1)), int(size.group(1)) if size else None, data)


def exists_count(response: Response) -> int | None:
    match = _EXISTS.match(response.line)
    return int(match.group(1)) if match else None
