"""The media engine: the trio shell around the sans-IO media parts.

Two tasks serve every call, however many there are (issue #4's numbers: one task per socket awaiting
``recv`` tops out near 200 calls per core):

* the **receive task** waits on one ``epoll`` object that holds every RTP/RTCP socket
  (``trio.lowlevel.wait_readable`` on the epoll's own fd), then takes one datagram from each ready
  socket per round with plain non-blocking ``recv`` (at most ``burst`` datagrams per wake-up, so a
  flood on one port cannot starve the others nor the clock). Relayed packets are forwarded right there.
* the **media clock** wakes every 20 ms and, for each endpoint that needs it, pulls the jitter buffer,
  decodes, runs detectors, mixes conferences, writes recordings and sends played audio; RTCP reports
  go out every ``rtcp_interval`` seconds.

Linux-only (epoll), like the appliances it runs on.
"""

from __future__ import annotations

import errno
import itertools
import logging
import math
import select
import socket
from collections.abc import Callable
from typing import Any

import trio

from ..abc import Service
from ._audio import FRAME_SECONDS
from ._bridge import Bridge, ConferenceRoom, record_tick
from ._dtmf import DtmfEvent, DtmfMethod
from ._endpoint import RtpEndpoint
from ._errors import MediaUsageError
from ._g711 import transcode_table
from ._receive import ReceiveBuffer, receive_round
from ._recording import Recording

__all__ = ["MediaEngine"]

log = logging.getLogger("centralita.media")

Address = tuple[str, int]
_HOUSEKEEPING_SECONDS = 0.5


class MediaEngine(Service):
    """Owns the RTP ports and the two media tasks. Start with ``await nursery.start(engine.run)``.

    A :class:`engine.abc.Service`: ``aclose()`` (also run when ``run`` ends) releases every endpoint.
    """

    name = "media"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port_range: tuple[int, int] | None = None,
        rtcp: bool = True,
        rtcp_interval: float = 5.0,
        jitter: tuple[float, float] = (0.02, 0.2),
        burst: int = 256,
        receive_buffer: int = 1 << 18,
        on_recording_alarm: Callable[[Recording, OSError], None] | None = None,
    ) -> None:
        if port_range is not None:
            low, high = port_range
            if not (1024 <= low < high <= 65535):
                raise MediaUsageError(f"bad RTP port range {port_range!r}: need 1024 <= low < high <= 65535")
        self.host = host
        self.port_range = port_range
        self.rtcp = rtcp
        self.rtcp_interval = rtcp_interval
        self.jitter = jitter
        self.burst = burst
        self.receive_buffer = receive_buffer
        self.on_recording_alarm = on_recording_alarm
        self._epoll: select.epoll | None = None
        self._by_fd: dict[int, tuple[RtpEndpoint, bool, socket.socket]] = {}
        self._endpoints: set[RtpEndpoint] = set()
        self._clocked: set[RtpEndpoint] = set()
        self._bridges: set[Bridge] = set()
        self._recording_bridges: set[Bridge] = set()
        self._rooms: set[ConferenceRoom] = set()
        self._names = itertools.count(1)
        self._next_port = port_range[0] + (port_range[0] & 1) if port_range else 0
        self._ready = False
        self._ticks = 0
        self._clock_wakeup = trio.Event()
        # counters
        self.datagrams = self.passes = self.receive_errors = self.send_errors = 0
        self.dtmf_events = self.recording_alarms = self.callback_errors = 0

    # -- lifecycle ----------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._epoll = select.epoll()
        for fd in self._by_fd:
            self._epoll.register(fd, select.EPOLLIN)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._serve_receive)
                nursery.start_soon(self._serve_clock)
                self._ready = True
                task_status.started()
        finally:
            self._ready = False
            await self.aclose()

    async def aclose(self) -> None:
        for endpoint in list(self._endpoints):
            self.release(endpoint)
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None

    def ready(self) -> bool:
        return self._ready

    # -- endpoints ---------------------------------------------------------------------------------

    def allocate(
        self,
        *,
        codec: str = "PCMU",
        payload_type: int | None = None,
        telephone_event: int | None = 101,
        dtmf: DtmfMethod | str = DtmfMethod.AUTO,
        remote: Address | None = None,
        name: str | None = None,
        on_dtmf: Callable[[RtpEndpoint, DtmfEvent], None] | None = None,
    ) -> RtpEndpoint:
        """A new endpoint on a free local port (RTP even, RTCP the next odd one when a range is set).

        ``endpoint.local_address`` is what goes into the SDP; ``remote`` (or a later
        ``endpoint.set_remote``) is the peer's address from the other side's SDP.
        """
        rtp_sock, rtcp_sock = self._bind_pair()
        try:
            endpoint = RtpEndpoint(
                self, rtp_sock, rtcp_sock, codec=codec, payload_type=payload_type,
                telephone_event=telephone_event, dtmf=DtmfMethod(dtmf), remote=None,
                name=name or f"rtp-{next(self._names)}", jitter=self.jitter, on_dtmf=on_dtmf,
            )
        except BaseException:
            rtp_sock.close()
            if rtcp_sock is not None:
                rtcp_sock.close()
            raise
        if remote is not None:
            endpoint.set_remote(remote)
        self._endpoints.add(endpoint)
        for sock, is_rtcp in ((rtp_sock, False), (rtcp_sock, True)):
            if sock is None:
                continue
            self._by_fd[sock.fileno()] = (endpoint, is_rtcp, sock)
            if self._epoll is not None:
                self._epoll.register(sock.fileno(), select.EPOLLIN)
        self._clocked.add(endpoint)
        self._wake(endpoint)
        return endpoint

    def _socket(self, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
            except OSError:
                pass
            sock.bind((self.host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def _bind_pair(self) -> tuple[socket.socket, socket.socket | None]:
        if self.port_range is None:
            rtp = self._socket(0)
            try:
                return rtp, self._socket(0) if self.rtcp else None
            except BaseException:
                rtp.close()
                raise
        low, high = self.port_range
        first = low + (low & 1)
        slots = max(1, (high - first) // 2 + 1)
        for _ in range(slots):
            port = self._next_port
            self._next_port = port + 2 if port + 3 <= high else first
            if port + (1 if self.rtcp else 0) > high:
                continue
            try:
                rtp = self._socket(port)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            if not self.rtcp:
                return rtp, None
            try:
                return rtp, self._socket(port + 1)
            except OSError as exc:
                rtp.close()
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
        raise MediaUsageError(f"no free RTP port pair in {low}-{high}")

    def release(self, endpoint: RtpEndpoint) -> None:
        """Close an endpoint's sockets and take it out of any bridge or conference (idempotent)."""
        if endpoint.closed:
            return
        endpoint.closed = True
        if endpoint.bridge is not None:
            endpoint.bridge.close()
        for sock in (endpoint._rtp, endpoint._rtcp):
            if sock is None:
                continue
            fd = sock.fileno()
            if fd >= 0:
                self._by_fd.pop(fd, None)
                if self._epoll is not None:
                    try:
                        self._epoll.unregister(fd)
                    except (OSError, ValueError):
                        pass
            sock.close()
        self._endpoints.discard(endpoint)
        self._clocked.discard(endpoint)

    # -- bridging ----------------------------------------------------------------------------------

    def bridge(self, caller: RtpEndpoint, agent: RtpEndpoint) -> Bridge:
        """Connect two legs. Same-law or µ-law/A-law legs are relayed without decoding."""
        if caller is agent:
            raise MediaUsageError("cannot bridge an endpoint to itself")
        for endpoint in (caller, agent):
            if endpoint.closed:
                raise MediaUsageError(f"{endpoint.name} is released")
            if endpoint.bridge is not None:
                raise MediaUsageError(f"{endpoint.name} is already bridged")
        bridge = Bridge(self, caller, agent)
        caller.bridge = agent.bridge = bridge
        self._bridges.add(bridge)
        self._link(bridge)
        return bridge

    def _link(self, bridge: Bridge) -> None:
        a, b = bridge.caller, bridge.agent
        for src, dst in ((a, b), (b, a)):
            src._relay_to = dst
            dst._relay_src = None
            dst._translate = transcode_table(src.codec, dst.codec)
            src.jitter.reset()
            src.play(None)
        for endpoint in (a, b):
            self._wake(endpoint)

    def _rebridge(self, endpoint: RtpEndpoint) -> None:
        if endpoint.bridge is not None:
            self._link(endpoint.bridge)

    def unbridge(self, bridge: Bridge | None) -> None:
        if bridge is None or bridge not in self._bridges:
            return
        self._bridges.discard(bridge)
        bridge.stop_recording()
        for endpoint in (bridge.caller, bridge.agent):
            endpoint._relay_to = None
            endpoint._translate = None
            endpoint.bridge = None
            if not endpoint.closed:
                self._clocked.add(endpoint)
        self._clock_wakeup.set()

    def conference(self) -> ConferenceRoom:
        room = ConferenceRoom(self)
        self._rooms.add(room)
        self._clock_wakeup.set()  # a room of devices only (no RTP endpoint) must start the clock too
        return room

    def _wake(self, endpoint: RtpEndpoint) -> None:
        if not endpoint.closed and endpoint.needs_clock:
            self._clocked.add(endpoint)
        self._clock_wakeup.set()

    # -- the two tasks -----------------------------------------------------------------------------

    async def _serve_receive(self) -> None:
        """Wait for any socket, then take one datagram from every ready socket per round.

        One datagram per socket per round (epoll is level-triggered, so a socket with more waiting
        shows up again next round) means no trailing recv that fails with EAGAIN: that exception and
        syscall per socket per wake-up used to cost more than the packet itself. It also makes a flood
        on one port fair game: it gets one datagram per round like everyone else. After ``burst``
        datagrams we yield to the other tasks even if more is waiting. The datagrams themselves are
        handled by ``receive_round`` (``_receive.py``), which relays the usual packet in place.
        """
        assert self._epoll is not None
        poll = self._epoll.poll
        epoll_fd = self._epoll.fileno()
        by_fd = self._by_fd
        budget = self.burst
        buffer = ReceiveBuffer()
        while True:
            await trio.lowlevel.wait_readable(epoll_fd)
            self.passes += 1
            handled = 0
            while handled < budget:
                # maxevents = what is left of the budget: sockets the kernel did not report stay at the
                # head of its ready list, so under overload every socket still gets its turn.
                events = poll(0, budget - handled)
                if not events:
                    break
                handled += len(events)
                datagrams, receive_errors, send_errors = receive_round(by_fd, events, trio.current_time(), buffer)
                self.datagrams += datagrams
                self.receive_errors += receive_errors
                self.send_errors += send_errors

    async def _serve_clock(self) -> None:
        next_tick = trio.current_time()
        while True:
            if not (self._clocked or self._recording_bridges or self._rooms):
                # Only pure relays (or nothing): no 20 ms work, but RTCP and lost DTMF ends still
                # need a look now and then.
                self._clock_wakeup = trio.Event()
                with trio.move_on_after(_HOUSEKEEPING_SECONDS if self._endpoints else math.inf):
                    await self._clock_wakeup.wait()
                now = trio.current_time()
                self._housekeeping(now)
                next_tick = now
                continue
            next_tick += FRAME_SECONDS
            await trio.sleep_until(next_tick)
            now = trio.current_time()
            if now - next_tick > 0.2:
                next_tick = now  # we were stalled: do not burst-send to catch up
            self.tick(now)

    def tick(self, now: float) -> None:
        """One 20 ms step of everything clocked (public so tests can drive it on a virtual clock)."""
        clocked = [e for e in self._clocked if not e.closed]
        for endpoint in clocked:
            try:
                endpoint._timers(now)
                if endpoint._relay_to is None:
                    endpoint._tick_in(now)
            except Exception:
                self._plugin_failed(f"audio consumer of {endpoint.name}")
                endpoint.sinks.clear()
        for room in list(self._rooms):
            try:
                room._tick()
            except Exception:
                self._plugin_failed("conference member")
                room.close()
        record_tick(list(self._recording_bridges))
        for endpoint in clocked:
            try:
                endpoint._tick_out(now)
            except Exception:
                self._plugin_failed(f"audio source of {endpoint.name}")
                endpoint.play(None)
            if not endpoint.needs_clock:
                self._clocked.discard(endpoint)
        self._ticks += 1
        if self._ticks % round(_HOUSEKEEPING_SECONDS / FRAME_SECONDS) == 0:
            self._housekeeping(now)

    def _housekeeping(self, now: float) -> None:
        """RTCP reports when due, and lost-end timers of relayed telephone events."""
        for endpoint in list(self._endpoints):
            if now >= endpoint.next_rtcp:
                if endpoint.next_rtcp:
                    endpoint._send_rtcp(now)
                endpoint.next_rtcp = now + self.rtcp_interval
            if endpoint._relay_to is not None and endpoint._dtmf_rx.next_timer() is not None:
                endpoint._timers(now)

    def _plugin_failed(self, what: str) -> None:
        """A Source/Sink someone plugged in raised: cut it off, keep every other call going."""
        self.callback_errors += 1
        log.exception("%s failed and was disconnected", what)

    # -- reporting ---------------------------------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        """Counters for ``/api/v1/status`` and ``/metrics`` (totals over the live endpoints)."""
        totals = dict.fromkeys(("packets_in", "packets_out", "relayed", "malformed", "wrong_payload_type",
                                "rtcp_in", "rtcp_malformed"), 0)
        for endpoint in self._endpoints:
            for key in totals:
                totals[key] += getattr(endpoint, key)
        return {
            **totals,
            "endpoints": len(self._endpoints),
            "bridges": len(self._bridges),
            "recording": len(self._recording_bridges),
            "conferences": len(self._rooms),
            "datagrams": self.datagrams,
            "receive_passes": self.passes,
            "receive_errors": self.receive_errors,
            "send_errors": self.send_errors,
            "dtmf_events": self.dtmf_events,
            "recording_alarms": self.recording_alarms,
            "callback_errors": self.callback_errors,
        }

    @property
    def endpoints(self) -> frozenset[RtpEndpoint]:
        return frozenset(self._endpoints)
