"""The ESME side of an SMPP 3.4 session (sans-IO): bind_transceiver, enquire_link keep-alive,
submit_sm/deliver_sm, receipts, unbind. Fed bytes and the time, returns events and bytes to send.

A received deliver_sm is acknowledged only when the caller says it is stored (:meth:`ack`): the SMSC
resends anything we did not acknowledge, so a crash loses nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ._pdu import (
    RESPONSE_BIT,
    Cmd,
    Pdu,
    PduReader,
    SmppFramingError,
    SmppPeerError,
    Status,
    encode,
    nack,
    response_to,
)


class State(enum.Enum):
    OPEN = "open"  # connected, not bound
    BINDING = "binding"
    BOUND = "bound"
    UNBINDING = "unbinding"
    CLOSED = "closed"


S = State
#: Rules: traffic (submit/deliver) only while BOUND; every state may fall to CLOSED (link lost);
#: CLOSED is final (a reconnect is a new session).
TRANSITIONS: dict[State, frozenset[State]] = {
    S.OPEN: frozenset({S.BINDING, S.CLOSED}),
    S.BINDING: frozenset({S.BOUND, S.CLOSED}),
    S.BOUND: frozenset({S.UNBINDING, S.CLOSED}),
    S.UNBINDING: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
}
del S


class SessionUsageError(RuntimeError):
    """Local misuse: e.g. submitting while not bound."""


@dataclass(frozen=True)
class Bound:
    system_id: str


@dataclass(frozen=True)
class BindRefused:
    status: int


@dataclass(frozen=True)
class SubmitDone:
    sequence: int
    status: int
    message_id: str


@dataclass(frozen=True)
class Received:
    """A deliver_sm (a message or a receipt). Acknowledge it with :meth:`EsmeSession.ack` once stored."""

    pdu: Pdu


@dataclass(frozen=True)
class Closed:
    reason: str


@dataclass(frozen=True)
class PeerViolation:
    reason: str


Event = Bound | BindRefused | SubmitDone | Received | Closed | PeerViolation


@dataclass
class _Pending:
    command_id: int
    sent_at: float


@dataclass
class EsmeSession:
    enquire_interval: float = 30.0
    response_timeout: float = 10.0
    state: State = State.OPEN
    _out: bytearray = field(default_factory=bytearray)
    _reader: PduReader = field(default_factory=PduReader)
    _sequence: int = 0
    _pending: dict[int, _Pending] = field(default_factory=dict)
    _last_heard: float = 0.0
    violations: int = 0

    def _move(self, new: State) -> None:
        if new is self.state:
            return
        if new not in TRANSITIONS[self.state]:
            raise SessionUsageError(f"SMPP session: {self.state.value} -> {new.value} not allowed")
        self.state = new

    def _send(self, command_id: int, now: float, params: dict[str, Any] | None = None, tlvs: dict[int, bytes] | None = None) -> int:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        self._out += encode(Pdu(command_id, 0, self._sequence, dict(params or {}), dict(tlvs or {})))
        self._pending[self._sequence] = _Pending(command_id, now)
        return self._sequence

    def data_to_send(self) -> bytes:
        data, self._out = bytes(self._out), bytearray()
        return data

    # ------------------------------------------------------------------------------------ commands

    def bind(self, system_id: str, password: str, now: float, *, system_type: str = "") -> None:
        self._move(State.BINDING)
        self._last_heard = now
        self._send(Cmd.BIND_TRANSCEIVER, now, {"system_id": system_id, "password": password,
                                                "system_type": system_type, "interface_version": 0x34})

    def submit(self, params: dict[str, Any], now: float, tlvs: dict[int, bytes] | None = None) -> int:
        if self.state is not State.BOUND:
            raise SessionUsageError(f"cannot submit while {self.state.value}")
        return self._send(Cmd.SUBMIT_SM, now, params, tlvs)

    def ack(self, pdu: Pdu, status: int = Status.ROK) -> None:
        if self.state is not State.CLOSED:
            self._out += encode(response_to(pdu, status))

    def unbind(self, now: float) -> None:
        if self.state is State.BOUND:
            self._move(State.UNBINDING)
            self._send(Cmd.UNBIND, now)
        elif self.state is not State.CLOSED:
            self._move(State.CLOSED)

    def connection_lost(self, reason: str) -> list[Event]:
        if self.state is State.CLOSED:
            return []
        self._move(State.CLOSED)
        return [Closed(reason)]

    # ------------------------------------------------------------------------------------ timers

    def next_timer(self) -> float | None:
        if self.state is State.CLOSED:
            return None
        deadlines = [p.sent_at + self.response_timeout for p in self._pending.values()]
        if self.state is State.BOUND:
            deadlines.append(self._last_heard + self.enquire_interval)
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> list[Event]:
        if self.state is State.CLOSED:
            return []
        late = [seq for seq, p in self._pending.items() if p.sent_at + self.response_timeout <= now]
        if late:
            return self.connection_lost(f"no response to {len(late)} request(s) within {self.response_timeout}s")
        if self.state is State.BOUND and self._last_heard + self.enquire_interval <= now:
            if not any(p.command_id == Cmd.ENQUIRE_LINK for p in self._pending.values()):
                self._send(Cmd.ENQUIRE_LINK, now)
            self._last_heard = now
        return []

    # ------------------------------------------------------------------------------------ input

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        if self.state is State.CLOSED:
            return []
        self._reader.feed(data)
        events: list[Event] = []
        while True:
            try:
                pdu = self._reader.next_pdu()
            except SmppFramingError as exc:
                self._out += exc.reply
                self.violations += 1
                events += [PeerViolation(str(exc)), *self.connection_lost(f"unrecoverable framing: {exc}")]
                return events
            except SmppPeerError as exc:
                self._out += exc.reply
                self.violations += 1
                events.append(PeerViolation(str(exc)))
                continue
            if pdu is None:
                return events
            self._last_heard = now
            events += self._handle(pdu, now)
            if self.state is State.CLOSED:
                return events

    def _handle(self, pdu: Pdu, now: float) -> list[Event]:
        if pdu.command_id == Cmd.GENERIC_NACK or pdu.is_response:
            pending = self._pending.pop(pdu.sequence, None)
            if pending is None:
                self.violations += 1
                return [PeerViolation(f"{pdu.name} for unknown sequence {pdu.sequence}")]
            expected = pending.command_id | RESPONSE_BIT
            if pdu.command_id not in (expected, Cmd.GENERIC_NACK):
                self.violations += 1
                return [PeerViolation(f"{pdu.name} answers {Pdu(pending.command_id).name}")]
            return self._response(pending.command_id, pdu)
        if pdu.command_id == Cmd.ENQUIRE_LINK:
            self._out += encode(response_to(pdu))
            return []
        if pdu.command_id == Cmd.UNBIND:
            self._out += encode(response_to(pdu))
            return self.connection_lost("the SMSC unbound")
        if pdu.command_id == Cmd.DELIVER_SM:
            if self.state is not State.BOUND:
                self._out += encode(response_to(pdu, Status.RINVBNDSTS))
                return [PeerViolation("deliver_sm while not bound")]
            return [Received(pdu)]
        self._out += nack(Status.RINVCMDID, pdu.sequence)
        self.violations += 1
        return [PeerViolation(f"unexpected {pdu.name} from the SMSC")]

    def _response(self, command_id: int, pdu: Pdu) -> list[Event]:
        if command_id == Cmd.BIND_TRANSCEIVER:
            if pdu.status == Status.ROK and self.state is State.BINDING:
                self._move(State.BOUND)
                return [Bound(str(pdu.params.get("system_id", "")))]
            self._move(State.CLOSED)
            return [BindRefused(pdu.status or Status.RBINDFAIL), Closed(f"bind refused (status 0x{pdu.status:08x})")]
        if command_id == Cmd.SUBMIT_SM:
            return [SubmitDone(pdu.sequence, pdu.status, str(pdu.params.get("message_id", "")))]
        if command_id == Cmd.UNBIND:
            return self.connection_lost("unbound")
        return []  # enquire_link_resp: _last_heard was refreshed
