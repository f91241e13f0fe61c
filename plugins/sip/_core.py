"""The message layer of the shell: parse, police, run the sans-IO transaction layer, dispatch.

It is synchronous: the transports call :meth:`SipCore.deliver` for every message and it answers with
``send_nowait``; timers run from one :class:`~plugins.sip._timers.Scheduler`. The roles (registrar,
trunks, calls) register handlers per method and use :meth:`respond` / :meth:`request`.

Transactions (RFC 3261 §17 with RFC 6026) are the sans-IO core's
(:class:`~plugins.sip.sansio.TransactionLayer`): it matches requests and responses, absorbs
retransmissions, retransmits on UDP and times out; this module turns its actions into datagrams,
handler calls and callbacks, and mirrors the layer's next deadline into the shared scheduler. What the
shell adds: the security guard (per-source limits and bans, counted per open transaction), the 100
Trying rule, answers to requests no handler takes, and a guard that gives up a server INVITE the call
layer never answers.

Response routing (RFC 3261 §18.2.2 with RFC 3581): the top Via gets ``received`` (and ``rport`` when
asked); responses go back on the connection or socket the request came from, to the source port when
``rport`` was asked, otherwise to the Via port.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from typing import Any

from engine._events import safe_text

from ._security import SecurityEvent, SecurityGuard, Verdict
from ._timers import Scheduler, TimerHandle
from ._transport import ListenAddress, Peer
from .sansio import (
    DeliverRequest,
    DeliverResponse,
    ParseLimits,
    Request,
    Response,
    SendMessage,
    SipParseError,
    SipPeerError,
    TimerConfig,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    make_cancel,
    make_response,
    parse_message,
    response_destination,
    stamp_received,
)
from .sansio._transaction import ServerInviteTransaction, TransactionState
from .sansio._transaction import _ClientTransaction as ClientTransaction
from .sansio._transaction import _ServerTransaction as ServerTransaction

__all__ = ["ClientTransaction", "ServerTransaction", "SipCore", "new_branch", "new_tag"]

log = logging.getLogger("centralita.sip")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, REFER, NOTIFY, UPDATE"
SUPPORTED = frozenset({"replaces", "norefersub"})
#: a server INVITE the call layer has not answered after 64*T1 plus this long is given up (its own ring
#: and queue timeouts answer long before; this only bounds what a bug could hold)
UNANSWERED_INVITE_GRACE = 180.0


# Tags, branches and Call-IDs must be unique, not secret: a PRNG seeded once from the OS is enough, and
# on a busy box a getrandom() system call per message (secrets/urandom) costs more than parsing it.
_random = random.Random(secrets.randbits(128))


def new_branch() -> str:
    return "z9hG4bK%016x" % _random.getrandbits(64)


def new_tag() -> str:
    return "%012x" % _random.getrandbits(48)


Handler = Callable[[Request, ServerTransaction], None]
_CLIENT_LIVE = (TransactionState.CALLING, TransactionState.TRYING, TransactionState.PROCEEDING)


class SipCore:
    def __init__(
        self,
        send: Callable[[bytes, Peer], bool],
        scheduler: Scheduler,
        guard: SecurityGuard,
        clock: Callable[[], float],
        *,
        t1: float = 0.5,
        t2: float = 4.0,
        t4: float = 5.0,
        limits: ParseLimits | None = None,
        user_agent: str = "Centralita",
        on_security_event: Callable[[SecurityEvent], None] = lambda e: None,
    ) -> None:
        self._send = send
        self.scheduler = scheduler
        self.guard = guard
        self.clock = clock
        self.t1, self.t2, self.t4 = t1, t2, t4
        # Timer D (client INVITE, after a failure) is "at least 32 s" in RFC 3261; 64*T1 keeps it in step
        # with the configured T1, so short test timers shorten it too.
        self.layer = TransactionLayer(TimerConfig(t1=t1, t2=t2, t4=t4, timer_d=64 * t1))
        self.limits = limits or ParseLimits()
        self.user_agent = user_agent
        self.on_security_event = on_security_event
        self.handlers: dict[str, Handler] = {"OPTIONS": self._options}
        #: ACK for a 2xx (no server transaction matches it): the call layer's
        self.on_ack: Callable[[Request, Peer], None] = lambda r, p: None
        #: a response no client transaction matches (a retransmitted 2xx to an INVITE): the call layer's
        self.on_stray_response: Callable[[Response, Peer], None] = lambda r, p: None
        #: server transactions the security guard counts as open: until the final answer, an INVITE until
        #: the ACK (an unacknowledged final keeps it open until the transaction ends)
        self._guarded: set[ServerTransaction] = set()
        #: the scheduler entry that runs the layer's timers (one at a time, at the layer's next deadline)
        self._layer_timer: TimerHandle | None = None
        #: where our own Via and Contact point, per transport (set once the transports are bound)
        self.local: dict[str, ListenAddress] = {}
        self.stats = {
            "requests": 0,
            "responses": 0,
            "parse_errors": 0,
            "dropped": 0,
            "client_timeouts": 0,
        }

    # --------------------------------------------------------------------------------------- receive

    def deliver(self, data: bytes, peer: Peer) -> None:
        try:
            message = parse_message(data, limits=self.limits, supported=SUPPORTED)
        except SipParseError as exc:
            self.stats["parse_errors"] += 1
            self._reject_unparseable(exc, peer)
            return
        if isinstance(message, Request):
            self.stats["requests"] += 1
            self._request(message, peer)
        else:
            self.stats["responses"] += 1
            self._response(message, peer)
        self._sync_timer()

    def _reject_unparseable(self, exc: SipParseError, peer: Peer) -> None:
        partial = exc.partial
        if exc.status is None or partial is None or partial.method == "ACK":
            return
        verdict, events = self.guard.check_request(peer.host, partial.headers.get("User-Agent"), self.clock())
        self._publish(events)
        if verdict is not Verdict.ACCEPT:
            return
        try:
            response = make_response(partial, exc.status, exc.reason[:100].replace("\r", " ").replace("\n", " "), headers=exc.headers)
            self._send_response(response.to_bytes(), partial, peer)
        except (SipPeerError, ValueError) as err:
            log.debug("cannot answer an unparseable message from %s: %s", peer, safe_text(err))

    def _request(self, request: Request, peer: Peer) -> None:
        now = self.clock()
        verdict, events = self.guard.check_request(peer.host, request.headers.get("User-Agent"), now)
        if events:
            self._publish(events)
        if verdict is not Verdict.ACCEPT:
            self.stats["dropped"] += 1
            return
        try:
            via = request.top_via
            if via is None:
                raise SipParseError("no Via", 400)
            stamp_received(request, peer.host, peer.port)
            to = response_peer(request, peer)
            actions = self.layer.receive_request(request, now, reliable=peer.reliable, peer=to)
        except SipPeerError as exc:
            if request.method != "ACK" and exc.status:
                self._send_response(make_response(request, exc.status, exc.reason).to_bytes(), request, peer)
            return
        for action in actions:
            kind = type(action)
            if kind is SendMessage:
                self._send(action.data, action.peer)  # type: ignore[union-attr]
            elif kind is DeliverRequest:
                self._new_request(action, peer, now)  # type: ignore[arg-type]
            elif kind is TransactionTerminated:
                self._ended(action.transaction)  # type: ignore[union-attr]

    def _new_request(self, action: DeliverRequest, peer: Peer, now: float) -> None:
        request, txn = action.request, action.transaction
        if txn is None:
            # The ACK of a 2xx (the layer stopped the 2xx's retransmission): for the guard, the INVITE
            # is over (it lingers 64*T1 in the layer only to absorb retransmitted INVITEs).
            if action.acknowledges is not None:
                self._ended(action.acknowledges)
            self.on_ack(request, peer)
            return
        txn.source = peer.host
        method = request.method
        if action.cancels is not None:
            self._cancel(txn, action.cancels)
            return
        if self.guard.transaction_started(peer.host, now) is Verdict.REJECT:
            self.respond(txn, 503, headers=[("Retry-After", "5")])
            return
        self._guarded.add(txn)
        if method == "INVITE":
            # Every transaction ends eventually, whatever the call layer does (or forgets to do).
            self.layer.guard_unanswered(txn, now, 64 * self.t1 + UNANSWERED_INVITE_GRACE)  # type: ignore[arg-type]
        handler = self.handlers.get(method)
        if handler is None:
            self.respond(txn, 405 if method in ("PRACK", "SUBSCRIBE", "PUBLISH", "MESSAGE") else 501, headers=[("Allow", ALLOW)])
            return
        try:
            handler(request, txn)
        except SipPeerError as exc:
            if txn.final_status == 0:
                self.respond(txn, exc.status or 400, exc.reason[:100])
        except Exception:
            log.exception("sip: %s handler failed on a request from %s", method, peer)
            if txn.final_status == 0:
                self.respond(txn, 500)
        if method == "INVITE" and txn.last_response is None and txn.final_status == 0:
            # RFC 3261 §17.2.1: 100 Trying unless the TU answered something at once (it usually has:
            # a 180, or a challenge), which saves a message per call.
            self.respond(txn, 100)

    def _cancel(self, cancel: ServerTransaction, invite: ServerTransaction) -> None:
        # The layer answered 481 itself when there is nothing (left) to cancel.
        self.respond(cancel, 200, to_tag=invite.to_tag)
        if invite.final_status == 0:
            if invite.on_cancel is not None:
                invite.on_cancel(invite)
            if invite.final_status == 0:
                self.respond(invite, 487, to_tag=invite.to_tag)

    def _ended(self, txn: Any) -> None:
        if txn in self._guarded:
            self._guarded.discard(txn)
            self.guard.transaction_ended(txn.source)

    def _response(self, response: Response, peer: Peer) -> None:
        for action in self.layer.receive_response(response, self.clock()):
            kind = type(action)
            if kind is DeliverResponse:
                txn = action.transaction  # type: ignore[union-attr]
                if txn is None:
                    try:
                        if response.cseq[1] == "INVITE" and 200 <= response.status < 300:
                            self.on_stray_response(response, peer)
                    except SipPeerError:
                        pass
                else:
                    self._tell(txn, response)
            elif kind is SendMessage:
                self._send(action.data, action.peer)  # type: ignore[union-attr]

    def _tell(self, txn: ClientTransaction, response: Response | None) -> None:
        # A peer's response is input like any other: whatever the caller's code makes of a malformed
        # one (a 2xx without a To tag...), it must not take the message loop down with it.
        if txn.on_response is None:
            return
        try:
            txn.on_response(response, txn)
        except SipPeerError as exc:
            log.info("sip: ignoring a bad %s response from %s: %s", txn.method, txn.peer, safe_text(exc))
        except Exception:
            log.exception("sip: handling a response to %s failed", txn.method)

    # ------------------------------------------------------------------------------------------ timers

    def _sync_timer(self) -> None:
        """Keep one scheduler entry at the layer's earliest deadline."""
        due = self.layer.next_timer()
        if due is None:
            return
        current = self._layer_timer
        if current is not None and not current.cancelled:
            if current.when <= due:
                return
            current.cancel()
        self._layer_timer = self.scheduler.call_at(due, self._run_layer_timers)

    def _run_layer_timers(self, now: float) -> None:
        self._layer_timer = None
        for action in self.layer.handle_timer(now):
            kind = type(action)
            if kind is SendMessage:
                self._send(action.data, action.peer)  # type: ignore[union-attr]
            elif kind is TransactionTimeout:
                txn = action.transaction  # type: ignore[union-attr]
                if isinstance(txn, ClientTransaction):
                    self.stats["client_timeouts"] += 1
                    self._tell(txn, None)
            elif kind is TransactionTerminated:
                self._ended(action.transaction)  # type: ignore[union-attr]
            elif kind is DeliverResponse and action.transaction is not None:  # type: ignore[union-attr]
                self._tell(action.transaction, action.response)  # type: ignore[union-attr]
        self._sync_timer()

    # ------------------------------------------------------------------------------------- responding

    def respond(
        self,
        txn: ServerTransaction,
        status: int,
        reason: str | None = None,
        *,
        headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        to_tag: str | None = None,
    ) -> Response:
        """Answer ``txn``; the transaction retransmits finals as RFC 3261 requires until the ACK (INVITE)."""
        if txn.final_status >= 200:
            raise RuntimeError(f"{txn!r} already answered {txn.final_status}")
        if status > 100 and to_tag is None:
            to_tag = txn.to_tag or new_tag()
        if to_tag:
            txn.to_tag = to_tag
        extra = list(headers)
        if status > 100 and not any(n.lower() == "server" for n, _ in extra):
            extra.append(("Server", self.user_agent))
        response = make_response(txn.request, status, reason, to_tag=to_tag if status > 100 else None, headers=extra, body=body)
        for action in txn.send_response(response, self.clock()):
            if type(action) is SendMessage:
                self._send(action.data, action.peer)  # type: ignore[union-attr]
        if status >= 200 and not isinstance(txn, ServerInviteTransaction):
            # A non-INVITE transaction is open (for the guard) until answered; afterwards it only keeps
            # the answer's bytes for retransmissions (Timer J).
            self._ended(txn)
            txn.compact()
        self._sync_timer()
        return response

    def _send_response(self, data: bytes, request: Request, peer: Peer) -> None:
        self._send(data, response_peer(request, peer))

    def send(self, data: bytes, peer: Peer) -> bool:
        return self._send(data, peer)

    # -------------------------------------------------------------------------------------- requesting

    def via_for(self, peer: Peer, branch: str) -> str:
        local = self.local.get(peer.transport) or next(iter(self.local.values()))
        host = f"[{local.host}]" if ":" in local.host else local.host
        return f"SIP/2.0/{peer.transport.upper()} {host}:{local.port};branch={branch};rport"

    def contact_uri(self, transport: str = "udp", user: str = "centralita") -> str:
        local = self.local.get(transport) or next(iter(self.local.values()))
        host = f"[{local.host}]" if ":" in local.host else local.host
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"sip:{user}@{host}:{local.port}{suffix}"

    def request(
        self,
        request: Request,
        peer: Peer,
        on_response: Callable[[Response | None, ClientTransaction], None],
        *,
        branch: str | None = None,
    ) -> ClientTransaction:
        """Send ``request`` (a new top Via is added) as a client transaction."""
        branch = branch or new_branch()
        request.headers.insert_first("Via", self.via_for(peer, branch))
        if "Max-Forwards" not in request.headers:
            request.headers.add("Max-Forwards", "70")
        if "User-Agent" not in request.headers:
            request.headers.add("User-Agent", self.user_agent)
        return self._start_client(request, peer, on_response)

    def _start_client(self, request: Request, peer: Peer, on_response: Callable[[Response | None, ClientTransaction], None]) -> ClientTransaction:
        txn, actions = self.layer.send_request(request, self.clock(), reliable=peer.reliable, peer=peer)
        txn.on_response = on_response
        for action in actions:
            if type(action) is SendMessage:
                self._send(action.data, action.peer)  # type: ignore[union-attr]
        self._sync_timer()
        return txn

    def cancel(self, txn: ClientTransaction) -> None:
        """CANCEL a pending INVITE (RFC 3261 §9.1): same branch, Request-URI, Call-ID, From, To, CSeq number."""
        if txn.state not in _CLIENT_LIVE:
            return
        self._start_client(make_cancel(txn.request), txn.peer, lambda r, t: None)

    # ------------------------------------------------------------------------------------------ misc

    def _options(self, request: Request, txn: ServerTransaction) -> None:
        # The health probe: always 200, whatever the user part (monitoring and load balancers use it).
        self.respond(
            txn,
            200,
            headers=[("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", ", ".join(sorted(SUPPORTED)))],
        )

    def _publish(self, events: list[SecurityEvent]) -> None:
        for event in events:
            self.on_security_event(event)

    def statistics(self) -> dict[str, int]:
        layer = self.layer.statistics()
        return {
            **self.stats,
            "retransmissions_absorbed": layer["requests_absorbed"],
            "server_transactions": layer["server_transactions"],
            "client_transactions": layer["client_transactions"],
        }


def response_peer(request: Request, peer: Peer) -> Peer:
    """Where responses to ``request`` received from ``peer`` go (RFC 3261 §18.2.2, RFC 3581 §4).

    Reliable transports: back on the same connection. UDP: to the source address (stamped into the Via
    as ``received``), at the source port when the client asked for ``rport``, else at the port its Via
    names.
    """
    if peer.reliable:
        return peer
    try:
        destination = response_destination(request)
    except SipPeerError:
        return peer
    if destination is None or destination[1] == peer.port:
        return peer
    return Peer(peer.transport, peer.host, destination[1], peer.local, peer.connection)
