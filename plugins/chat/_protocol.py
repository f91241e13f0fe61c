"""The visitor WebSocket protocol (pure): frames in, validated commands out; a token-bucket limiter.

Client frames (JSON objects): ``{"type": "hello", "token": str | null, "name": str, "email": str}`` (email:
optional, what the website says the visitor is; shown to agents as unverified),
``{"type": "message", "text": str}``, ``{"type": "typing", "on": bool}``, ``{"type": "ping"}``,
``{"type": "transcript", "email": str}`` (the conversation so far, mailed through the email channel),
``{"type": "seen", "id": str}`` (the widget showed the agent's messages up to this one: they become ``read``).
Server frames: ``welcome`` (token, history), ``message`` (direction, text, id, created), ``queue``
(position, wait), ``typing`` (on), ``error`` (reason), ``pong``, ``transcript`` (queued: bool).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class VisitorError(ValueError):
    """The visitor sent something we refuse; ``reason`` goes back to them in an ``error`` frame."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Hello:
    token: str | None
    name: str
    email: str = ""


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Typing:
    on: bool


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Transcript:
    email: str


@dataclass(frozen=True)
class Seen:
    message: str


Command = Hello | Say | Typing | Ping | Transcript | Seen


def _clean_text(text: str, limit: int) -> str:
    # Control characters (other than newlines and tabs) have no place in a chat message.
    return "".join(c for c in text if c in "\n\t" or c >= " ")[:limit]


def _plain_email(email: str) -> bool:
    local, at, domain = email.strip().partition("@")
    return bool(local and at and "." in domain) and not any(c in email for c in "\r\n\0<>,;\"' ")


def parse_frame(frame: str | bytes, *, max_chars: int) -> Command:
    if isinstance(frame, bytes):
        raise VisitorError("binary frames are not accepted")
    if len(frame) > max_chars * 6 + 200:
        raise VisitorError(f"frame too large (max {max_chars} characters of text)")
    try:
        data = json.loads(frame)
    except ValueError:
        raise VisitorError("invalid JSON") from None
    if not isinstance(data, dict):
        raise VisitorError("a frame must be a JSON object")
    kind = data.get("type")
    if kind == "hello":
        token = data.get("token")
        name = data.get("name") or ""
        if token is not None and (not isinstance(token, str) or not 10 <= len(token) <= 100):
            raise VisitorError("bad session token")
        if not isinstance(name, str):
            raise VisitorError("name must be a string")
        email = data.get("email")
        email = "" if email is None else email
        if not isinstance(email, str) or len(email) > 254 or (email and not _plain_email(email)):
            raise VisitorError("email must be a plain address")
        return Hello(token, _clean_text(name, 80).strip(), email.strip())
    if kind == "message":
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise VisitorError("message needs a non-empty 'text'")
        if len(text) > max_chars:
            raise VisitorError(f"message longer than {max_chars} characters")
        return Say(_clean_text(text, max_chars))
    if kind == "typing":
        return Typing(bool(data.get("on")))
    if kind == "ping":
        return Ping()
    if kind == "seen":
        message = data.get("id")
        if not isinstance(message, str) or not 1 <= len(message) <= 40:
            raise VisitorError("seen needs the 'id' of a message")
        return Seen(message)
    if kind == "transcript":
        email = data.get("email")
        if not isinstance(email, str) or not 3 <= len(email) <= 254 or not _plain_email(email):
            raise VisitorError("transcript needs a plain email address")
        return Transcript(email)
    raise VisitorError(f"unknown frame type {str(kind)[:20]!r}")


def frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, ensure_ascii=False)


@dataclass
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; time is an argument."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated: float = 0.0

    def allow(self, now: float, cost: float = 1.0) -> bool:
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


def estimate_wait(position: int, agents: int, handle_time: float) -> float:
    """Seconds until a visitor at ``position`` (1 = next) is likely served: a simple M/M/c-free guess."""
    if position <= 0:
        return 0.0
    return round(position * handle_time / max(1, agents), 1)
