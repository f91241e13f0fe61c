"""Errors of the SIP sans-IO core, split by who is at fault.

A *peer* error (:class:`SipPeerError`) means the other side sent something invalid; it carries the status
the protocol calls for (or ``None``: drop silently). A *local* error (:class:`SipLocalError`) means our own
code asked for something the protocol does not allow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._message import Request

__all__ = [
    "SipError",
    "SipPeerError",
    "SipParseError",
    "SipFramingError",
    "SipLocalError",
    "SdpParseError",
    "SdpNegotiationError",
]


class SipError(Exception):
    """Base of every error raised on purpose by the SIP core."""


class SipPeerError(SipError):
    """The peer sent something invalid.

    ``status`` is the SIP response to send back (``None``: drop silently), ``reason`` its phrase.
    """

    def __init__(self, reason: str, status: int | None = 400) -> None:
        super().__init__(reason if status is None else f"{status} {reason}")
        self.status = status
        self.reason = reason


class SipParseError(SipPeerError):
    """A message could not be accepted.

    ``partial`` is a :class:`Request` holding whatever header fields could be read (Via, From, To,
    Call-ID, CSeq...) so that the error response can be built with ``make_response(partial, status)``;
    it is ``None`` when nothing usable was found or the message was a response. ``headers`` holds extra
    header fields the error response must carry (e.g. ``Unsupported`` for a 420).
    """

    def __init__(
        self,
        reason: str,
        status: int | None = 400,
        *,
        partial: Request | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(reason, status)
        self.partial = partial
        self.headers = headers


class SipFramingError(SipPeerError):
    """A stream (TCP) peer broke the framing: the connection must be closed.

    ``messages`` holds complete messages framed before the break, which may still be handled.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason, None)
        self.messages: list[bytes] = []


class SipLocalError(SipError):
    """Our own code misused the SIP core (a bug on our side, never the peer's fault)."""


class SdpParseError(SipPeerError):
    """A session description could not be parsed (answer 400, or 488 inside an offer/answer)."""

    def __init__(self, reason: str, status: int | None = 400) -> None:
        super().__init__(reason, status)


class SdpNegotiationError(SipPeerError):
    """An offer could not be answered: no common codec, no audio... (answer 488)."""

    def __init__(self, reason: str, status: int | None = 488) -> None:
        super().__init__(reason, status)
