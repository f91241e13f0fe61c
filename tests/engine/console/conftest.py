"""Shared fixtures: a real console server (hypercorn on port 0) over a real store, a small fake engine."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from engine import EventBus, HttpRouteRegistry
from engine._config import ConsoleSettings
from engine.abc import EngineAPI
from engine.console import MIGRATIONS, ConsoleServer, add_token, add_user
from engine.store import open_store


class FakeEngine(EngineAPI):
    """Just enough engine for the console: state a test can set and see changed."""

    def __init__(self) -> None:
        self.is_ready = False
        self.reasons = ["sip (sip) not ready"]
        self.agents: dict[str, dict[str, Any]] = {
            "alice": {"id": "alice", "name": "Alice", "state": "available", "reason": ""},
            "bob": {"id": "bob", "name": "Bob", "state": "paused", "reason": "lunch"},
        }
        self.queues = {"support": {"name": "support", "waiting": 2, "longest_wait": 12.5, "members": {"alice": "available", "bob": "paused"}, "answered": 3, "abandoned": 1}}
        self.interactions: dict[str, dict[str, Any]] = {
            "i1": {"id": "i1", "kind": "chat", "state": "offered", "from": "visitor", "to": "web", "queue": "support", "agent": "alice"},
            "i2": {"id": "i2", "kind": "voice", "state": "active", "from": "+34911", "to": "100", "queue": "support", "agent": "bob"},
        }
        self.actions: list[tuple[str, str, dict[str, Any]]] = []
        self.originated: list[dict[str, Any]] = []
        self.cdr_rows: list[dict[str, Any]] = []
        self.report_calls: list[tuple[Any, ...]] = []

    def status(self) -> dict[str, Any]:
        return {
            "ready": self.is_ready,
            "not_ready": [] if self.is_ready else self.reasons,
            "uptime": 12.0,
            "plugins": [{"name": "sip", "error": None}, {"name": "broken", "error": "ImportError: x"}],
            "services": [{"name": "sip", "ready": self.is_ready, "restarts": 1}],
            "interactions": {"offered": 1, "active": 1},
            "bus": {"published": 7, "dropped": 0},
            "channels": {"sip": {"registrations": 2, "trunks": {"itsp": "registered"}}},
            "devices": {"line1": {"health": "ok", "model": "<b>USR5637</b>", "signal": 17}},
        }

    def ready(self) -> tuple[bool, list[str]]:
        return (self.is_ready, [] if self.is_ready else list(self.reasons))

    def list_agents(self) -> list[dict[str, Any]]:
        return list(self.agents.values())

    def set_agent_state(self, agent: str, state: str, reason: str = "") -> dict[str, Any]:
        record = self.agents[agent]
        if record["state"] == state:
            raise ValueError(f"agent {agent} is already {state}")
        record.update(state=state, reason=reason)
        return record

    def list_queues(self) -> list[dict[str, Any]]:
        return list(self.queues.values())

    def queue_detail(self, name: str) -> dict[str, Any]:
        return self.queues[name]

    def list_interactions(self, state: str | None = None) -> list[dict[str, Any]]:
        return [i for i in self.interactions.values() if state is None or i["state"] == state]

    async def interaction_action(self, interaction: str, action: str, body: Mapping[str, Any]) -> dict[str, Any]:
        record = self.interactions[interaction]
        if action == "accept":
            if record["state"] != "offered":
                raise ValueError(f"interaction {interaction} is {record['state']}, not offered")
            record.update(state="active", agent=body["agent"])
        self.actions.append((interaction, action, dict(body)))
        return record

    async def originate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.originated.append(dict(body))
        return {"id": "o1", "kind": "voice", "state": "new", "to": body["to"]}

    async def report(self, since: float, until: float | None = None, *, interval: float = 1800.0,
                     short_abandon: float = 5.0, fcr_window: float = 7 * 86400.0) -> dict[str, Any]:
        self.report_calls.append((since, until, interval, short_abandon))
        figures = {"offered": 10, "answered": 8, "abandoned": 2, "short_abandoned": 1, "service_level": 0.75,
                   "asa": 12.5, "aht": 200.0, "abandon_rate": 0.1111}
        return {"since": since, "until": until, "queues": {"support": figures}, "agents": {},
                "intervals": [{"start": 1764064800.0, "queue": "support", **figures}]}

    async def staffing(self, *, days: int = 28, target: float = 0.8, threshold: float = 20.0) -> list[dict[str, Any]]:
        return [{"queue": "support", "slot": "09:30", "calls": 12.5, "aht": 180.0, "agents": 4}]

    async def cdr(self, since: float | None = None) -> list[dict[str, Any]]:
        return [r for r in self.cdr_rows if since is None or r["_t"] >= since]


class Console:
    """A running console server plus the handles a test needs."""

    def __init__(self, server: ConsoleServer, engine: FakeEngine, bus: EventBus, store: Any, admin_password: str, tmp: Path) -> None:
        self.server = server
        self.engine = engine
        self.bus = bus
        self.store = store
        self.admin_password = admin_password
        self.tmp = tmp

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, **kwargs)

    async def token(self, role: str, name: str | None = None) -> str:
        return await add_token(self.store, name or f"t-{role}", role)

    async def bearer(self, role: str) -> httpx.AsyncClient:
        return self.client(headers={"authorization": f"Bearer {await self.token(role)}"})

    async def logged_in(self, name: str, role: str, password: str = "correct horse battery") -> tuple[httpx.AsyncClient, str]:
        """A cookie session for a new user who has already changed the one-time password; (client, csrf)."""
        one_time = await add_user(self.store, name, role)
        client = self.client()
        r = await client.post("/api/v1/login", json={"user": name, "password": one_time})
        assert r.status_code == 200, r.text
        r = await client.post("/api/v1/password", json={"current": one_time, "new": password},
                              headers={"x-csrf-token": r.json()["csrf"]})
        assert r.status_code == 200, r.text
        return client, r.json()["csrf"]


@contextlib.asynccontextmanager
async def open_console(tmp_path: Path, **server_kwargs: Any) -> AsyncIterator[Console]:
    engine = FakeEngine()
    bus = EventBus()
    routes = server_kwargs.pop("routes", HttpRouteRegistry())
    listen = server_kwargs.pop("listen", "127.0.0.1:0")
    https = server_kwargs.pop("https", None)
    async with open_store(tmp_path / "centralita.db", MIGRATIONS) as store, trio.open_nursery() as nursery:
        server = ConsoleServer(engine, bus, store, ConsoleSettings(listen=listen, https=https), routes,
                               data_dir=tmp_path, **server_kwargs)
        captured = io.StringIO()
        real_stderr, sys.stderr = sys.stderr, captured
        try:
            await nursery.start(server.run)
        finally:
            sys.stderr = real_stderr
        printed = captured.getvalue()
        password = printed.split("admin one-time password: ", 1)[1].split()[0] if "one-time password" in printed else ""
        yield Console(server, engine, bus, store, password, tmp_path)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    async with open_console(tmp_path) as running:
        yield running


@pytest.fixture
def make_console():
    """``async with make_console(tmp_path, **server_kwargs) as console`` for tests that need options."""
    return open_console


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


class WsClient:
    """A minimal WebSocket client (wsproto over a trio TCP stream), enough to read the events stream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        from wsproto import ConnectionType, WSConnection

        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending: list[Any] = []
        self.status: int | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None

    async def handshake(self, host: str, target: str, headers: list[tuple[str, str]]) -> int:
        from wsproto.events import AcceptConnection, RejectConnection, Request

        await self.stream.send_all(self.ws.send(Request(host=host, target=target, extra_headers=headers)))
        while self.status is None:
            for event in await self._events():
                if isinstance(event, AcceptConnection):
                    self.status = 101
                elif isinstance(event, RejectConnection):
                    self.status = event.status_code
                else:
                    self.pending.append(event)
        return self.status

    async def _events(self) -> list[Any]:
        data = await self.stream.receive_some(65536)
        self.ws.receive_data(data or None)
        return list(self.ws.events())

    async def recv_json(self) -> dict[str, Any] | None:
        """The next message as JSON, or None when the server closed the connection."""
        import json

        from wsproto.events import CloseConnection, TextMessage

        buffered = ""
        while True:
            while self.pending:
                event = self.pending.pop(0)
                if isinstance(event, TextMessage):
                    buffered += event.data
                    if event.message_finished:
                        return json.loads(buffered)
                elif isinstance(event, CloseConnection):
                    self.close_code, self.close_reason = event.code, event.reason
                    return None
            events = await self._events()
            if not events and self.ws.state.name == "CLOSED":
                return None
            self.pending.extend(events)

    async def aclose(self) -> None:
        await self.stream.aclose()


@pytest.fixture
def ws_connect():
    async def connect(console: Console, headers: list[tuple[str, str]], path: str = "/api/v1/events") -> WsClient:
        stream = await trio.open_tcp_stream("127.0.0.1", console.server.bound_port)
        client = WsClient(stream)
        await client.handshake(f"127.0.0.1:{console.server.bound_port}", path, headers)
        return client

    return connect


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch):
    """Real argon2id, with small parameters: the tests check behaviour, not hashing cost."""
    import argon2

    import engine.console._auth as auth_module

    monkeypatch.setattr(auth_module, "_hasher", argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
