"""The SIP sans-IO core: parse and build messages, SDP offer/answer, digest auth, transactions, dialogs.

Nothing here does I/O or imports trio: callers feed bytes and the current time and get back messages,
bytes to send and events. The trio shell (``plugins.sip``) moves the bytes.
"""

from __future__ import annotations

from ._address import NameAddr, Via
from ._errors import (
    SdpNegotiationError,
    SdpParseError,
    SipError,
    SipFramingError,
    SipLocalError,
    SipParseError,
    SipPeerError,
)
from ._framer import StreamFramer
from ._headers import Headers
from ._message import REASON_PHRASES, Request, Response, make_response
from ._parser import DEFAULT_LIMITS, ParseLimits, parse_message
from ._uri import GenericUri, SipUri, parse_uri

__all__ = [
    "DEFAULT_LIMITS",
    "GenericUri",
    "Headers",
    "NameAddr",
    "ParseLimits",
    "REASON_PHRASES",
    "Request",
    "Response",
    "SdpNegotiationError",
    "SdpParseError",
    "SipError",
    "SipFramingError",
    "SipLocalError",
    "SipParseError",
    "SipPeerError",
    "SipUri",
    "StreamFramer",
    "Via",
    "make_response",
    "parse_message",
    "parse_uri",
]
