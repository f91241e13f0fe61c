from __future__ import annotations

import contextlib
import csv
import io
import ssl

import httpx
import pytest
import trio

from engine import EventBus, HttpRouteRegistry, RegistrationError, StartupError
from engine._config import ConsoleSettings
from engine.console import MASTER_CSV_COLUMNS, MIGRATIONS, ConsoleServer
from engine.store import open_store


async def test_agents_queues_interactions_read(console):
    async with await console.bearer("agent") as api:
        assert {a["id"] for a in (await api.get("/api/v1/agents")).json()} == {"alice", "bob"}
        assert (await api.get("/api/v1/queues/support")).json()["waiting"] == 2
        r = await api.get("/api/v1/queues/nope")
        assert r.status_code == 404
        r = await api.get("/api/v1/interactions", params={"state": "offered"})
        assert [i["id"] for i in r.json()] == ["i1"]
        for item in (await api.get("/api/v1/interactions")).json():
            assert {"id", "kind", "state", "from", "to", "queue", "agent"} <= item.keys()
        r = await api.get("/api/v1/interactions", params={"state": "bogus' OR 1=1 --"})
        assert r.status_code == 400


async def test_unknown_id_404_and_wrong_state_409(console):
    async with await console.bearer("supervisor") as api:
        r = await api.post("/api/v1/agents/nobody/state", json={"state": "paused"})
        assert r.status_code == 404
        r = await api.post("/api/v1/agents/bob/state", json={"state": "paused"})
        assert r.status_code == 409 and "already" in r.json()["error"]
        r = await api.post("/api/v1/agents/bob/state", json={"state": "sleeping"})
        assert r.status_code == 400
        r = await api.post("/api/v1/interactions/i2/accept", json={"agent": "alice"})
        assert r.status_code == 409
        r = await api.post("/api/v1/interactions/i1/explode", json={})
        assert r.status_code == 404
        r = await api.delete("/api/v1/agents")
        assert r.status_code == 405


async def test_agent_accepts_own_offer_and_replies_but_not_for_others(tmp_path, make_console):
    async with make_console(tmp_path) as console:
        client, csrf = await console.logged_in("alice", "agent")
        async with contextlib.aclosing(client):
            h = {"x-csrf-token": csrf}
            r = await client.post("/api/v1/interactions/i1/accept", json={"agent": "bob"}, headers=h)
            assert r.status_code == 403
            r = await client.post("/api/v1/interactions/i1/accept", json={}, headers=h)
            assert r.status_code == 200 and r.json()["agent"] == "alice" and r.json()["state"] == "active"
            r = await client.post("/api/v1/interactions/i1/reply", json={"text": 5}, headers=h)
            assert r.status_code == 400
            r = await client.post("/api/v1/interactions/i1/reply", json={"text": "hola <b>"}, headers=h)
            assert r.status_code == 200
            r = await client.post("/api/v1/agents/bob/state", json={"state": "available"}, headers=h)
            assert r.status_code == 403
            r = await client.post("/api/v1/agents/alice/state", json={"state": "paused", "reason": "break"}, headers=h)
            assert r.status_code == 200
        assert console.engine.actions == [("i1", "accept", {"agent": "alice"}), ("i1", "reply", {"text": "hola <b>"})]


@pytest.mark.parametrize(
    "body",
    [
        {"to": {"$ne": 1}},
        {"to": ["+34911"]},
        {"to": 34911},
        {},
        {"to": "+34911", "agent": {"$gt": ""}},
    ],
)
async def test_originate_refuses_wrong_types(console, body):
    async with await console.bearer("supervisor") as api:
        r = await api.post("/api/v1/calls", json=body)
    assert r.status_code == 400, r.text
    assert console.engine.originated == []


async def test_originate_passes_a_valid_request(console):
    async with await console.bearer("supervisor") as api:
        r = await api.post("/api/v1/calls", json={"to": "+34911000000", "agent": "alice"})
    assert r.status_code == 200
    assert console.engine.originated == [{"to": "+34911000000", "agent": "alice"}]


async def test_oversized_body_is_refused_413(console):
    async with await console.bearer("admin") as api:
        r = await api.post("/api/v1/calls", content=b'{"to": "' + b"9" * 200_000 + b'"}',
                           headers={"content-type": "application/json"})
        assert r.status_code == 413
        # also when the client does not announce the length (chunked)
        async def chunks():
            for _ in range(100):
                yield b" " * 10_000
        r = await api.post("/api/v1/calls", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
    assert console.engine.originated == []


async def test_cdr_csv_in_master_csv_order_with_formulas_neutralised(console):
    row = {c: "" for c in MASTER_CSV_COLUMNS}
    row.update(src="+34911222333", dst="100", clid='=HYPERLINK("http://evil","x")', start=1767261600.0, answer=0.0,
               duration=30, billsec=20, disposition="ANSWERED", uniqueid="i9", userfield="@SUM(A1)", _t=100.0)
    console.engine.cdr_rows = [row]
    async with await console.bearer("supervisor") as api:
        r = await api.get("/api/v1/cdr", headers={"accept": "text/csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        cells = next(csv.reader(io.StringIO(r.text)))
        assert len(cells) == len(MASTER_CSV_COLUMNS)
        by_name = dict(zip(MASTER_CSV_COLUMNS, cells, strict=True))
        assert by_name["src"] == "+34911222333"
        assert by_name["uniqueid"] == "i9" and by_name["disposition"] == "ANSWERED" and by_name["billsec"] == "20"
        assert by_name["userfield"] == "'@SUM(A1)"
        assert by_name["start"] == "2026-01-01 10:00:00" and by_name["answer"] == ""  # Master.csv time format (UTC)
        assert by_name["clid"] == '\'=HYPERLINK("http://evil","x")'
        assert MASTER_CSV_COLUMNS[:3] == ("accountcode", "src", "dst") and MASTER_CSV_COLUMNS[-1] == "userfield"
        assert (await api.get("/api/v1/cdr", params={"since": "200"})).json() == []
        assert len((await api.get("/api/v1/cdr", params={"since": "1970-01-01T00:00:00Z"})).json()) == 1
        assert (await api.get("/api/v1/cdr", params={"since": "yesterday"})).status_code == 400


async def _plugin_app(scope, receive, send):
    principal = scope.get("centralita.principal")
    body = f"{scope['path']} {scope['root_path']} {principal.name if principal else '-'}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def test_plugin_routes_mounted_public_or_authenticated(tmp_path, make_console):
    routes = HttpRouteRegistry()
    routes.add("/chat/", _plugin_app, public=True)
    routes.add("/crm", _plugin_app)
    async with make_console(tmp_path, routes=routes) as console:
        async with console.client() as anonymous:
            r = await anonymous.get("/chat/widget.js")
            assert r.status_code == 200 and r.text == "/chat/widget.js /chat -"
            assert (await anonymous.get("/crm/contacts")).status_code == 401
        async with await console.bearer("agent") as api:
            r = await api.get("/crm/contacts")
            assert r.status_code == 200 and r.text.endswith("t-agent")


async def test_port_in_use_is_a_clear_startup_error(tmp_path, fake_engine):
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with open_store(tmp_path / "c.db", MIGRATIONS) as store:
            server = ConsoleServer(fake_engine, EventBus(), store, ConsoleSettings(listen=f"127.0.0.1:{port}"),
                                   HttpRouteRegistry(), data_dir=tmp_path)
            with pytest.raises(StartupError, match=rf"port {port} .*in use.*\[console\] listen"):
                await server.run()


async def test_https_with_self_signed_certificate(tmp_path, make_console):
    async with make_console(tmp_path, https=True) as console:
        assert console.url.startswith("https://")
        fp = console.server.tls_fingerprint
        assert fp and len(fp.split(":")) == 32
        assert (tmp_path / "tls" / "console.crt").exists()
        async with console.client(verify=ssl.create_default_context(cafile=str(tmp_path / "tls" / "console.crt"))) as client:
            assert (await client.get("/livez")).status_code == 200
            password = console.admin_password
            r = await client.post("/api/v1/login", json={"user": "admin", "password": password})
            assert "Secure" in r.headers["set-cookie"]


async def test_agent_may_not_act_on_someone_elses_interaction(console):
    async with await console.bearer("agent") as api:  # token name t-agent: not bob
        r = await api.post("/api/v1/interactions/i2/reply", json={"text": "hi"})
        assert r.status_code == 403
        r = await api.post("/api/v1/interactions/i2/hangup", json={})
        assert r.status_code == 403
        r = await api.post("/api/v1/interactions/nope/hangup", json={})
        assert r.status_code == 404
    async with await console.bearer("supervisor") as api:
        r = await api.post("/api/v1/interactions/i2/hangup", json={})
        assert r.status_code == 200
    assert console.engine.actions == [("i2", "hangup", {})]


async def _crashing_app(scope, receive, send):
    if scope["path"].endswith("/late"):
        await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("plugin bug")


async def test_a_crashing_plugin_route_is_a_500_and_the_server_keeps_serving(tmp_path, make_console):
    routes = HttpRouteRegistry()
    routes.add("/buggy", _crashing_app, public=True)
    async with make_console(tmp_path, routes=routes) as console:
        async with console.client() as client:
            r = await client.get("/buggy/early")
            assert r.status_code == 500 and "plugin bug" not in r.text
            try:
                await client.get("/buggy/late")
            except httpx.HTTPError:
                pass  # the plugin broke its own response; the client may see a cut connection
            assert (await client.get("/livez")).status_code == 200


async def test_refused_input_is_logged_escaped(console, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="centralita.console")
    async with await console.bearer("supervisor") as api:
        r = await api.post("/api/v1/calls", json={"to": {"$ne": 1}})
        assert r.status_code == 400
    refused = [rec.getMessage() for rec in caplog.records if "refused" in rec.getMessage()]
    assert refused and "/api/v1/calls" in refused[-1] and "'to' must be" in refused[-1] and "got an object" in refused[-1]


async def test_a_plugin_cannot_shadow_the_engine_routes(tmp_path, make_console):
    routes = HttpRouteRegistry()
    with pytest.raises(RegistrationError):
        routes.add("/api/v1/", _plugin_app, public=True)  # refused when registered...
    routes.add("/api/", _plugin_app, public=True)  # ...and a wider prefix still cannot take the API's paths
    async with make_console(tmp_path, routes=routes) as console:
        async with console.client() as anonymous:
            assert (await anonymous.get("/api/v1/agents")).status_code == 401  # still the engine's, still guarded
            r = await anonymous.get("/api/plugin-thing")
            assert r.status_code == 200 and r.text.startswith("/api/plugin-thing")


async def test_reports_and_staffing_with_validated_parameters(console):
    async with await console.bearer("supervisor") as api:
        r = await api.get("/api/v1/reports", params={"since": "2026-11-25T00:00:00Z", "interval": "900"})
        assert r.status_code == 200 and r.json()["queues"]["support"]["service_level"] == 0.75
        assert console.engine.report_calls[-1][0] == 1795564800.0 and console.engine.report_calls[-1][2] == 900.0
        assert (await api.get("/api/v1/reports", params={"interval": "0"})).status_code == 400
        assert (await api.get("/api/v1/reports", params={"interval": "nan"})).status_code == 400
        assert (await api.get("/api/v1/staffing", params={"days": "28", "target": "0.9"})).json()[0]["agents"] == 4
        assert (await api.get("/api/v1/staffing", params={"target": "2"})).status_code == 400
    async with await console.bearer("agent") as api:
        assert (await api.get("/api/v1/reports")).status_code == 403
