"""The SIP sans-IO core: parse and build messages, SDP offer/answer, digest auth, transactions, dialogs.

Nothing here does I/O or imports trio: callers feed bytes and the current time and get back messages,
bytes to send and events. The trio shell (``plugins.sip``) moves the bytes.

A UDP datagram arrives::

    try:
        message = parse_message(datagram)
    except SipParseError as exc:
        if exc.status is not None and exc.partial is not None:
            reply = make_response(exc.partial, exc.status, headers=exc.headers, to_tag=new_tag())
            sock.sendto(reply.to_bytes(), source)    # 400, 416, 420, 505, 513 ...
        return                                       # status None: drop silently

    if isinstance(message, Request):
        stamp_received(message, *source)             # RFC 3581 received/rport
        actions = layer.receive_request(message, now, peer=source)
    else:
        actions = layer.receive_response(message, now)
    for action in actions:                           # SendMessage, DeliverRequest, DeliverResponse,
        ...                                          # TransactionTimeout, TransactionTerminated

and the shell sleeps until ``layer.next_timer()`` then calls ``layer.handle_timer(now)``. TCP bytes go
through a :class:`StreamFramer` per connection first (``SipFramingError``: close the connection).

SDP: ``MediaSession(address, port).answer(offer_bytes) -> (answer_sdp, Negotiated)``; digest:
``DigestChallenger(realm, key).challenge(...)/verify(...)`` and ``answer_challenge(...)`` for trunks;
in-dialog requests: :class:`Dialog`. :class:`LoopbackNetwork` runs whole calls in memory for tests.
"""

from __future__ import annotations

from ._address import NameAddr, Via
from ._dialog import Dialog, DialogState, dialog_id_for_incoming_request, dialog_id_for_response, new_request
from ._digest import (
    DigestChallenger,
    DigestOutcome,
    DigestResult,
    answer_challenge,
    authorization_value,
    digest_response,
    parse_auth_params,
)
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
from ._harness import HarnessAgent, HarnessCall, LoopbackNetwork
from ._headers import Headers
from ._message import REASON_PHRASES, Request, Response, make_ack_for_failure, make_cancel, make_response
from ._offer_answer import Codec, MediaSession, Negotiated, is_hold_offer, reverse_direction
from ._parser import DEFAULT_LIMITS, ParseLimits, parse_message
from ._layer import TransactionLayer
from ._timers import (
    DEFAULT_TIMERS,
    Action,
    DeliverRequest,
    DeliverResponse,
    SendMessage,
    TimerConfig,
    TransactionTerminated,
    TransactionTimeout,
    new_branch,
    new_call_id,
    new_tag,
)
from ._transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    TransactionState,
)
from ._routing import response_destination, stamp_received
from ._sdp import DIRECTIONS, Connection, MediaDescription, Origin, SessionDescription
from ._uri import GenericUri, SipUri, parse_uri

__all__ = [
    "Action",
    "ClientInviteTransaction",
    "ClientNonInviteTransaction",
    "DEFAULT_TIMERS",
    "response_destination",
    "stamp_received",
    "HarnessAgent",
    "HarnessCall",
    "LoopbackNetwork",
    "Dialog",
    "DialogState",
    "dialog_id_for_incoming_request",
    "dialog_id_for_response",
    "new_request",
    "DIRECTIONS",
    "Codec",
    "Connection",
    "MediaDescription",
    "MediaSession",
    "Negotiated",
    "Origin",
    "SessionDescription",
    "is_hold_offer",
    "reverse_direction",
    "DigestChallenger",
    "DigestOutcome",
    "DigestResult",
    "answer_challenge",
    "authorization_value",
    "digest_response",
    "parse_auth_params",
    "DeliverRequest",
    "DeliverResponse",
    "SendMessage",
    "ServerInviteTransaction",
    "ServerNonInviteTransaction",
    "TimerConfig",
    "TransactionLayer",
    "TransactionState",
    "TransactionTerminated",
    "TransactionTimeout",
    "make_ack_for_failure",
    "make_cancel",
    "new_branch",
    "new_call_id",
    "new_tag",
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
