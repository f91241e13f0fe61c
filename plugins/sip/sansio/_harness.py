"""A two-peer (or more) in-memory SIP harness with an explicit clock, for tests.

:class:`LoopbackNetwork` carries datagrams between :class:`HarnessAgent` objects as bytes (every message is
serialized and parsed again, as on a real wire), can drop datagrams to exercise retransmission, and
advances its clock straight to the next delivery or timer. The agents are small but real user agents built
from the sans-IO parts: a :class:`TransactionLayer`, :class:`Dialog` objects and a :class:`MediaSession`.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from ._dialog import Dialog, DialogState, dialog_id_for_incoming_request, dialog_id_for_response
from ._errors import SdpNegotiationError, SipParseError
from ._headers import Headers
from ._layer import TransactionLayer
from ._message import Request, Response, make_response
from ._offer_answer import MediaSession, Negotiated
from ._parser import parse_message
from ._timers import (
    Action,
    DeliverRequest,
    DeliverResponse,
    SendMessage,
    TimerConfig,
    TransactionTimeout,
    new_branch,
    new_call_id,
    new_tag,
)
from ._message import make_cancel

__all__ = ["LoopbackNetwork", "HarnessAgent", "HarnessCall"]


class LoopbackNetwork:
    """Datagrams between agents, delivered after ``latency`` seconds of the explicit clock."""

    def __init__(self, *, latency: float = 0.01, timers: TimerConfig | None = None) -> None:
        self.now = 0.0
        self.latency = latency
        self.timers = timers or TimerConfig()
        self.agents: dict[str, HarnessAgent] = {}
        self._queue: list[tuple[float, int, str, str, bytes]] = []
        self._seq = itertools.count()
        self.drop: Callable[[str, str, bytes], bool] | None = None  #: return True to lose a datagram
        self.delivered: list[tuple[float, str, str, bytes]] = []  #: (time, source, destination, bytes)
        self.dropped = 0

    def agent(self, address: str, user: str, **kwargs: object) -> HarnessAgent:
        agent = HarnessAgent(self, address, user, **kwargs)  # type: ignore[arg-type]
        self.agents[address] = agent
        return agent

    def send(self, source: str, destination: str, data: bytes) -> None:
        if self.drop is not None and self.drop(source, destination, data):
            self.dropped += 1
            return
        heapq.heappush(self._queue, (self.now + self.latency, next(self._seq), source, destination, data))

    def _next_event(self) -> float | None:
        times = [self._queue[0][0]] if self._queue else []
        times += [t for a in self.agents.values() if (t := a.next_timer()) is not None]
        return min(times) if times else None

    def run(self, until: float | None = None, *, max_steps: int = 100_000) -> None:
        """Deliver datagrams and fire timers in time order until nothing is left (or ``until``)."""
        for _ in range(max_steps):
            when = self._next_event()
            if when is None or (until is not None and when > until):
                if until is not None:
                    self.now = max(self.now, until)
                return
            self.now = max(self.now, when)
            while self._queue and self._queue[0][0] <= self.now:
                _, _, source, destination, data = heapq.heappop(self._queue)
                self.delivered.append((self.now, source, destination, data))
                target = self.agents.get(destination)
                if target is not None:
                    target.receive(data, source)
            for agent in list(self.agents.values()):
                deadline = agent.next_timer()
                if deadline is not None and deadline <= self.now:
                    agent.handle_timer(self.now)
        raise RuntimeError("harness did not settle")


@dataclass
class HarnessCall:
    call_id: str
    outgoing: bool
    invite: Request | None = None
    dialog: Dialog | None = None
    media: Negotiated | None = None
    final_status: int | None = None
    statuses: list[int] = field(default_factory=list)
    dtmf: list[str] = field(default_factory=list)
    ended_by: str | None = None
    invite_txn: object | None = None
    cancel_to: str | None = None  #: a CANCEL waiting for the first provisional response

    @property
    def established(self) -> bool:
        return self.dialog is not None and self.dialog.state is DialogState.CONFIRMED


class HarnessAgent:
    """A tiny user agent: calls, answers (or refuses, or lets ring), CANCEL, re-INVITE hold, INFO, BYE."""

    def __init__(self, network: LoopbackNetwork, address: str, user: str, *, answer: int | None = 200,
                 codecs: tuple[str, ...] = ("PCMU", "PCMA"), ring_timeout: float = 60.0) -> None:
        self.network = network
        self.ring_timeout = ring_timeout  #: an unanswered incoming call gets 480 after this long
        self.address = address
        self.user = user
        self.answer_status = answer  #: final status for incoming INVITEs (None: ring forever)
        self.codecs = codecs
        self.layer = TransactionLayer(network.timers)
        self.calls: dict[str, HarnessCall] = {}
        self.dialogs: dict[tuple[str, str, str], Dialog] = {}
        self.media: dict[str, MediaSession] = {}
        self.log: list[str] = []
        self.parse_errors: list[SipParseError] = []
        self.timeouts: list[TransactionTimeout] = []
        self._port = 40000
        self._ring_deadlines: dict[str, float] = {}

    @property
    def via(self) -> str:
        return f"UDP {self.address}"

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.address}>"

    def _media_for(self, call_id: str) -> MediaSession:
        if call_id not in self.media:
            self._port += 2
            self.media[call_id] = MediaSession(self.address.split(":")[0], self._port, codecs=self.codecs)
        return self.media[call_id]

    # -- time ----------------------------------------------------------------------------------------
    def next_timer(self) -> float | None:
        times = [t for t in (self.layer.next_timer(), *self._ring_deadlines.values()) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self.handle(self.layer.handle_timer(now))
        for call_id, deadline in list(self._ring_deadlines.items()):
            if deadline > now:
                continue
            del self._ring_deadlines[call_id]
            call = self.calls.get(call_id)
            txn = call.invite_txn if call is not None else None
            if call is not None and txn is not None and txn.state.value == "proceeding":  # type: ignore[attr-defined]
                assert call.dialog is not None
                self.handle(self.layer.respond(txn, 480, now=now, to_tag=call.dialog.local_tag))  # type: ignore[arg-type]
                call.dialog.terminate()
                call.ended_by = "ring timeout"

    # -- wire ----------------------------------------------------------------------------------------
    def receive(self, data: bytes, source: str) -> None:
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self.parse_errors.append(exc)
            if exc.status is not None and exc.partial is not None:
                self.network.send(self.address, source, make_response(exc.partial, exc.status).to_bytes())
            return
        now = self.network.now
        if isinstance(message, Request):
            self.handle(self.layer.receive_request(message, now, peer=source))
        else:
            self.handle(self.layer.receive_response(message, now))

    def handle(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendMessage):
                self.network.send(self.address, action.peer, action.data)
            elif isinstance(action, DeliverRequest):
                self._on_request(action)
            elif isinstance(action, DeliverResponse):
                self._on_response(action)
            elif isinstance(action, TransactionTimeout):
                self.timeouts.append(action)
                self.log.append(f"timeout {action.timer}")
                if action.response is not None:
                    self._on_response(DeliverResponse(action.response, action.transaction))

    def _send_request(self, request: Request, peer: str) -> object:
        txn, actions = self.layer.send_request(request, self.network.now, peer=peer)
        self.handle(actions)
        return txn

    # -- UAC -------------------------------------------------------------------------------------------
    def call(self, callee: HarnessAgent, *, user: str | None = None) -> HarnessCall:
        """Send an INVITE with an SDP offer to ``callee``."""
        call_id = new_call_id(self.address)
        h = Headers()
        h.add("Via", f"SIP/2.0/UDP {self.address};branch={new_branch()};rport")
        h.add("Max-Forwards", "70")
        h.add("From", f"<sip:{self.user}@{self.address}>;tag={new_tag()}")
        h.add("To", f"<sip:{user or callee.user}@{callee.address}>")
        h.add("Call-ID", call_id)
        h.add("CSeq", "1 INVITE")
        h.add("Contact", self.contact)
        h.add("Content-Type", "application/sdp")
        offer = self._media_for(call_id).make_offer().serialize()
        invite = Request("INVITE", f"sip:{user or callee.user}@{callee.address}", h, offer)
        call = self.calls[call_id] = HarnessCall(call_id, True, invite)
        call.invite_txn = self._send_request(invite, callee.address)
        return call

    def cancel(self, call: HarnessCall, peer: str) -> None:
        """CANCEL the INVITE now, or as soon as a provisional response arrives (RFC 3261 §9.1)."""
        assert call.invite is not None
        txn = call.invite_txn
        if txn is not None and txn.terminated:  # type: ignore[attr-defined]
            return
        if txn is not None and not txn.cancel_allowed:  # type: ignore[attr-defined]
            call.cancel_to = peer
            return
        self._send_request(make_cancel(call.invite), peer)

    def _peer_of(self, dialog: Dialog) -> str:
        return dialog.remote_target.hostport  # type: ignore[union-attr]

    def hangup(self, call: HarnessCall) -> None:
        assert call.dialog is not None
        self._send_request(call.dialog.create_bye(via=self.via), self._peer_of(call.dialog))
        call.dialog.terminate()
        call.ended_by = "us"

    def hold(self, call: HarnessCall, *, resume: bool = False) -> None:
        assert call.dialog is not None
        media = self._media_for(call.call_id)
        sdp = (media.resume_offer() if resume else media.hold_offer()).serialize()
        self._send_request(call.dialog.create_reinvite(sdp, via=self.via), self._peer_of(call.dialog))

    def send_dtmf_info(self, call: HarnessCall, digit: str) -> None:
        assert call.dialog is not None
        self._send_request(call.dialog.create_info_dtmf(digit, via=self.via), self._peer_of(call.dialog))

    def _on_response(self, action: DeliverResponse) -> None:
        response = action.response
        method = response.cseq[1]
        call = self.calls.get(response.call_id or "")
        if call is None:
            return
        call.statuses.append(response.status)
        self.log.append(f"got {response.status} to {method}")
        txn = action.transaction
        if method == "INVITE" and response.status < 200 and call.cancel_to is not None:
            peer, call.cancel_to = call.cancel_to, None
            self.cancel(call, peer)
        if method == "INVITE":
            request = txn.request if txn is not None else call.invite
            assert request is not None
            did = dialog_id_for_response(response)
            dialog = self.dialogs.get(did) if did else None
            if 200 <= response.status < 300:
                if dialog is None:
                    dialog = Dialog.from_uac(request, response, local_contact=self.contact)
                    self.dialogs[dialog.id] = dialog
                    call.dialog = dialog
                dialog.receive_response(response, "INVITE")
                first_answer = call.final_status is None
                reinvite = txn is not None and txn.request is not call.invite
                if response.body and (first_answer or reinvite):
                    call.media = self._media_for(call.call_id).accept_answer(response.body)
                ack = dialog.create_ack(via=self.via)
                self.network.send(self.address, self._peer_of(dialog), ack.to_bytes())
                if call.final_status is None:
                    call.final_status = response.status
            elif response.status >= 300:
                if dialog is not None:
                    dialog.receive_response(response, "INVITE")
                if call.final_status is None:
                    call.final_status = response.status
        elif call.dialog is not None:
            call.dialog.receive_response(response, method)

    # -- UAS -------------------------------------------------------------------------------------------
    def _on_request(self, action: DeliverRequest) -> None:
        request, txn = action.request, action.transaction
        now = self.network.now
        self.log.append(f"got {request.method}")
        call_id = request.call_id or ""
        did = dialog_id_for_incoming_request(request)
        dialog = self.dialogs.get(did) if did else None
        if request.method == "ACK":
            return
        if request.method == "CANCEL":
            self.handle(self.layer.respond(txn, 200, now=now))
            call = self.calls.get(call_id)
            if action.cancels is not None and call is not None and call.dialog is not None:
                self.handle(self.layer.respond(action.cancels, 487, now=now, to_tag=call.dialog.local_tag))
                call.dialog.terminate()
                call.ended_by = "cancel"
            return
        if dialog is None and did is not None:
            self.handle(self.layer.respond(txn, 481, now=now))
            return
        if dialog is not None:
            status = dialog.receive_request(request)
            if status is not None:
                self.handle(self.layer.respond(txn, status, now=now))
                return
            call = self.calls[call_id]
            if request.method == "BYE":
                self.handle(self.layer.respond(txn, 200, now=now))
                call.ended_by = "them"
            elif request.method == "INFO":
                for line in request.body.decode(errors="replace").splitlines():
                    if line.lower().startswith("signal="):
                        call.dtmf.append(line.split("=", 1)[1].strip())
                self.handle(self.layer.respond(txn, 200, now=now))
            elif request.method == "INVITE":
                try:
                    answer, call.media = self._media_for(call_id).answer(request.body)
                except SdpNegotiationError as exc:
                    self.handle(self.layer.respond(txn, exc.status or 488, now=now))
                    return
                self.handle(self.layer.respond(txn, 200, now=now, headers=[
                    ("Contact", self.contact), ("Content-Type", "application/sdp")], body=answer.serialize()))
            else:
                self.handle(self.layer.respond(txn, 200, now=now))
            return
        if request.method == "INVITE":
            tag = new_tag()
            call = self.calls[call_id] = HarnessCall(call_id, False, request)
            call.dialog = Dialog.from_uas(request, tag, local_contact=self.contact, early=True)
            self.dialogs[call.dialog.id] = call.dialog
            call.invite_txn = txn
            self.handle(self.layer.respond(txn, 180, now=now, to_tag=tag, headers=[("Contact", self.contact)]))
            if self.answer_status is None:
                self._ring_deadlines[call_id] = now + self.ring_timeout
                return
            if self.answer_status >= 300:
                self.handle(self.layer.respond(txn, self.answer_status, now=now, to_tag=tag))
                call.dialog.terminate()
                return
            try:
                answer, call.media = self._media_for(call_id).answer(request.body)
            except SdpNegotiationError as exc:
                self.handle(self.layer.respond(txn, exc.status or 488, now=now, to_tag=tag))
                call.dialog.terminate()
                return
            self.handle(self.layer.respond(txn, 200, now=now, to_tag=tag, headers=[
                ("Contact", self.contact), ("Content-Type", "application/sdp")], body=answer.serialize()))
            call.dialog.confirm()
            return
        if request.method == "OPTIONS":
            self.handle(self.layer.respond(txn, 200, now=now, to_tag=new_tag()))
            return
        self.handle(self.layer.respond(txn, 405, now=now, to_tag=new_tag()))
