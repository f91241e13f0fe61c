"""SIP over UDP and TCP on trio: sockets in, bytes out, nothing else.

The transports know nothing about SIP beyond framing. Every complete message is handed to a synchronous
``deliver(data, peer)`` callback (the sans-IO dispatcher); replies go out with :meth:`send_nowait`, which
never blocks:

- UDP: one socket per listen address; a datagram is one message. Sending is a non-blocking ``sendto``
  on the very socket the request arrived on (symmetric response routing, RFC 3581); a full kernel
  buffer drops the datagram, which SIP's retransmissions are designed for.
- TCP: a listener per address and one task per connection, reading into a bounded framer
  (``StreamFramer``: Content-Length framing). A connection is cut when it exceeds the idle timeout,
  takes longer than ``message_timeout`` to complete a message it started (a peer dribbling one byte a
  second), or sends something the framer refuses. Each connection has a bounded outgoing queue and its
  own writer task, so a slow reader never stalls anybody else; a full queue closes that connection.
  Responses go back on the connection the request came in on; requests to a peer we have no
  connection to open one.
"""

from __future__ import annotations

import errno
import itertools
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import trio

from engine import StartupError

from engine._events import safe_text

__all__ = ["ListenAddress", "Peer", "TransportLimits", "SipTransports"]

log = logging.getLogger("centralita.sip.transport")

TransportName = Literal["udp", "tcp"]
#: UDP datagrams handled in a row before the reader lets other tasks run
BURST = 32


@dataclass(frozen=True)
class ListenAddress:
    """``udp:127.0.0.1:5060``; port 0 means "any free port" (the bound one is read back)."""

    transport: TransportName
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        scheme, sep, rest = text.partition(":")
        if not sep or scheme.lower() not in ("udp", "tcp"):
            raise ValueError(f"expected udp:HOST:PORT or tcp:HOST:PORT, got {text!r}")
        host, sep, port = rest.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"expected {scheme}:HOST:PORT with a port 0-65535, got {text!r}")
        return cls(scheme.lower(), host, int(port))  # type: ignore[arg-type]

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


@dataclass(frozen=True)
class Peer:
    """Where a message came from, or where one goes.

    ``local`` is the listen address it arrived on (replies leave from the same socket);
    ``connection`` the TCP connection id (None for UDP, or to let the transport find/open one).
    """

    transport: TransportName
    host: str
    port: int
    local: ListenAddress | None = None
    connection: int | None = None

    @property
    def reliable(self) -> bool:
        return self.transport == "tcp"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


@dataclass(frozen=True)
class TransportLimits:
    max_datagram: int = 65535
    #: TCP: the framer's cap on one message (headers + body)
    max_message: int = 65536
    #: TCP: seconds without a byte before the connection is closed
    idle_timeout: float = 600.0
    #: TCP: seconds a peer may take to finish a message it started (or to send its first message)
    message_timeout: float = 10.0
    #: TCP: seconds to connect to a peer we send to
    connect_timeout: float = 5.0
    max_connections: int = 1024
    max_connections_per_source: int = 32
    #: TCP: messages waiting to be written on one connection before it is considered stuck and closed
    max_pending_writes: int = 256


class Framer(Protocol):
    def feed(self, data: bytes) -> list[bytes]: ...


Deliver = Callable[[bytes, Peer], None]


def _default_framer_factory(limits: TransportLimits) -> Callable[[], Framer]:
    from .sansio import StreamFramer

    return lambda: StreamFramer(max_message=limits.max_message)


def _framing_errors() -> tuple[type[BaseException], ...]:
    try:
        from .sansio import SipPeerError
    except ImportError:  # pragma: no cover - only while the core is being written
        return (ValueError,)
    return (SipPeerError, ValueError)


@dataclass
class _Connection:
    id: int
    stream: trio.SocketStream
    remote: tuple[str, int]
    local: ListenAddress
    outgoing: trio.MemorySendChannel[bytes]
    incoming_writes: trio.MemoryReceiveChannel[bytes]
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)


class _Udp:
    def __init__(self, address: ListenAddress, deliver: Deliver, stats: dict[str, int], limits: TransportLimits) -> None:
        family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        self.raw = socket.socket(family, socket.SOCK_DGRAM)
        self.raw.setblocking(False)
        for size_option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                self.raw.setsockopt(socket.SOL_SOCKET, size_option, 4 * 1024 * 1024)
            except OSError:  # pragma: no cover - the kernel caps it; fine
                pass
        self.raw.bind((address.host, address.port))
        self.address = ListenAddress("udp", address.host, self.raw.getsockname()[1])
        self.sock = trio.socket.from_stdlib_socket(self.raw)
        self._deliver = deliver
        self._stats = stats
        self._limits = limits

    async def serve(self) -> None:
        # Read the socket dry with plain non-blocking calls and wait for readiness only when it is empty:
        # trio's ``recvfrom`` pays two checkpoints per datagram, and SIP datagrams arrive in bursts. After
        # BURST datagrams in a row the loop yields anyway, so a flood cannot starve the other tasks.
        raw, max_datagram, stats, deliver, local = self.raw, self._limits.max_datagram, self._stats, self._deliver, self.address
        wait_readable, checkpoint = trio.lowlevel.wait_readable, trio.lowlevel.checkpoint
        while True:
            for _ in range(BURST):
                try:
                    data, addr = raw.recvfrom(max_datagram)
                except BlockingIOError:
                    await wait_readable(raw)
                    break
                except OSError as exc:
                    # ICMP port-unreachable from an earlier sendto surfaces here on Linux; it is not ours.
                    if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                        continue
                    raise
                stats["udp_received"] += 1
                peer = Peer("udp", addr[0], addr[1], local)
                try:
                    deliver(data, peer)
                except Exception:
                    stats["handler_errors"] += 1
                    log.exception("sip: handling a datagram from %s failed", safe_text(peer))
            else:
                await checkpoint()

    def send_nowait(self, data: bytes, host: str, port: int) -> bool:
        try:
            self.raw.sendto(data, (host, port))
        except OSError:
            self._stats["udp_send_failed"] += 1
            return False
        self._stats["udp_sent"] += 1
        return True

    def close(self) -> None:
        self.sock.close()


class SipTransports:
    """Every listen address of ``[sip] listen``, run as one service."""

    def __init__(
        self,
        listen: list[str] | list[ListenAddress],
        deliver: Deliver,
        *,
        limits: TransportLimits | None = None,
        framer_factory: Callable[[], Framer] | None = None,
    ) -> None:
        self.requested = [a if isinstance(a, ListenAddress) else ListenAddress.parse(a) for a in listen]
        self.limits = limits or TransportLimits()
        self._deliver = deliver
        self._framer_factory = framer_factory
        self._udp: dict[ListenAddress, _Udp] = {}
        self._tcp_listeners: dict[ListenAddress, trio.SocketListener] = {}
        self._connections: dict[int, _Connection] = {}
        self._by_remote: dict[tuple[str, int], int] = {}
        self._per_source: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None
        self._connecting: dict[tuple[str, int], list[bytes]] = {}
        self._framing_errors = _framing_errors()
        #: the addresses actually bound, in the order of ``listen`` (port 0 resolved)
        self.bound: list[ListenAddress] = []
        self._stats: dict[str, int] = {
            "udp_received": 0,
            "udp_sent": 0,
            "udp_send_failed": 0,
            "tcp_accepted": 0,
            "tcp_refused": 0,
            "tcp_received": 0,
            "tcp_sent": 0,
            "tcp_closed_idle": 0,
            "tcp_closed_slow_message": 0,
            "tcp_closed_framing": 0,
            "tcp_closed_backlog": 0,
            "tcp_connect_failed": 0,
            "handler_errors": 0,
        }

    # ---------------------------------------------------------------------------------------- lifecycle

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        if self._framer_factory is None:
            self._framer_factory = _default_framer_factory(self.limits)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for address in self.requested:
                    try:
                        if address.transport == "udp":
                            udp = _Udp(address, self._deliver, self._stats, self.limits)
                        else:
                            listeners = await trio.open_tcp_listeners(address.port, host=address.host, backlog=256)
                    except OSError as exc:
                        raise StartupError(
                            f"SIP cannot listen on {address} ({exc.strerror or exc}): another program may use that "
                            "port; stop it or change [sip] listen in the configuration"
                        ) from None
                    if address.transport == "udp":
                        self._udp[udp.address] = udp
                        self.bound.append(udp.address)
                        nursery.start_soon(udp.serve)
                    else:
                        listener = listeners[0]
                        bound = ListenAddress("tcp", address.host, listener.socket.getsockname()[1])
                        self._tcp_listeners[bound] = listener
                        self.bound.append(bound)
                        nursery.start_soon(self._accept_loop, listener, bound)
                    log.info("sip listening on %s", self.bound[-1])
                task_status.started(list(self.bound))
                await trio.sleep_forever()
        finally:
            self._nursery = None
            await self.aclose()

    async def aclose(self) -> None:
        for udp in self._udp.values():
            udp.close()
        for listener in self._tcp_listeners.values():
            await trio.aclose_forcefully(listener)
        for conn in list(self._connections.values()):
            conn.cancel.cancel()
            await trio.aclose_forcefully(conn.stream)
        self._connections.clear()
        self._by_remote.clear()

    def statistics(self) -> dict[str, int]:
        return {**self._stats, "tcp_connections": len(self._connections)}

    # -------------------------------------------------------------------------------------------- send

    def address_for(self, transport: TransportName) -> ListenAddress | None:
        """The first bound address of ``transport`` (what we put in Via/Contact of our requests)."""
        return next((a for a in self.bound if a.transport == transport), None)

    def send_nowait(self, data: bytes, peer: Peer) -> bool:
        """Send one message to ``peer`` without blocking; False when it had to be dropped."""
        if peer.transport == "udp":
            udp = self._udp.get(peer.local) if peer.local is not None else None
            if udp is None:
                udp = next(iter(self._udp.values()), None)
            if udp is None:
                return False
            return udp.send_nowait(data, peer.host, peer.port)
        conn_id = peer.connection
        conn = self._connections.get(conn_id) if conn_id is not None else None
        if conn is None:
            conn = self._connections.get(self._by_remote.get((peer.host, peer.port), -1))
        if conn is not None:
            return self._queue(conn, data)
        return self._connect_and_send(data, peer)

    def _queue(self, conn: _Connection, data: bytes) -> bool:
        try:
            conn.outgoing.send_nowait(data)
        except trio.WouldBlock:
            self._stats["tcp_closed_backlog"] += 1
            log.warning("sip: closing tcp connection to %s: it is not reading what we send", safe_text(conn.remote))
            conn.cancel.cancel()
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    def _connect_and_send(self, data: bytes, peer: Peer) -> bool:
        key = (peer.host, peer.port)
        if self._nursery is None:
            return False
        pending = self._connecting.get(key)
        if pending is not None:
            if len(pending) >= self.limits.max_pending_writes:
                return False
            pending.append(data)
            return True
        self._connecting[key] = [data]
        self._nursery.start_soon(self._connect, key)
        return True

    async def _connect(self, key: tuple[str, int]) -> None:
        local = self.address_for("tcp")
        try:
            with trio.fail_after(self.limits.connect_timeout):
                stream = await trio.open_tcp_stream(*key)
        except (OSError, trio.TooSlowError) as exc:
            self._stats["tcp_connect_failed"] += 1
            log.info("sip: cannot connect to tcp:%s:%d: %s", key[0], key[1], safe_text(exc))
            self._connecting.pop(key, None)
            return
        pending = self._connecting.pop(key, [])
        if local is None:
            local = ListenAddress("tcp", stream.socket.getsockname()[0], stream.socket.getsockname()[1])
        await self._serve_connection(stream, key, local, initial=pending, initiated=True)

    # ------------------------------------------------------------------------------------------ receive

    async def _accept_loop(self, listener: trio.SocketListener, local: ListenAddress) -> None:
        assert self._nursery is not None
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("sip: cannot accept tcp connections: %s; pausing", exc)
                    await trio.sleep(0.1)
                    continue
                raise
            try:
                remote = stream.socket.getpeername()[:2]
            except OSError:
                await trio.aclose_forcefully(stream)
                continue
            if (
                len(self._connections) >= self.limits.max_connections
                or self._per_source.get(remote[0], 0) >= self.limits.max_connections_per_source
            ):
                self._stats["tcp_refused"] += 1
                await trio.aclose_forcefully(stream)
                continue
            self._stats["tcp_accepted"] += 1
            self._nursery.start_soon(self._serve_connection, stream, (remote[0], remote[1]), local)

    async def _serve_connection(
                self,
        stream: trio.SocketStream,
        remote: tuple[str, int],
        local: ListenAddress,
        initial: list[bytes] | None = None,
        initiated: bool = False,
    ) -> None:
        send, receive = trio.open_memory_channel[bytes](self.limits.max_pending_writes)
        conn = _Connection(next(self._ids), stream, remote, local, send, receive)
        self._connections[conn.id] = conn
        self._by_remote[remote] = conn.id
        self._per_source[remote[0]] = self._per_source.get(remote[0], 0) + 1
        for data in initial or ():
            self._queue(conn, data)
        try:
            with conn.cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, conn)
                    await self._reader(conn, initiated)
                    nursery.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self._connections.pop(conn.id, None)
            if self._by_remote.get(remote) == conn.id:
                del self._by_remote[remote]
            left = self._per_source.get(remote[0], 1) - 1
            if left > 0:
                self._per_source[remote[0]] = left
            else:
                self._per_source.pop(remote[0], None)
            send.close()
            await trio.aclose_forcefully(stream)

    async def _writer(self, conn: _Connection) -> None:
        async for data in conn.incoming_writes:
            await conn.stream.send_all(data)
            self._stats["tcp_sent"] += 1

    async def _reader(self, conn: _Connection, initiated: bool) -> None:
        assert self._framer_factory is not None
        framer = self._framer_factory()
        peer = Peer("tcp", conn.remote[0], conn.remote[1], conn.local, conn.id)
        # A connection must produce a complete message soon after it starts one (and soon after it is
        # opened): otherwise it is a dribbler holding a slot. Between messages only the idle timeout runs.
        partial_since: float | None = None if initiated else trio.current_time()
        while True:
            if partial_since is not None:
                deadline = partial_since + self.limits.message_timeout
                reason = "tcp_closed_slow_message"
            else:
                deadline = trio.current_time() + self.limits.idle_timeout
                reason = "tcp_closed_idle"
            data: bytes | None = None
            with trio.move_on_at(deadline):
                data = await conn.stream.receive_some(65536)
            if data is None:
                self._stats[reason] += 1
                log.info("sip: closing tcp connection from %s (%s)", safe_text(peer), reason[11:].replace("_", " "))
                return
            if not data:
                return
            try:
                messages = framer.feed(data)
            except self._framing_errors as exc:
                self._stats["tcp_closed_framing"] += 1
                log.info("sip: closing tcp connection from %s: %s", safe_text(peer), safe_text(exc))
                return
            take_pings = getattr(framer, "take_pings", None)
            if take_pings is not None:
                for _ in range(min(take_pings(), 4)):
                    # RFC 5626 keep-alive: a double-CRLF ping is answered with a CRLF pong.
                    self._queue(conn, b"\r\n")
            if messages:
                partial_since = None
            elif partial_since is None and data.strip(b"\r\n"):
                partial_since = trio.current_time()
            for message in messages:
                self._stats["tcp_received"] += 1
                try:
                    self._deliver(message, peer)
                except Exception:
                    self._stats["handler_errors"] += 1
                    log.exception("sip: handling a message from %s failed", safe_text(peer))
