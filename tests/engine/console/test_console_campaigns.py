"""The outbound dialer through the console, on the real engine: a preview campaign's agent sees the lead on
the desk and starts or skips it; supervisors upload leads, pause and resume, and read statistics and
dispositions from the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from engine import InteractionState, hookimpl
from engine.console import add_token, add_user
from engine.console._campaign_api import MAX_LEAD_UPLOAD
from engine.testing import FakeVoiceChannel, open_test_engine

CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"

[[agents]]
id = "bob"
endpoint = "fake:bob"

[[queues]]
name = "outbound"
members = ["alice", "bob"]

[[campaigns]]
name = "survey"
mode = "preview"
agents = ["alice"]
caller_id = "+34910000000"
script = "Hello, this is the <survey> team"
ring_timeout = 15
[campaigns.schedule]
start = "00:00"
end = "23:59"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
timezone = "UTC"

[[campaigns]]
name = "sales"
mode = "progressive"
agents = ["bob"]
caller_id = "+34910000000"
ring_timeout = 15
[campaigns.schedule]
start = "00:00"
end = "23:59"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
timezone = "UTC"
"""


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)


async def wait_for(condition: Any, timeout: float = 30) -> None:
    with trio.fail_after(timeout):
        while not await condition():
            await trio.sleep(0.02)


async def test_preview_lead_is_shown_on_the_desk_and_only_its_agent_starts_or_skips_it(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        supervisor = {"authorization": f"Bearer {await add_token(engine.store, 'sup', 'supervisor')}"}
        alice = {"authorization": f"Bearer {await add_token(engine.store, 'alice', 'agent')}"}
        bob = {"authorization": f"Bearer {await add_token(engine.store, 'bob', 'agent')}"}
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            csv = "name,phone\n<b>Ana</b>,+34600000001\nBea,+34600000002\nBad,12;ATH\n"
            r = await client.post("/api/v1/campaigns/survey/leads", content=csv.encode(), headers=supervisor)
            assert r.status_code == 201, r.text
            assert r.json()["imported"] == 2
            assert [p["line"] for p in r.json()["problems"]] == [4]  # the AT-command text, by its line

            voice.register("fake:alice")
            voice.answering.add("fake:alice")

            async def alice_has_a_preview() -> bool:
                return bool((await client.get("/api/v1/previews", headers=alice)).json())

            await wait_for(alice_has_a_preview)
            [shown] = (await client.get("/api/v1/previews", headers=alice)).json()
            assert shown["campaign"] == "survey" and shown["number"] in ("+34600000001", "+34600000002")
            assert (await client.get("/api/v1/previews", headers=bob)).json() == []

            desk = (await client.get("/desk/live", headers=alice)).text
            assert shown["number"] in desk and "Start call" in desk and "Skip" in desk
            assert "<b>Ana</b>" not in desk and "<survey>" not in desk  # lead fields and script are escaped
            assert "&lt;survey&gt;" in desk

            # bob cannot start (or skip) alice's lead; nothing is dialed
            r = await client.post(f"/api/v1/campaigns/survey/preview/{shown['lead']}/start", headers=bob)
            assert r.status_code == 409
            r = await client.post("/api/v1/campaigns/survey/preview/no-such-lead/start", headers=alice)
            assert r.status_code == 409
            assert voice.dialed == []

            # skip: the other lead is shown, still nothing dialed
            r = await client.post(f"/api/v1/campaigns/survey/preview/{shown['lead']}/skip", headers=alice)
            assert r.status_code == 200 and r.json()["action"] == "skipped"

            async def next_lead() -> bool:
                now = (await client.get("/api/v1/previews", headers=alice)).json()
                return bool(now) and now[0]["lead"] != shown["lead"]

            await wait_for(next_lead)
            [second] = (await client.get("/api/v1/previews", headers=alice)).json()
            assert second["number"] != shown["number"] and voice.dialed == []

            # start from the desk's own form (as the browser posts it): the number is dialed and alice gets the call
            r = await client.post(f"/desk/preview/survey/{second['lead']}/start", headers={**alice, "x-desk-live": "1"})
            assert r.status_code == 204, r.text

            async def alice_on_the_call() -> bool:
                return any(i.agent == "alice" and i.state is InteractionState.ACTIVE for i in engine.interactions.values())

            await wait_for(alice_on_the_call)
            assert voice.dialed == [second["number"]]
            assert "No lead to preview." in (await client.get("/desk/live", headers=alice)).text
            audit = await engine.store.fetchall("SELECT kind, record FROM dialer_audit WHERE campaign = 'survey' ORDER BY seq")
            kinds = [row["kind"] for row in audit]
            assert "skipped" in kinds and kinds.count("dial") == 1


async def test_supervisor_uploads_pauses_resumes_and_reads_statistics(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        sup = {"authorization": f"Bearer {await add_token(engine.store, 'sup', 'supervisor')}"}
        agent = {"authorization": f"Bearer {await add_token(engine.store, 'bob', 'agent')}"}
        campaign = engine.dialer.campaigns["sales"]
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            assert (await client.get("/api/v1/campaigns", headers=agent)).status_code == 403
            assert (await client.post("/api/v1/campaigns/sales/pause", headers=agent)).status_code == 403
            assert (await client.get("/api/v1/campaigns/nope", headers=sup)).status_code == 404

            r = await client.post("/api/v1/campaigns/sales/pause", headers=sup)
            assert r.status_code == 200 and r.json()["state"] == "paused"
            csv = "Nombre,Movil\nAna,600000001\nBea,600000002\nAna otra vez,600000001\n"
            r = await client.post("/api/v1/campaigns/sales/leads?region=ES&map=Nombre=name,Movil=phone",
                                  content=csv.encode(), headers=sup)
            assert r.status_code == 201, r.text
            assert r.json()["imported"] == 2 and r.json()["duplicates"] == 1
            assert r.json()["problems"][0]["line"] == 4

            voice.register("fake:bob")
            voice.answering.add("fake:bob")
            passes = campaign.passes
            with trio.fail_after(30):  # several full passes with bob free and leads waiting: paused dials nobody
                while campaign.passes < passes + 5 or "bob" not in campaign.ready_agents:
                    await trio.sleep(0.01)
            assert voice.dialed == []
            listed = {c["name"]: c for c in (await client.get("/api/v1/campaigns", headers=sup)).json()}
            assert listed["sales"]["state"] == "paused" and listed["sales"]["hopper"] == 2
            assert listed["survey"]["state"] == "running"

            r = await client.post("/api/v1/campaigns/sales/resume", headers=sup)
            assert r.status_code == 200 and r.json()["state"] == "running"

            async def bob_on_a_call() -> Any:
                return next((i for i in engine.interactions.values()
                             if i.agent == "bob" and i.state is InteractionState.ACTIVE), None)

            await wait_for(bob_on_a_call)
            call = await bob_on_a_call()
            assert voice.dialed == ["+34600000001"]
            await engine.interaction_action(call.id, "disposition", {"disposition": "sale"})
            await engine.interaction_action(call.id, "hangup", {})

            async def disposition_recorded() -> bool:
                r = await client.get("/api/v1/campaigns/sales/dispositions", headers=sup)
                return r.json()["counts"] == {"sale": 1}

            await wait_for(disposition_recorded)
            assert "sale" in (await client.get("/api/v1/campaigns/sales/dispositions", headers=sup)).json()["codes"]
            sales = (await client.get("/api/v1/campaigns/sales", headers=sup)).json()
            assert sales["dialed"] >= 1 and sales["answered_live"] >= 1 and sales["connected"] >= 1
            assert sales["abandoned"] == 0
            rules = sales["abandon_rate"]
            assert set(rules) >= {"us-fcc", "uk-ofcom"} and rules["us-fcc"]["applies"] and not rules["uk-ofcom"]["applies"]
            assert rules["us-fcc"]["rate"] == 0.0 and rules["us-fcc"]["live_answers"] == sales["answered_live"]
            audit = [r["kind"] for r in await engine.store.fetchall(
                "SELECT kind FROM dialer_audit WHERE campaign = 'sales' ORDER BY seq")]
            assert audit.index("paused") < audit.index("resumed") < audit.index("dial")


async def test_lead_upload_refuses_bad_input_with_the_reason(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        sup = {"authorization": f"Bearer {await add_token(engine.store, 'sup', 'supervisor')}"}
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            r = await client.post("/api/v1/campaigns/sales/leads", content=b"name,email\nAna,a@example.com\n", headers=sup)
            assert r.status_code == 400 and "phone" in r.json()["error"]
            r = await client.post("/api/v1/campaigns/sales/leads?map=Movil", content=b"Movil\n600\n", headers=sup)
            assert r.status_code == 400 and "map" in r.json()["error"]
            r = await client.post("/api/v1/campaigns/sales/leads?region=ESP", content=b"phone\n600\n", headers=sup)
            assert r.status_code == 400
            r = await client.post("/api/v1/campaigns/sales/leads", content=b"phone\n" + b"+34600000001\n" * (MAX_LEAD_UPLOAD // 13 + 1),
                                  headers=sup)
            assert r.status_code == 413
            r = await client.post("/api/v1/campaigns/nope/leads", content=b"phone\n+34600000001\n", headers=sup)
            assert r.status_code == 404
            leads = await engine.store.fetchall("SELECT lead FROM dialer_leads")
            assert leads == []  # nothing half-imported

            # a browser session needs the CSRF token for the same state changes
            one_time = await add_user(engine.store, "carol", "supervisor")
            await client.post("/login", data={"user": "carol", "password": one_time})
            csrf = (await client.get("/api/v1/me")).json()["csrf"]
            r = await client.post("/api/v1/password", json={"current": one_time, "new": "a long new password"},
                                  headers={"x-csrf-token": csrf})
            assert r.status_code == 200
            csrf = r.json()["csrf"]
            assert (await client.post("/api/v1/campaigns/sales/pause")).status_code == 403
            assert engine.dialer.campaigns["sales"].dialer.paused is False
            assert (await client.post("/api/v1/campaigns/sales/pause", headers={"x-csrf-token": csrf})).status_code == 200
            assert engine.dialer.campaigns["sales"].dialer.paused is True
