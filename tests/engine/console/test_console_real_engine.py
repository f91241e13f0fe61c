"""The console in front of the real engine (engine.testing harness), not the fake."""

from __future__ import annotations

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from engine.console import add_token
from engine.testing import open_test_engine

CONFIG = """
[[agents]]
id = "alice"

[[queues]]
name = "support"
members = ["alice"]
"""


async def test_real_engine_serves_probes_metrics_and_api(tmp_path):
    async with open_test_engine(CONFIG, data_dir=tmp_path) as engine:
        url = engine.console.url
        token = await add_token(engine.store, "ops", "admin")
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            assert (await client.get("/livez")).status_code == 200
            with trio.fail_after(30):
                while (await client.get("/readyz")).status_code != 200:
                    await trio.sleep(0.05)
            metrics = {f.name for f in text_string_to_metric_families((await client.get("/metrics")).text)}
            assert "centralita_ready" in metrics
            auth = {"authorization": f"Bearer {token}"}
            status = await client.get("/api/v1/status", headers=auth)
            assert status.status_code == 200 and status.json()["ready"] is True
            agents = (await client.get("/api/v1/agents", headers=auth)).json()
            assert [a["id"] for a in agents] == ["alice"]
            queue = (await client.get("/api/v1/queues/support", headers=auth)).json()
            assert queue["name"] == "support"
            r = await client.post("/api/v1/agents/alice/state", json={"state": "paused", "reason": "break"}, headers=auth)
            assert r.status_code == 200 and r.json()["state"] == "paused"
            assert (await client.get("/api/v1/queues/nope", headers=auth)).status_code == 404
            assert (await client.get("/api/v1/cdr", headers={**auth, "accept": "text/csv"})).status_code == 200
            report = await client.get("/api/v1/reports", headers=auth)
            assert report.status_code == 200 and "queues" in report.json()
            assert (await client.get("/api/v1/staffing", headers=auth)).status_code == 200


async def test_real_engine_pages_render(tmp_path):
    from engine.console import add_user

    async with open_test_engine(CONFIG, data_dir=tmp_path) as engine:
        one_time = await add_user(engine.store, "alice", "admin")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            r = await client.post("/login", data={"user": "alice", "password": one_time})
            assert r.headers["location"] == "/password"
            r = await client.post("/api/v1/password", json={"current": one_time, "new": "a long new password"},
                                  headers={"x-csrf-token": (await client.get("/api/v1/me")).json()["csrf"]})
            assert r.status_code == 200
            for path in ("/", "/wallboard", "/agents", "/queues", "/reports", "/devices", "/plugins", "/logs", "/users", "/desk"):
                page = await client.get(path)
                assert page.status_code == 200, (path, page.text[:500])
            assert "support" in (await client.get("/")).text
