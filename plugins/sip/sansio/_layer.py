"""The transaction layer: creates transactions, matches messages to them, runs their timers.

Matching follows RFC 3261 §17.1.3 (responses: top Via branch + CSeq method) and §17.2.3 (requests: branch
+ sent-by + method, with ACK matching its INVITE; the RFC 2543 fallback without the magic cookie uses
Request-URI, To tag, From tag, Call-ID, CSeq number and top Via). Retransmissions are absorbed by the
matching transaction; an ACK matching no transaction (the ACK for a 2xx) goes to the TU, after stopping
the 2xx retransmission of the INVITE it acknowledges.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any

from ._errors import SipParseError
from ._message import Request, Response, make_response
from ._timers import (
    DEFAULT_TIMERS,
    MAGIC_COOKIE,
    Action,
    DeliverRequest,
    DeliverResponse,
    TimerConfig,
)
from ._transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    TransactionState,
    _ClientTransaction,
    _ServerTransaction,
    _Transaction,
)

__all__ = ["TransactionLayer"]

ServerKey = tuple[Any, ...]


def server_key(request: Request, method: str | None = None) -> ServerKey | None:
    """The §17.2.3 matching key of a request (an ACK matches its INVITE; ``method`` overrides, so a CANCEL
    can look up the INVITE it cancels)."""
    try:
        top = request.top_via
        if top is None:
            return None
        if method is None:
            method = "INVITE" if request.method == "ACK" else request.method
        branch = top.branch
        if branch and branch.startswith(MAGIC_COOKIE) and branch != MAGIC_COOKIE:
            return ("3261", branch, top.sent_by, method)
        # RFC 2543 peers: no usable branch.
        # (The To tag is left out: an ACK carries the tag of our response, the INVITE did not. A peer
        # sending RFC 2543 retransmissions does not change its To tag between them.)
        number, _ = request.cseq
        return ("2543", str(request.uri), request.from_.tag, request.call_id, number, method, str(top))
    except SipParseError:
        return None


class TransactionLayer:
    """All live transactions of one SIP endpoint, with one timer heap."""

    def __init__(self, timers: TimerConfig = DEFAULT_TIMERS) -> None:
        self.timers = timers
        self._clients: dict[tuple[str, str], _ClientTransaction] = {}
        self._servers: dict[ServerKey, _ServerTransaction] = {}
        self._server_keys: dict[int, ServerKey] = {}
        self._accepted_invites: dict[tuple[str | None, int], ServerInviteTransaction] = {}
        # Heap entries point at a per-transaction slot, not at the transaction: a deadline that moved
        # leaves a stale entry behind until it comes due, and a stale entry must not keep a finished
        # transaction (and the messages it holds) alive until then. Forgetting a transaction empties
        # its slot.
        self._heap: list[tuple[float, int, list[_Transaction | None]]] = []
        self._scheduled: dict[int, float] = {}
        self._seq = itertools.count()
        self._stats = {"requests_absorbed": 0, "responses_absorbed": 0, "stray_responses": 0, "timeouts": 0}

    # -- client side ---------------------------------------------------------------------------------
    def send_request(
        self, request: Request, now: float, *, reliable: bool = False, peer: Any = None
    ) -> tuple[_ClientTransaction, list[Action]]:
        """Start a client transaction for ``request`` (its top Via gets a branch if it has none)."""
        top = request.top_via
        if top is None or not top.branch or not top.branch.startswith(MAGIC_COOKIE):
            raise SipParseError("send_request needs a top Via with a z9hG4bK branch", None)
        cls = ClientInviteTransaction if request.method == "INVITE" else ClientNonInviteTransaction
        txn = cls(request, reliable=reliable, timers=self.timers, peer=peer)
        self._clients[(top.branch, request.method)] = txn
        actions = txn.start(now)
        self._schedule(txn)
        return txn, actions

    def receive_response(self, response: Response, now: float) -> list[Action]:
        try:
            top = response.top_via
            _, method = response.cseq
        except SipParseError:
            return []
        txn = self._clients.get(((top.branch or "") if top else "", method))
        if txn is None:
            self._stats["stray_responses"] += 1
            return [DeliverResponse(response, None)]
        actions = txn.receive_response(response, now)
        if not actions:
            self._stats["responses_absorbed"] += 1
        return self._after(txn, actions)

    # -- server side ---------------------------------------------------------------------------------
    def receive_request(self, request: Request, now: float, *, reliable: bool = False, peer: Any = None) -> list[Action]:
        """Match a request to a server transaction, or create one and deliver the request to the TU."""
        key = server_key(request)
        if key is None:
            return []
        txn = self._servers.get(key)
        if request.method == "ACK":
            if txn is not None and txn.state is not TransactionState.ACCEPTED:
                self._stats["requests_absorbed"] += 1
                return self._after(txn, txn.receive_request(request, now))
            try:
                accepted = self._accepted_invites.get((request.call_id, request.cseq[0]))
            except SipParseError:
                accepted = None
            if accepted is not None:
                accepted.ack_received()
                self._schedule(accepted)
            return [DeliverRequest(request, None, peer, acknowledges=accepted)]
        if txn is not None:
            self._stats["requests_absorbed"] += 1
            return self._after(txn, txn.receive_request(request, now))
        cls = ServerInviteTransaction if request.method == "INVITE" else ServerNonInviteTransaction
        txn = cls(request, reliable=reliable, timers=self.timers, peer=peer)
        txn._layer = self
        self._servers[key] = txn
        self._server_keys[id(txn)] = key
        if request.method == "CANCEL":
            invite_key = server_key(request, "INVITE")
            invite = self._servers.get(invite_key) if invite_key is not None else None
            if invite is None or invite.state is not TransactionState.PROCEEDING:
                # RFC 3261 §9.2: nothing (left) to cancel.
                return txn.send_response(make_response(request, 481), now)
            return [DeliverRequest(request, txn, peer, cancels=invite)]
        return [DeliverRequest(request, txn, peer)]

    def send_response(self, transaction: _ServerTransaction, response: Response, now: float) -> list[Action]:
        """Send a response through a server transaction (same as ``transaction.send_response``)."""
        return transaction.send_response(response, now)

    def _sent(self, transaction: _ServerTransaction, response: Response) -> None:
        if isinstance(transaction, ServerInviteTransaction) and 200 <= response.status < 300:
            try:
                self._accepted_invites[(transaction.request.call_id, transaction.request.cseq[0])] = transaction
            except SipParseError:
                pass
        self._after(transaction, [])

    def respond(self, transaction: _ServerTransaction, status: int, reason: str | None = None, *, now: float,
                to_tag: str | None = None, headers: Any = (), body: bytes = b"") -> list[Action]:
        response = make_response(transaction.request, status, reason, to_tag=to_tag, headers=headers, body=body)
        return self.send_response(transaction, response, now)

    def transport_error(self, transaction: _Transaction, now: float) -> list[Action]:
        return self._after(transaction, transaction.transport_error(now))

    # -- timers ----------------------------------------------------------------------------------------
    def next_timer(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, slot = heap[0]
            txn = slot[0]
            if txn is not None and self._scheduled.get(id(txn)) == deadline:
                return deadline
            heapq.heappop(heap)  # stale entry
        return None

    def handle_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, slot = heapq.heappop(heap)
            txn = slot[0]
            if txn is None or self._scheduled.get(id(txn)) != deadline:
                continue
            del self._scheduled[id(txn)]
            actions += self._after(txn, txn.handle_timer(now))
        return actions

    def guard_unanswered(self, transaction: ServerInviteTransaction, now: float, limit: float) -> None:
        """Give up ``transaction`` if the TU sends no final response within ``limit`` seconds (Timer P)."""
        transaction.guard_unanswered(now, limit)
        self._schedule(transaction)

    def _schedule(self, txn: _Transaction) -> None:
        deadline = txn.next_timer()
        if deadline is None:
            self._scheduled.pop(id(txn), None)
            return
        if self._scheduled.get(id(txn)) != deadline:
            self._scheduled[id(txn)] = deadline
            slot = txn._heap_slot
            if slot is None:
                slot = txn._heap_slot = [txn]
            heapq.heappush(self._heap, (deadline, next(self._seq), slot))
            if len(self._heap) > 2 * len(self._scheduled) + 1024:
                # Mostly stale entries (deadlines that moved): rebuild, so the heap follows the live timers.
                self._heap = [e for e in self._heap if e[2][0] is not None and self._scheduled.get(id(e[2][0])) == e[0]]
                heapq.heapify(self._heap)

    def _after(self, txn: _Transaction, actions: list[Action]) -> list[Action]:
        if txn.state is TransactionState.TERMINATED:
            self._forget(txn)
        else:
            self._schedule(txn)
        for action in actions:
            if type(action).__name__ == "TransactionTimeout":
                self._stats["timeouts"] += 1
        return actions

    def _forget(self, txn: _Transaction) -> None:
        self._scheduled.pop(id(txn), None)
        if txn._heap_slot is not None:
            txn._heap_slot[0] = None
        if isinstance(txn, _ClientTransaction):
            key = (txn.branch or "", txn.method)
            if self._clients.get(key) is txn:
                del self._clients[key]
        else:
            skey = self._server_keys.pop(id(txn), None)
            if skey is not None and self._servers.get(skey) is txn:
                del self._servers[skey]
            if isinstance(txn, ServerInviteTransaction):
                try:
                    akey = (txn.request.call_id, txn.request.cseq[0])
                except SipParseError:
                    return
                if self._accepted_invites.get(akey) is txn:
                    del self._accepted_invites[akey]

    # -- introspection -----------------------------------------------------------------------------------
    def find_client(self, branch: str, method: str) -> _ClientTransaction | None:
        return self._clients.get((branch, method))

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    def statistics(self) -> dict[str, int]:
        return {"client_transactions": len(self._clients), "server_transactions": len(self._servers),
                "timers": len(self._scheduled), **self._stats}

