"""RFC 3261 §17 timer values and the actions transactions return."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ._message import Request, Response

__all__ = [
    "TimerConfig",
    "SendMessage",
    "DeliverRequest",
    "DeliverResponse",
    "TransactionTimeout",
    "TransactionTerminated",
    "Action",
    "new_branch",
    "new_tag",
    "new_call_id",
    "MAGIC_COOKIE",
]

MAGIC_COOKIE = "z9hG4bK"


@dataclass(frozen=True)
class TimerConfig:
    """T1 (RTT estimate), T2 (cap on non-INVITE and response retransmission), T4 (network lifetime).

    Timer D (client INVITE, unreliable) is "at least 32 s" and independent of T1 in RFC 3261; it is here
    to be shortened in tests.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0

    @property
    def timeout_64t1(self) -> float:
        return 64 * self.t1


DEFAULT_TIMERS = TimerConfig()


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Send ``data`` (the serialized ``message``) to ``peer`` (whatever the shell gave the transaction)."""

    message: Request | Response
    data: bytes
    peer: Any = None


@dataclass(frozen=True, slots=True)
class DeliverRequest:
    """A new request for the TU. ``transaction`` answers it (``None`` for an ACK to a 2xx).

    For a CANCEL, ``cancels`` is the INVITE server transaction it matches: the TU answers the CANCEL
    with 200 through ``transaction`` and the INVITE with 487 through ``cancels``. For the ACK of a 2xx,
    ``acknowledges`` is the INVITE server transaction whose 2xx it acknowledges (if still known).
    """

    request: Request
    transaction: Any = None
    peer: Any = None
    cancels: Any = None
    acknowledges: Any = None


@dataclass(frozen=True, slots=True)
class DeliverResponse:
    """A response for the TU (``transaction`` is ``None`` for a stray one, e.g. a late 2xx)."""

    response: Response
    transaction: Any = None


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """The transaction gave up (Timer B/F: no answer; Timer H: no ACK; Timer L: 2xx never ACKed).

    For a client transaction ``response`` is a locally built 408 the TU can treat as the final answer.
    """

    transaction: Any
    timer: str
    response: Response | None = None


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    transaction: Any


Action = SendMessage | DeliverRequest | DeliverResponse | TransactionTimeout | TransactionTerminated


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str = "centralita") -> str:
    return f"{secrets.token_hex(10)}@{host}"
