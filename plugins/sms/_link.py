"""The SMPP link: a trio shell around :class:`EsmeSession` that connects, binds, keeps the link
alive, reconnects with backoff, and turns submit_sm/submit_sm_resp into an awaitable call."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import trio

from engine.messaging import DeliveryError

from ._pdu import Pdu, Status
from ._session import BindRefused, Bound, Closed, EsmeSession, PeerViolation, Received, State, SubmitDone

log = logging.getLogger("centralita.sms.smpp")


@dataclass(frozen=True)
class SmppUrl:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str

    @classmethod
    def parse(cls, url: str) -> SmppUrl:
        parts = urlsplit(url)
        if parts.scheme != "smpp":
            raise ValueError(f"expected smpp://system_id:password@host:port, got {url.split(':', 1)[0]!r}")
        return cls(parts.hostname or "127.0.0.1", parts.port or 2775, unquote(parts.username or ""),
                   unquote(parts.password or ""), unquote(parts.path.lstrip("/")))


#: ``await handler(pdu, ack)``: called for every deliver_sm; call ``ack(status)`` once it is stored.
DeliverHandler = Callable[[Pdu, Callable[[int], None]], Awaitable[None]]


class SmppLink:
    def __init__(self, url: SmppUrl, on_deliver: DeliverHandler, *, enquire_interval: float = 30.0,
                 response_timeout: float = 10.0, reconnect_backoff: float = 1.0, reconnect_backoff_max: float = 60.0,
                 clock: Callable[[], float] = trio.current_time) -> None:
        self.url = url
        self.on_deliver = on_deliver
        self.enquire_interval = enquire_interval
        self.response_timeout = response_timeout
        self.reconnect_backoff = reconnect_backoff
        self.reconnect_backoff_max = reconnect_backoff_max
        self.clock = clock
        self.session: EsmeSession | None = None
        self.bound = trio.Event()
        self._stream: trio.SocketStream | None = None
        self._send_lock = trio.Lock()
        self._waiters: dict[int, tuple[trio.Event, list[SubmitDone]]] = {}
        self._kick = trio.Event()
        self.connects = 0
        self.violations = 0
        self.last_error = ""
        self.on_bound: Callable[[], None] | None = None
        self._stopping = trio.Event()

    @property
    def is_bound(self) -> bool:
        return self.session is not None and self.session.state is State.BOUND

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        backoff = self.reconnect_backoff
        while not self._stopping.is_set():
            connects_before = self.connects
            try:
                await self._connect_and_serve()
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                self._link_down()
            if self.connects != connects_before:
                backoff = self.reconnect_backoff  # it was bound: start the backoff over
            if self._stopping.is_set():
                break
            log.warning("SMPP %s:%d down (%s); reconnecting in %.1fs", self.url.host, self.url.port, self.last_error, backoff)
            with trio.move_on_after(backoff):
                await self._stopping.wait()
            backoff = min(self.reconnect_backoff_max, backoff * 2)

    def _link_down(self) -> None:
        for event, _ in self._waiters.values():
            event.set()  # waiters see no result: the link went down under them
        self._waiters.clear()
        self.bound = trio.Event() if self.bound.is_set() else self.bound
        self.session = None
        if self._stream is not None:
            stream, self._stream = self._stream, None
            try:
                stream.socket.close()
            except OSError:
                pass

    async def _connect_and_serve(self) -> None:
        with trio.fail_after(self.response_timeout):
            self._stream = await trio.open_tcp_stream(self.url.host, self.url.port)
        session = EsmeSession(enquire_interval=self.enquire_interval, response_timeout=self.response_timeout)
        self.session = session
        session.bind(self.url.system_id, self.url.password, self.clock(), system_type=self.url.system_type)
        await self._flush()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._timers, session)
            nursery.start_soon(self._unbind_when_stopping, session)
            await self._read(session)
            nursery.cancel_scope.cancel()

    async def _flush(self) -> None:
        session, stream = self.session, self._stream
        if session is None or stream is None:
            return
        async with self._send_lock:
            data = session.data_to_send()
            if data:
                await stream.send_all(data)

    async def _timers(self, session: EsmeSession) -> None:
        while True:
            due = session.next_timer()
            timeout = 3600.0 if due is None else max(0.0, due - self.clock())
            with trio.move_on_after(timeout):
                await self._kick.wait()
            self._kick = trio.Event()
            events = session.handle_timer(self.clock())
            await self._flush()
            if any(isinstance(e, Closed) for e in events):
                self.last_error = next(e.reason for e in events if isinstance(e, Closed))
                raise trio.BrokenResourceError(self.last_error)

    async def _read(self, session: EsmeSession) -> None:
        assert self._stream is not None
        while True:
            data = await self._stream.receive_some(65536)
            if not data:
                session.connection_lost("the SMSC closed the connection")
                self.last_error = "the SMSC closed the connection"
                return
            for event in session.receive_data(data, self.clock()):
                await self._event(session, event)
            await self._flush()
            self._kick.set()
            if session.state is State.CLOSED:
                return

    async def _event(self, session: EsmeSession, event: Any) -> None:
        if isinstance(event, Bound):
            self.connects += 1
            log.info("SMPP bound to %s:%d (system_id %s)", self.url.host, self.url.port, event.system_id)
            self.bound.set()
            if self.on_bound is not None:
                self.on_bound()
        elif isinstance(event, BindRefused):
            self.last_error = f"bind refused with status 0x{event.status:08x} (check system_id/password)"
        elif isinstance(event, SubmitDone):
            waiter = self._waiters.pop(event.sequence, None)
            if waiter is not None:
                waiter[1].append(event)
                waiter[0].set()
        elif isinstance(event, Received):
            def ack(status: int, pdu: Pdu = event.pdu, owner: EsmeSession = session) -> None:
                if self.session is owner:
                    owner.ack(pdu, status)
                    self._kick.set()

            await self.on_deliver(event.pdu, ack)
        elif isinstance(event, PeerViolation):
            self.violations += 1
            log.warning("SMPP peer error: %s", event.reason)
        elif isinstance(event, Closed):
            self.last_error = event.reason

    async def submit(self, params: dict[str, Any], tlvs: dict[int, bytes] | None = None) -> str:
        """submit_sm and wait for its response; returns the SMSC's message_id."""
        session = self.session
        if session is None or session.state is not State.BOUND:
            raise DeliveryError(f"SMPP link not bound ({self.last_error or 'connecting'})")
        sequence = session.submit(params, self.clock(), tlvs)
        done = trio.Event()
        result: list[SubmitDone] = []
        self._waiters[sequence] = (done, result)
        await self._flush()
        self._kick.set()
        with trio.move_on_after(self.response_timeout * 2):
            await done.wait()
        self._waiters.pop(sequence, None)
        if not result:
            raise DeliveryError("SMPP link lost before submit_sm_resp")
        if result[0].status != Status.ROK:
            permanent = result[0].status not in Status.TRANSIENT
            raise DeliveryError(f"SMSC refused submit_sm with status 0x{result[0].status:08x}", permanent=permanent)
        return result[0].message_id

    def stop_nowait(self) -> None:
        """The engine is stopping: unbind politely (SMPP 3.4 §4.2) and do not reconnect."""
        self._stopping.set()

    async def _unbind_when_stopping(self, session: EsmeSession) -> None:
        await self._stopping.wait()
        if session.state is State.BOUND:
            session.unbind(self.clock())
            await self._flush()
            self._kick.set()
