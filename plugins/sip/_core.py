"""The message layer of the shell: parse, police, match transactions, dispatch, route responses.

It is synchronous: the transports call :meth:`SipCore.deliver` for every message and it answers with
``send_nowait``; timers run from one :class:`~plugins.sip._timers.Scheduler`. The roles (registrar,
trunks, calls) register handlers per method and use :meth:`respond` / :meth:`request`.

Transactions (RFC 3261 §17), kept deliberately small here because every message of every call passes
through them:

================  ================================================================================
server, non-INV   retransmitted request -> last response again; final kept 64*T1 (UDP) to absorb
server, INVITE    100 Trying at once; non-2xx final retransmitted (Timer G, doubling to T2) until the
                  ACK; 2xx final retransmitted likewise until the ACK of the dialog (§13.3.1.4)
client, non-INV   retransmitted (Timer E) on UDP until a response, Timer F (64*T1) -> timeout
client, INVITE    retransmitted (Timer A) on UDP until a response, Timer B -> timeout; a non-2xx
                  final is ACKed by the transaction; 2xx (and its retransmissions) go to the caller
================  ================================================================================

Response routing (RFC 3261 §18.2.2 with RFC 3581): the top Via gets ``received`` (and ``rport`` when
asked); responses go back on the connection or socket the request came from, to the source port when
``rport`` was asked, otherwise to the Via port.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine._events import safe_text

from ._security import SecurityEvent, SecurityGuard, Verdict
from ._timers import Scheduler, TimerHandle
from ._transport import ListenAddress, Peer
from .sansio import (
    Headers,
    ParseLimits,
    Request,
    Response,
    SipParseError,
    SipPeerError,
    Via,
    make_response,
    parse_message,
)

__all__ = ["ClientTransaction", "ServerTransaction", "SipCore", "new_branch", "new_tag"]

log = logging.getLogger("centralita.sip")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, REFER, NOTIFY, UPDATE"
SUPPORTED = frozenset({"replaces", "norefersub"})


# Tags, branches and Call-IDs must be unique, not secret: a PRNG seeded once from the OS is enough, and
# on a busy box a getrandom() system call per message (secrets/urandom) costs more than parsing it.
_random = random.Random(secrets.randbits(128))


def new_branch() -> str:
    return "z9hG4bK%016x" % _random.getrandbits(64)


def new_tag() -> str:
    return "%012x" % _random.getrandbits(48)


@dataclass(eq=False)
class ServerTransaction:
    key: tuple[str, str, str]
    request: Request
    peer: Peer
    source: str
    invite: bool
    last: bytes | None = None
    final_status: int = 0
    timer: TimerHandle | None = None
    #: set by the call layer to learn about CANCEL for this INVITE
    on_cancel: Callable[[ServerTransaction], None] | None = None
    to_tag: str | None = None
    acked: bool = False
    #: (Call-ID, CSeq number): how the ACK of a 2xx finds this transaction
    ack_key: tuple[str, int] = ("", 0)


@dataclass(eq=False)
class ClientTransaction:
    branch: str
    method: str
    request: Request
    data: bytes
    peer: Peer
    on_response: Callable[[Response | None, ClientTransaction], None]
    interval: float = 0.0
    retransmit: TimerHandle | None = None
    timeout: TimerHandle | None = None
    responded: bool = False
    done: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Request, ServerTransaction], None]


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
        self.limits = limits or ParseLimits()
        self.user_agent = user_agent
        self.on_security_event = on_security_event
        self.handlers: dict[str, Handler] = {"OPTIONS": self._options}
        #: ACK for a 2xx (no server transaction matches it): the call layer's
        self.on_ack: Callable[[Request, Peer], None] = lambda r, p: None
        #: a response no client transaction matches (a retransmitted 2xx to an INVITE): the call layer's
        self.on_stray_response: Callable[[Response, Peer], None] = lambda r, p: None
        self._server: dict[tuple[str, str, str], ServerTransaction] = {}
        self._awaiting_ack: dict[tuple[str, int], ServerTransaction] = {}
        self._client: dict[tuple[str, str], ClientTransaction] = {}
        #: where our own Via and Contact point, per transport (set once the transports are bound)
        self.local: dict[str, ListenAddress] = {}
        self.stats = {
            "requests": 0,
            "responses": 0,
            "parse_errors": 0,
            "dropped": 0,
            "retransmissions_absorbed": 0,
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
            assert via is not None
            self._stamp_via(request, via, peer)
            method = request.method
            branch = via.branch or ""
            if not branch.startswith("z9hG4bK"):
                # RFC 2543 peers: no magic cookie, so fall back on the fields that identify the request.
                branch = f"2543|{request.call_id}|{request.cseq[0]}|{request.headers.get('From')}"
            key_method = "INVITE" if method == "ACK" else method
            key = (branch, via.sent_by, key_method)
        except SipPeerError as exc:
            if request.method != "ACK" and exc.status:
                self._send_response(make_response(request, exc.status, exc.reason).to_bytes(), request, peer)
            return
        existing = self._server.get(key)
        if method == "ACK":
            if existing is not None and existing.final_status >= 300:
                self._ack_received(existing)
                return
            self._ack_for_2xx(request, peer)
            return
        if existing is not None:
            self.stats["retransmissions_absorbed"] += 1
            if existing.last is not None:
                self._send(existing.last, existing.peer)
            return
        if method == "CANCEL":
            self._cancel(request, peer, branch, via)
            return
        if self.guard.transaction_started(peer.host, now) is Verdict.REJECT:
            self._send_response(
                make_response(request, 503, headers=[("Retry-After", "5")]).to_bytes(), request, peer
            )
            return
        txn = ServerTransaction(key, request, response_peer(request, peer), peer.host, method == "INVITE")
        txn.ack_key = (request.call_id or "", request.cseq[0])
        self._server[key] = txn
        # Every transaction ends eventually, whatever the handler does (or forgets to do).
        txn.timer = self.scheduler.call_at(now + 64 * self.t1 + (180.0 if txn.invite else 0.0), lambda t, x=txn: self._forget(x))
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
        if txn.invite and txn.last is None:
            # RFC 3261 §17.2.1: 100 Trying unless the TU answered something at once (it usually has:
            # a 180, or a challenge), which saves a message per call.
            self.respond(txn, 100)

    def _stamp_via(self, request: Request, via: Via, peer: Peer) -> None:
        params: dict[str, str | None] = {}
        if via.rport is True:
            params["rport"] = str(peer.port)
            params["received"] = peer.host
        elif via.host != peer.host:
            params["received"] = peer.host
        if params:
            vias = request.headers.get_all("Via")
            request.headers.set("Via", ", ".join([str(via.with_params(**params)), *vias[1:]]))

    def _response(self, response: Response, peer: Peer) -> None:
        try:
            via = response.top_via
            method = response.cseq[1]
        except SipPeerError:
            return
        if via is None or via.branch is None:
            return
        txn = self._client.get((via.branch, method))
        if txn is None or txn.done and not (method == "INVITE" and 200 <= response.status < 300):
            if method == "INVITE" and 200 <= response.status < 300:
                self.on_stray_response(response, peer)
            return
        if response.status >= 100:
            txn.responded = True
            if txn.retransmit is not None and (txn.method == "INVITE" or response.status >= 200):
                txn.retransmit.cancel()
                txn.retransmit = None
        if response.status >= 200:
            if txn.done:
                # A retransmitted 2xx to our INVITE: the caller re-sends its ACK.
                self._tell(txn, response)
                return
            txn.done = True
            if txn.timeout is not None:
                txn.timeout.cancel()
            if txn.method == "INVITE" and response.status >= 300:
                self._send(self._ack_for_failure(txn, response).to_bytes(), txn.peer)
            linger = 64 * self.t1 if txn.method == "INVITE" and not txn.peer.reliable else (self.t4 if not txn.peer.reliable else 0)
            self.scheduler.call_at(self.clock() + linger, lambda t, k=(txn.branch, txn.method): self._client.pop(k, None))
        self._tell(txn, response)

    def _tell(self, txn: ClientTransaction, response: Response | None) -> None:
        # A peer's response is input like any other: whatever the caller's code makes of a malformed
        # one (a 2xx without a To tag...), it must not take the message loop down with it.
        try:
            txn.on_response(response, txn)
        except SipPeerError as exc:
            log.info("sip: ignoring a bad %s response from %s: %s", txn.method, txn.peer, safe_text(exc))
        except Exception:
            log.exception("sip: handling a response to %s failed", txn.method)

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
        """Answer ``txn``; finals are retransmitted as RFC 3261 requires until the ACK (INVITE)."""
        if txn.final_status >= 200:
            raise RuntimeError(f"transaction {txn.key} already answered {txn.final_status}")
        if status > 100 and to_tag is None:
            to_tag = txn.to_tag or new_tag()
        if to_tag:
            txn.to_tag = to_tag
        extra = list(headers)
        if not any(n.lower() == "server" for n, _ in extra) and status > 100:
            extra.append(("Server", self.user_agent))
        response = make_response(txn.request, status, reason, to_tag=to_tag if status > 100 else None, headers=extra, body=body)
        data = response.to_bytes()
        txn.last = data
        self._send(data, txn.peer)
        if status >= 200:
            txn.final_status = status
            self._finish(txn)
        return response

    def _finish(self, txn: ServerTransaction) -> None:
        now = self.clock()
        if txn.timer is not None:
            txn.timer.cancel()
        reliable = txn.peer.reliable
        if not txn.invite:
            txn.timer = self.scheduler.call_at(now + (0 if reliable else 64 * self.t1), lambda t, x=txn: self._forget(x))
            self.guard.transaction_ended(txn.source)
            # Only the answer is needed to absorb retransmissions for Timer J: let the request go, so
            # lingering transactions cost a few hundred bytes each at high call rates.
            txn.request = None  # type: ignore[assignment]
            return
        if txn.final_status < 300:
            self._awaiting_ack[txn.ack_key] = txn
        if not reliable:
            self._schedule_retransmit(txn, self.t1)
        # Timer H (non-2xx) / the 2xx retransmission window: give up waiting for the ACK after 64*T1.
        txn.timer = self.scheduler.call_at(now + 64 * self.t1, lambda t, x=txn: self._forget(x))

    def _schedule_retransmit(self, txn: ServerTransaction, interval: float) -> None:
        def again(now: float, txn: ServerTransaction = txn, interval: float = interval) -> None:
            if txn.key not in self._server or txn.last is None or txn.final_status == 0:
                return
            if txn.final_status < 300 and txn.ack_key not in self._awaiting_ack:
                return
            if txn.acked:
                return
            self._send(txn.last, txn.peer)
            self._schedule_retransmit(txn, min(2 * interval, self.t2))

        self.scheduler.call_at(self.clock() + interval, again)

    def _ack_received(self, txn: ServerTransaction) -> None:
        txn.acked = True
        if txn.timer is not None:
            txn.timer.cancel()
        # Timer I: absorb further ACK retransmissions for T4, then forget.
        txn.timer = self.scheduler.call_at(self.clock() + (0 if txn.peer.reliable else self.t4), lambda t, x=txn: self._forget(x))

    def _ack_for_2xx(self, request: Request, peer: Peer) -> None:
        try:
            txn = self._awaiting_ack.pop((request.call_id or "", request.cseq[0]), None)
        except SipPeerError:
            return
        if txn is not None:
            self._ack_received(txn)
        self.on_ack(request, peer)

    def _forget(self, txn: ServerTransaction) -> None:
        if self._server.get(txn.key) is txn:
            del self._server[txn.key]
            if txn.final_status == 0 or txn.invite:
                self.guard.transaction_ended(txn.source)
        if self._awaiting_ack.get(txn.ack_key) is txn:
            del self._awaiting_ack[txn.ack_key]

    def _cancel(self, request: Request, peer: Peer, branch: str, via: Via) -> None:
        invite = self._server.get((branch, via.sent_by, "INVITE"))
        cancel_txn = ServerTransaction((branch, via.sent_by, "CANCEL"), request, response_peer(request, peer), "", False)
        self._server[cancel_txn.key] = cancel_txn
        if invite is None:
            self.respond(cancel_txn, 481)
            return
        self.respond(cancel_txn, 200, to_tag=invite.to_tag)
        if invite.final_status == 0:
            if invite.on_cancel is not None:
                invite.on_cancel(invite)
            if invite.final_status == 0:
                self.respond(invite, 487)

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
        data = request.to_bytes()
        txn = ClientTransaction(branch, request.method, request, data, peer, on_response)
        self._client[(branch, request.method)] = txn
        self._send(data, peer)
        now = self.clock()
        if not peer.reliable:
            txn.interval = self.t1
            txn.retransmit = self.scheduler.call_at(now + self.t1, lambda t, x=txn: self._retransmit(x))
        txn.timeout = self.scheduler.call_at(now + 64 * self.t1, lambda t, x=txn: self._client_timeout(x))
        return txn

    def _retransmit(self, txn: ClientTransaction) -> None:
        if txn.done or (txn.method == "INVITE" and txn.responded):
            return
        self._send(txn.data, txn.peer)
        txn.interval = txn.interval * 2 if txn.method == "INVITE" else min(txn.interval * 2, self.t2)
        txn.retransmit = self.scheduler.call_at(self.clock() + txn.interval, lambda t, x=txn: self._retransmit(x))

    def _client_timeout(self, txn: ClientTransaction) -> None:
        if txn.done:
            return
        if txn.method == "INVITE" and txn.responded:
            return  # a provisional arrived: the call layer's own ring timeout decides now
        txn.done = True
        if txn.retransmit is not None:
            txn.retransmit.cancel()
        self._client.pop((txn.branch, txn.method), None)
        self.stats["client_timeouts"] += 1
        self._tell(txn, None)

    def cancel(self, txn: ClientTransaction) -> None:
        """CANCEL a pending INVITE (RFC 3261 §9.1): same branch, Request-URI, Call-ID, From, To, CSeq number."""
        if txn.done:
            return
        invite = txn.request
        headers = Headers()
        headers.add("Via", invite.headers.get_all("Via")[0])
        for name in ("Route",):
            for value in invite.headers.get_all(name):
                headers.add(name, value)
        headers.add("From", invite.headers.get("From") or "")
        headers.add("To", invite.headers.get("To") or "")
        headers.add("Call-ID", invite.call_id or "")
        headers.add("CSeq", f"{invite.cseq[0]} CANCEL")
        headers.add("Max-Forwards", "70")
        cancel = Request("CANCEL", invite.uri, headers)
        data = cancel.to_bytes()
        ctx = ClientTransaction(txn.branch, "CANCEL", cancel, data, txn.peer, lambda r, t: None)
        self._client[(txn.branch, "CANCEL")] = ctx
        self._send(data, txn.peer)
        if not txn.peer.reliable:
            ctx.interval = self.t1
            ctx.retransmit = self.scheduler.call_at(self.clock() + self.t1, lambda t, x=ctx: self._retransmit(x))
        ctx.timeout = self.scheduler.call_at(self.clock() + 64 * self.t1, lambda t, x=ctx: self._client_timeout(x))

    def _ack_for_failure(self, txn: ClientTransaction, response: Response) -> Request:
        invite = txn.request
        headers = Headers()
        headers.add("Via", invite.headers.get_all("Via")[0])
        for value in invite.headers.get_all("Route"):
            headers.add("Route", value)
        headers.add("From", invite.headers.get("From") or "")
        headers.add("To", response.headers.get("To") or "")
        headers.add("Call-ID", invite.call_id or "")
        headers.add("CSeq", f"{invite.cseq[0]} ACK")
        headers.add("Max-Forwards", "70")
        return Request("ACK", invite.uri, headers)

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
        return {**self.stats, "server_transactions": len(self._server), "client_transactions": len(self._client)}


def response_peer(request: Request, peer: Peer) -> Peer:
    """Where responses to ``request`` received from ``peer`` go (RFC 3261 §18.2.2, RFC 3581 §4).

    Reliable transports: back on the same connection. UDP: to the source address, at the source port
    when the client asked for ``rport`` (we stamped it), else at the port its Via names.
    """
    if peer.reliable:
        return peer
    try:
        via = request.top_via
    except SipPeerError:
        return peer
    if via is None:
        return peer
    rport = via.rport
    if isinstance(rport, int) and not isinstance(rport, bool):
        port = rport
    else:
        port = via.port or 5060
    if port == peer.port:
        return peer
    return Peer(peer.transport, peer.host, port, peer.local, peer.connection)
