"""RFC 3261 §17 transactions (with the RFC 6026 "Accepted" states), as explicit state tables.

A transaction is fed messages and the current time and returns actions (:mod:`._timers`): bytes to send,
messages for the TU, timeouts, termination. ``next_timer()`` is the earliest deadline; call
``handle_timer(now)`` at or after it. Timer names are the RFC's letters.

Transitions (state, event) -> new state; anything not listed is absorbed without effect, since a peer may
send anything at any time:

Client INVITE (§17.1.1, RFC 6026 §8.4):
    CALLING    --1xx-->      PROCEEDING   deliver; stop A
    CALLING    --2xx-->      ACCEPTED     deliver; start M
    CALLING    --3xx-6xx-->  COMPLETED    deliver; send ACK; start D
    CALLING    --timer A-->  CALLING      resend; A doubles (no cap for INVITE)
    CALLING    --timer B-->  TERMINATED   timeout (408)
    PROCEEDING --1xx-->      PROCEEDING   deliver
    PROCEEDING --2xx-->      ACCEPTED     deliver; start M
    PROCEEDING --3xx-6xx-->  COMPLETED    deliver; send ACK; start D
    ACCEPTED   --2xx-->      ACCEPTED     deliver (the TU re-sends its ACK)
    ACCEPTED   --timer M-->  TERMINATED
    COMPLETED  --3xx-6xx-->  COMPLETED    resend ACK
    COMPLETED  --timer D-->  TERMINATED

Client non-INVITE (§17.1.2):
    TRYING     --1xx-->      PROCEEDING   deliver
    TRYING     --final-->    COMPLETED    deliver; start K
    TRYING     --timer E-->  TRYING       resend; E = min(2E, T2)
    PROCEEDING --1xx-->      PROCEEDING   deliver
    PROCEEDING --final-->    COMPLETED    deliver; start K
    PROCEEDING --timer E-->  PROCEEDING   resend; E = T2
    TRYING/PROCEEDING --timer F--> TERMINATED  timeout (408)
    COMPLETED  --timer K-->  TERMINATED

Server INVITE (§17.2.1, RFC 6026 §8.5-8.7):
    PROCEEDING --request-->  PROCEEDING   resend last provisional
    PROCEEDING --TU 1xx-->   PROCEEDING   send
    PROCEEDING --TU 2xx-->   ACCEPTED     send; start L (and 2xx retransmission, §13.3.1.4)
    PROCEEDING --TU 3xx-6xx--> COMPLETED  send; start G, H
    COMPLETED  --request-->  COMPLETED    resend final
    COMPLETED  --timer G-->  COMPLETED    resend final; G = min(2G, T2)
    COMPLETED  --ACK-->      CONFIRMED    start I
    COMPLETED  --timer H-->  TERMINATED   timeout (no ACK)
    CONFIRMED  --timer I-->  TERMINATED
    PROCEEDING --timer P-->  TERMINATED   timeout, only if the TU set a guard (guard_unanswered)
    ACCEPTED   --TU 2xx-->   ACCEPTED     send
    ACCEPTED   --ACK (2xx)-> ACCEPTED     stop 2xx retransmission
    ACCEPTED   --timer L-->  TERMINATED

Server non-INVITE (§17.2.2):
    TRYING     --TU 1xx-->   PROCEEDING   send
    TRYING/PROCEEDING --TU final--> COMPLETED  send; start J
    PROCEEDING --request-->  PROCEEDING   resend last provisional
    COMPLETED  --request-->  COMPLETED    resend final
    COMPLETED  --timer J-->  TERMINATED

On a reliable transport the retransmission timers (A, E, G) never start and D, I, J, K are zero.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from ._errors import SipLocalError
from ._message import Request, Response, make_ack_for_failure, make_response
from ._timers import (
    DEFAULT_TIMERS,
    Action,
    DeliverResponse,
    SendMessage,
    TimerConfig,
    TransactionTerminated,
    TransactionTimeout,
)

__all__ = [
    "TransactionState",
    "ClientInviteTransaction",
    "ClientNonInviteTransaction",
    "ServerInviteTransaction",
    "ServerNonInviteTransaction",
]


class TransactionState(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


S = TransactionState

# Allowed state changes per kind of transaction; a change not listed is a bug (SipLocalError).
_ALLOWED: dict[str, dict[S, frozenset[S]]] = {
    "client-invite": {
        S.CALLING: frozenset({S.PROCEEDING, S.ACCEPTED, S.COMPLETED, S.TERMINATED}),
        S.PROCEEDING: frozenset({S.ACCEPTED, S.COMPLETED, S.TERMINATED}),
        S.ACCEPTED: frozenset({S.TERMINATED}),
        S.COMPLETED: frozenset({S.TERMINATED}),
    },
    "client-non-invite": {
        S.TRYING: frozenset({S.PROCEEDING, S.COMPLETED, S.TERMINATED}),
        S.PROCEEDING: frozenset({S.COMPLETED, S.TERMINATED}),
        S.COMPLETED: frozenset({S.TERMINATED}),
    },
    "server-invite": {
        S.PROCEEDING: frozenset({S.ACCEPTED, S.COMPLETED, S.TERMINATED}),
        S.COMPLETED: frozenset({S.CONFIRMED, S.TERMINATED}),
        S.CONFIRMED: frozenset({S.TERMINATED}),
        S.ACCEPTED: frozenset({S.TERMINATED}),
    },
    "server-non-invite": {
        S.TRYING: frozenset({S.PROCEEDING, S.COMPLETED, S.TERMINATED}),
        S.PROCEEDING: frozenset({S.COMPLETED, S.TERMINATED}),
        S.COMPLETED: frozenset({S.TERMINATED}),
    },
}


class _Transaction:
    kind = ""

    def __init__(
        self, request: Request, *, reliable: bool = False, timers: TimerConfig = DEFAULT_TIMERS, peer: Any = None
    ) -> None:
        self.request = request
        self.method = request.method
        self.reliable = reliable
        self.timers = timers
        self.peer = peer
        self.state: TransactionState
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        #: the owning TransactionLayer's heap slot (see there)
        self._heap_slot: list[Any] | None = None
        top = request.top_via
        self.branch = top.branch if top is not None else None
        self._post_init()

    def _post_init(self) -> None:
        """What each kind of transaction adds to the common state."""

    @property
    def terminated(self) -> bool:
        return self.state is S.TERMINATED

    def next_timer(self) -> float | None:
        """The earliest deadline, or ``None`` when no timer runs."""
        return min(self._deadlines.values()) if self._deadlines else None

    def handle_timer(self, now: float) -> list[Action]:
        """Fire every timer whose deadline is at or before ``now``, earliest first."""
        actions: list[Action] = []
        while self._deadlines and self.state is not S.TERMINATED:
            name, deadline = min(self._deadlines.items(), key=lambda kv: kv[1])
            if deadline > now:
                break
            del self._deadlines[name]
            actions += self._fire(name, deadline, now)
        return actions

    def _fire(self, name: str, deadline: float, now: float) -> list[Action]:
        raise NotImplementedError

    def _start(self, name: str, now: float, interval: float) -> None:
        self._intervals[name] = interval
        self._deadlines[name] = now + interval

    def _stop(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def _goto(self, state: TransactionState) -> None:
        if state not in _ALLOWED[self.kind].get(self.state, frozenset()):
            raise SipLocalError(f"{self.kind} transaction: {self.state.value} -> {state.value} is not allowed")
        self.state = state

    def _terminate(self) -> list[Action]:
        self._goto(S.TERMINATED)
        self._deadlines.clear()
        return [TransactionTerminated(self)]

    def transport_error(self, now: float) -> list[Action]:
        """The transport could not send (RFC 3261 §17.1.4 / §17.2.4): give up at once."""
        if self.state is S.TERMINATED:
            return []
        timeout = TransactionTimeout(self, "transport", self._timeout_response())
        return [timeout, *self._terminate()]

    def _timeout_response(self) -> Response | None:
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} branch={self.branch} {self.state.value}>"


class _ClientTransaction(_Transaction):
    def _post_init(self) -> None:
        self._wire = self.request.to_bytes()
        self.last_response: Response | None = None
        #: the TU's callback for what this transaction delivers (the shell's; the layer never calls it)
        self.on_response: Callable[..., None] | None = None

    def _timeout_response(self) -> Response:
        return make_response(self.request, 408, "Request Timeout")

    def receive_response(self, response: Response, now: float) -> list[Action]:
        raise NotImplementedError


class ClientInviteTransaction(_ClientTransaction):
    """Sends an INVITE and follows it to a final response (RFC 3261 §17.1.1 with RFC 6026)."""

    kind = "client-invite"

    def start(self, now: float) -> list[Action]:
        self.state = S.CALLING
        if not self.reliable:
            self._start("A", now, self.timers.t1)
        self._start("B", now, self.timers.timeout_64t1)
        return [SendMessage(self.request, self._wire, self.peer)]

    @property
    def cancel_allowed(self) -> bool:
        """RFC 3261 §9.1: a CANCEL may be sent only once a provisional response has arrived."""
        return self.state is S.PROCEEDING

    def receive_response(self, response: Response, now: float) -> list[Action]:
        status, state = response.status, self.state
        if state in (S.CALLING, S.PROCEEDING):
            self.last_response = response
            if status < 200:
                if state is S.CALLING:
                    self._goto(S.PROCEEDING)
                self._stop("A", "B")
                return [DeliverResponse(response, self)]
            self._stop("A", "B")
            if status < 300:
                self._goto(S.ACCEPTED)
                self._start("M", now, self.timers.timeout_64t1)
                return [DeliverResponse(response, self)]
            self._goto(S.COMPLETED)
            self._ack = make_ack_for_failure(self.request, response)
            self._ack_wire = self._ack.to_bytes()
            self._start("D", now, 0.0 if self.reliable else self.timers.timer_d)
            return [DeliverResponse(response, self), SendMessage(self._ack, self._ack_wire, self.peer)]
        if state is S.ACCEPTED and 200 <= status < 300:
            return [DeliverResponse(response, self)]
        if state is S.COMPLETED and status >= 300:
            return [SendMessage(self._ack, self._ack_wire, self.peer)]
        return []

    def _fire(self, name: str, deadline: float, now: float) -> list[Action]:
        if name == "A" and self.state is S.CALLING:
            interval = self._intervals["A"] * 2
            self._intervals["A"] = interval
            self._deadlines["A"] = deadline + interval
            return [SendMessage(self.request, self._wire, self.peer)]
        if name == "B" and self.state is S.CALLING:
            return [TransactionTimeout(self, "B", self._timeout_response()), *self._terminate()]
        if name in ("D", "M"):
            return self._terminate()
        return []


class ClientNonInviteTransaction(_ClientTransaction):
    """Sends a non-INVITE request (REGISTER, OPTIONS, BYE, CANCEL...) (RFC 3261 §17.1.2)."""

    kind = "client-non-invite"

    def start(self, now: float) -> list[Action]:
        if self.request.method in ("INVITE", "ACK"):
            raise SipLocalError(f"{self.request.method} does not use a non-INVITE client transaction")
        self.state = S.TRYING
        if not self.reliable:
            self._start("E", now, self.timers.t1)
        self._start("F", now, self.timers.timeout_64t1)
        return [SendMessage(self.request, self._wire, self.peer)]

    def receive_response(self, response: Response, now: float) -> list[Action]:
        if self.state not in (S.TRYING, S.PROCEEDING):
            return []  # COMPLETED absorbs retransmissions
        self.last_response = response
        if response.status < 200:
            if self.state is S.TRYING:
                self._goto(S.PROCEEDING)
            return [DeliverResponse(response, self)]
        self._goto(S.COMPLETED)
        self._stop("E", "F")
        self._start("K", now, 0.0 if self.reliable else self.timers.t4)
        return [DeliverResponse(response, self)]

    def _fire(self, name: str, deadline: float, now: float) -> list[Action]:
        if name == "E" and self.state in (S.TRYING, S.PROCEEDING):
            if self.state is S.TRYING:
                interval = min(self._intervals["E"] * 2, self.timers.t2)
            else:
                interval = self.timers.t2
            self._intervals["E"] = interval
            self._deadlines["E"] = deadline + interval
            return [SendMessage(self.request, self._wire, self.peer)]
        if name == "F":
            return [TransactionTimeout(self, "F", self._timeout_response()), *self._terminate()]
        if name == "K":
            return self._terminate()
        return []


class _ServerTransaction(_Transaction):
    def _post_init(self) -> None:
        self.last_response: Response | None = None
        self._last_wire = b""
        #: the status of the final response sent (0 until then)
        self.final_status = 0
        self.state = self._initial_state
        self._layer: Any = None
        #: for the TU: the To tag it answers with, what to call when a CANCEL matches this INVITE, and
        #: where the request came from (the shell's rate limits count per source)
        self.to_tag: str | None = None
        self.on_cancel: Callable[[Any], None] | None = None
        self.source: Any = None

    _initial_state = S.TRYING

    def _remember(self, response: Response) -> SendMessage:
        self.last_response = response
        self._last_wire = response.to_bytes()
        if response.status >= 200:
            self.final_status = response.status
            # Nothing can be cancelled any more: let go of the TU's callback (and whatever call state it
            # closes over) now rather than when the transaction ends 64*T1 later.
            self.on_cancel = None
        return SendMessage(response, self._last_wire, self.peer)

    def _resend_last(self) -> list[Action]:
        if not self._last_wire:
            return []
        return [SendMessage(self.last_response, self._last_wire, self.peer)]  # type: ignore[arg-type]

    def compact(self) -> None:
        """Drop the parsed request and response once only the bytes of the final answer are needed.

        A non-INVITE transaction lingers 64*T1 after its final response just to answer retransmissions
        with the same bytes; at hundreds of calls a second the parsed messages would be most of the
        memory a busy endpoint holds. Afterwards ``request`` and ``last_response`` are None (resent
        :class:`SendMessage` actions carry ``message=None`` and the bytes).
        """
        if self.final_status and not isinstance(self, ServerInviteTransaction):
            self.request = None  # type: ignore[assignment]
            self.last_response = None

    def respond(self, status: int, reason: str | None = None, *, now: float, to_tag: str | None = None,
                headers: Any = (), body: bytes = b"") -> list[Action]:
        """Build a response to our request with :func:`make_response` and send it."""
        response = make_response(self.request, status, reason, to_tag=to_tag, headers=headers, body=body)
        return self.send_response(response, now)

    def send_response(self, response: Response, now: float) -> list[Action]:
        """Send a response from the TU; the owning layer (if any) is told so it can keep timers in step."""
        actions = self._send_response(response, now)
        if self._layer is not None:
            self._layer._sent(self, response)
        return actions

    def _send_response(self, response: Response, now: float) -> list[Action]:
        raise NotImplementedError

    def receive_request(self, request: Request, now: float) -> list[Action]:
        raise NotImplementedError


class ServerInviteTransaction(_ServerTransaction):
    """Answers an INVITE (RFC 3261 §17.2.1 with RFC 6026).

    In ACCEPTED it also retransmits the 2xx until the ACK arrives, as the UAS core must (§13.3.1.4), so the
    shell needs no separate timer: call :meth:`ack_received` (the :class:`TransactionLayer` does it) when
    the ACK for the 2xx arrives. Timer L firing without that ACK is a :class:`TransactionTimeout` so the TU
    can send BYE (§13.3.1.4).
    """

    kind = "server-invite"
    _initial_state = S.PROCEEDING

    def _post_init(self) -> None:
        super()._post_init()
        self.acked = False

    def guard_unanswered(self, now: float, limit: float) -> None:
        """Give the transaction up (:class:`TransactionTimeout` "P", then terminated) if the TU has sent no
        final response ``limit`` seconds from now. RFC 3261 sets no such limit; it bounds what a TU that
        forgets a request can hold."""
        self._start("P", now, limit)

    def trying(self, now: float) -> list[Action]:
        """Send 100 Trying (RFC 3261 §17.2.1: do it unless the TU answers within 200 ms)."""
        return self.respond(100, now=now)

    def receive_request(self, request: Request, now: float) -> list[Action]:
        if request.method == "ACK":
            if self.state is S.COMPLETED:
                self._goto(S.CONFIRMED)
                self._stop("G", "H")
                self._start("I", now, 0.0 if self.reliable else self.timers.t4)
            return []
        if self.state in (S.PROCEEDING, S.COMPLETED):
            return self._resend_last()
        return []  # ACCEPTED/CONFIRMED absorb retransmitted INVITEs (RFC 6026 §8.5)

    def _send_response(self, response: Response, now: float) -> list[Action]:
        status = response.status
        if self.state is S.PROCEEDING:
            send = self._remember(response)
            if status < 200:
                return [send]
            self._stop("P")
            if status < 300:
                self._goto(S.ACCEPTED)
                self._start("L", now, self.timers.timeout_64t1)
                if not self.reliable:
                    self._start("2xx", now, self.timers.t1)
                return [send]
            self._goto(S.COMPLETED)
            if not self.reliable:
                self._start("G", now, self.timers.t1)
            self._start("H", now, self.timers.timeout_64t1)
            return [send]
        if self.state is S.ACCEPTED and 200 <= status < 300:
            return [self._remember(response)]
        raise SipLocalError(f"cannot send {status} in state {self.state.value} of {self!r}")

    def ack_received(self) -> None:
        """The ACK for our 2xx arrived: stop retransmitting it (and let its bytes go: in ACCEPTED a
        retransmitted INVITE is absorbed, never answered again)."""
        self.acked = True
        self._stop("2xx")
        self.last_response = None
        self._last_wire = b""

    def _fire(self, name: str, deadline: float, now: float) -> list[Action]:
        if name in ("G", "2xx") and self.state in (S.COMPLETED, S.ACCEPTED):
            interval = min(self._intervals[name] * 2, self.timers.t2)
            self._intervals[name] = interval
            self._deadlines[name] = deadline + interval
            return self._resend_last()
        if name == "H" and self.state is S.COMPLETED:
            return [TransactionTimeout(self, "H"), *self._terminate()]
        if name == "P" and self.state is S.PROCEEDING:
            return [TransactionTimeout(self, "P"), *self._terminate()]
        if name == "I":
            return self._terminate()
        if name == "L":
            if not self.acked:
                return [TransactionTimeout(self, "L"), *self._terminate()]
            return self._terminate()
        return []


class ServerNonInviteTransaction(_ServerTransaction):
    """Answers a non-INVITE request (RFC 3261 §17.2.2)."""

    kind = "server-non-invite"

    def receive_request(self, request: Request, now: float) -> list[Action]:
        if self.state in (S.PROCEEDING, S.COMPLETED):
            return self._resend_last()
        return []

    def _send_response(self, response: Response, now: float) -> list[Action]:
        if self.state not in (S.TRYING, S.PROCEEDING):
            raise SipLocalError(f"cannot send {response.status} in state {self.state.value} of {self!r}")
        send = self._remember(response)
        if response.status < 200:
            if self.state is S.TRYING:
                self._goto(S.PROCEEDING)
            return [send]
        self._goto(S.COMPLETED)
        self._start("J", now, 0.0 if self.reliable else self.timers.timeout_64t1)
        return [send]

    def _fire(self, name: str, deadline: float, now: float) -> list[Action]:
        if name == "J":
            return self._terminate()
        return []
