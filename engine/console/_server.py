"""The console server: hypercorn's trio worker serving :class:`ConsoleApp` on ``[console] listen``.

We bind the socket ourselves and hand it to hypercorn's trio worker (``hypercorn.trio.run.worker_serve``,
what ``hypercorn.trio.serve`` calls) so that a port already in use becomes one clear
:class:`engine.StartupError`, and port 0 works (the bound port is read back from the socket).
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import logging
import socket
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from .._bus import EventBus
from .._config import ConsoleSettings
from .._errors import StartupError
from .._registry import HttpRouteRegistry
from ..abc import EngineAPI, Service
from ._app import ConsoleApp
from ._auth import Authenticator, ensure_first_admin
from ._logs import RingLogHandler
from ._tls import ensure_certificate

log = logging.getLogger("centralita.console")

#: A peer that stops reading while we send (a stalled events client) is cut off by the kernel after this.
DEFAULT_SEND_TIMEOUT = 30.0


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"``, ``"[::1]:8080"``, ``"0.0.0.0:0"`` -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise StartupError(f"console: listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConsoleServer(Service):
    name = "console"

    def __init__(
        self,
        engine_api: EngineAPI,
        bus: EventBus,
        store: Any,
        settings: ConsoleSettings,
        routes: HttpRouteRegistry,
        *,
        data_dir: Path,
        ws_buffer: int = 256,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
    ) -> None:
        self.engine_api = engine_api
        self.bus = bus
        self.store = store
        self.settings = settings
        self.routes = routes
        self.data_dir = Path(data_dir)
        self.ws_buffer = ws_buffer
        self.send_timeout = send_timeout
        self.host, self.port = parse_listen(settings.listen)
        self.https = settings.https if settings.https is not None else not is_loopback(self.host)
        self.auth = Authenticator(store)
        self.app: ConsoleApp | None = None
        self.bound_port: int | None = None
        self.tls_fingerprint: str | None = None
        self._listening = False
        #: recent log records for the Logs page (attached to the "centralita" logger while running)
        self.logs = RingLogHandler()

    @property
    def url(self) -> str:
        if self.bound_port is None:
            raise RuntimeError("the console is not listening yet")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.https else 'http'}://{host}:{self.bound_port}"

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        root = logging.getLogger("centralita")
        root.addHandler(self.logs)
        try:
            await self._serve(task_status)
        finally:
            root.removeHandler(self.logs)

    async def _serve(self, task_status: trio.TaskStatus[Any]) -> None:
        await ensure_first_admin(self.store)
        config = HypercornConfig()
        config.include_server_header = False
        config.accesslog = None
        config.errorlog = logging.getLogger("centralita.console.hypercorn")
        config.websocket_max_message_size = 64 * 1024
        config.graceful_timeout = 2.0
        config.keep_alive_timeout = 30.0
        if self.https:
            cert, key, self.tls_fingerprint = await trio.to_thread.run_sync(ensure_certificate, self.data_dir, self.host)
            config.certfile, config.keyfile = str(cert), str(key)
        self.app = ConsoleApp(
            self.engine_api, self.bus, self.auth, self.routes, ws_buffer=self.ws_buffer,
            tls_fingerprint=self.tls_fingerprint, logs=self.logs,
        )
        sock = self._bind()
        try:
            self.bound_port = sock.getsockname()[1]
            sockets = Sockets([sock], [], []) if self.https else Sockets([], [sock], [])
            async with trio.open_nursery() as nursery:
                app = wrap_app(self.app, config.wsgi_max_body_size, "asgi")
                await nursery.start(functools.partial(worker_serve, app, config, sockets=sockets))
                self._listening = True
                log.info("console listening on %s", self.url)
                task_status.started()
        finally:
            self._listening = False
            sock.close()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "TCP_USER_TIMEOUT"):
                # inherited by accepted sockets: a client that stops reading is cut off by the kernel
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(self.send_timeout * 1000))
            sock.bind((self.host, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"console: port {self.port} on {self.host} is already in use; stop the program using it or "
                    f'choose another port with [console] listen = "{self.host}:PORT" in the configuration'
                ) from None
            if exc.errno == errno.EACCES:
                raise StartupError(
                    f"console: not allowed to listen on port {self.port} (ports below 1024 need privileges); "
                    "choose another with [console] listen"
                ) from None
            raise StartupError(f"console: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        return sock

    def ready(self) -> bool:
        return self._listening

    def statistics(self) -> dict[str, Any]:
        return self.app.statistics() if self.app else {}
