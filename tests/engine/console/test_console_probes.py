from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


async def test_livez_always_ok_and_readyz_follows_engine(console):
    async with console.client() as client:
        assert (await client.get("/livez")).status_code == 200
        r = await client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["reasons"] == ["sip (sip) not ready"]
        console.engine.is_ready = True
        r = await client.get("/readyz")
        assert r.status_code == 200 and r.json()["ready"] is True


async def test_metrics_parse_as_prometheus_text(console):
    console.engine.is_ready = True
    async with console.client() as client:
        r = await client.get("/metrics")
    assert r.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert families["centralita_ready"].samples[0].value == 1.0
    loaded = {s.labels["plugin"]: s.value for s in families["centralita_plugin_loaded"].samples}
    assert loaded == {"sip": 1.0, "broken": 0.0}
    assert families["centralita_interactions_offered"].samples[0].value == 1.0
    assert "centralita_console_logins" in families


async def test_server_reports_bound_port_and_url(console):
    assert console.server.bound_port and console.server.bound_port > 0
    assert console.url == f"http://127.0.0.1:{console.server.bound_port}"


async def test_head_request_answers_without_a_body(console):
    async with console.client() as client:
        r = await client.head("/livez")
        assert r.status_code == 200 and r.content == b""
        assert (await client.get("/livez")).status_code == 200  # the connection is still usable
