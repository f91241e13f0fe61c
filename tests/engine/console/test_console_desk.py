"""The agent desk against the real engine, the real chat channel and the built-in CRM: screen pop,
canned responses, typing both ways, notes into the CRM, callbacks, and hostile input on every field."""

from __future__ import annotations

import copy
import importlib.util
import time
from pathlib import Path

import httpx
import trio

from engine.console import add_token
from engine.testing import open_test_engine, wait_until
from plugins.chat import plugin as chat_plugin
from plugins.crm_sqlite import plugin as crm_plugin
from plugins.crm_sqlite._model import ContactRow

# the chat tests' tiny WebSocket visitor, loaded by path under its own name (every test folder has a
# module called conftest, so importing it by that name would depend on the order tests are collected)
_spec = importlib.util.spec_from_file_location(
    "chat_test_visitor", Path(__file__).resolve().parents[2] / "plugins" / "chat" / "conftest.py")
_visitor_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_visitor_module)
WsClient = _visitor_module.WsClient

CONFIG = """
[[agents]]
id = "alice"
name = "Alice"
endpoint = "sip:1001"
channels = { chat = 3 }

[[agents]]
id = "bob"
channels = { chat = 3 }

[[queues]]
name = "web"
members = ["alice"]

[[queues]]
name = "sales"
members = ["bob"]

[[routes]]
match = "webchat"
queue = "web"

[chat]
queue_update_interval = 0.2
reoffer_after = 0
"""

XSS = '<img src=x onerror="alert(1)">'


async def _setup(engine):
    tokens = {name: await add_token(engine.store, name, role) for name, role in
              (("alice", "agent"), ("bob", "agent"), ("sue", "supervisor"))}
    return {name: {"authorization": f"Bearer {token}"} for name, token in tokens.items()}


async def _crm(engine):
    (crm,) = engine.crm.values()
    return crm


async def _offered_chat(engine, visitor_name: str, email: str, text: str = "hola"):
    visitor = await WsClient.connect(engine.console.url)
    await visitor.send_json({"type": "hello", "token": None, "name": visitor_name, "email": email})
    await visitor.receive("welcome")
    await visitor.send_json({"type": "message", "text": text})
    await wait_until(lambda: any(i.state.value == "offered" for i in engine.interactions.values()), timeout=30)
    (item,) = [i for i in engine.interactions.values() if i.kind.value == "chat"]
    return visitor, item


async def _agent_message(visitor):
    while True:  # the visitor's own lines come back too (other tabs show them)
        message = await visitor.receive("message")
        if message["direction"] == "outbound":
            return message


async def test_screen_pop_canned_typing_notes_and_reply_reach_the_customer(tmp_path):
    async with open_test_engine(CONFIG, plugins=[chat_plugin, crm_plugin], data_dir=tmp_path) as engine:
        auth = await _setup(engine)
        crm = await _crm(engine)
        contact = await crm.create(ContactRow(name=f"Ana {XSS}", emails=["ana@example.com"], fields={"plan": "gold"}))
        await crm.add_note(contact, "bob", f"prefers Spanish {XSS}")
        visitor, item = await _offered_chat(engine, "Ana", "ana@example.com")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            pop = (await client.get(f"/api/v1/interactions/{item.id}/contact", headers=auth["alice"])).json()["pop"]
            assert pop["contact"]["name"] == f"Ana {XSS}" and pop["contact"]["fields"] == {"plan": "gold"}
            assert [n["text"] for n in pop["notes"]] == [f"prefers Spanish {XSS}"] and pop["identity_claimed"] is True
            # bob is not offered this chat: neither its pop nor its typing are his
            assert (await client.get(f"/api/v1/interactions/{item.id}/contact", headers=auth["bob"])).status_code == 403
            live = (await client.get("/desk/live", headers=auth["alice"])).text
            assert "prefers Spanish &lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in live and "<img" not in live
            assert "not verified" in live

            r = await client.post("/api/v1/canned", headers=auth["sue"],
                                  json={"title": "Greeting", "queue": "web", "body": "Hola {customer_name}, soy {agent_name}. {unknown}"})
            assert r.status_code == 201
            await client.post("/api/v1/canned", headers=auth["sue"], json={"title": "Sales only", "queue": "sales", "body": "x"})
            await client.post("/api/v1/canned", headers=auth["sue"], json={"title": "Bye", "body": f"Adiós {XSS}"})
            assert (await client.post("/api/v1/canned", headers=auth["alice"], json={"title": "t", "body": "b"})).status_code == 403

            r = await client.post(f"/api/v1/interactions/{item.id}/accept", headers=auth["alice"], json={})
            assert r.status_code == 200 and r.json()["state"] == "active"
            canned = (await client.get(f"/api/v1/canned?interaction={item.id}", headers=auth["alice"])).json()
            assert [c["title"] for c in canned] == ["Greeting", "Bye"]  # the queue's first, no other queue's
            assert canned[0]["text"] == "Hola Ana, soy Alice. {unknown}"
            live = (await client.get("/desk/live", headers=auth["alice"])).text
            assert 'data-text="Adiós &lt;img src=x onerror=&quot;alert(1)&quot;&gt;"' in live

            await visitor.send_json({"type": "typing", "on": True})
            r = await client.post(f"/api/v1/interactions/{item.id}/typing", headers=auth["alice"], json={"on": True})
            assert r.json() == {"shown": True}
            assert (await visitor.receive("typing"))["on"] is True
            r = await client.post(f"/api/v1/interactions/{item.id}/reply", headers=auth["alice"], json={"text": canned[0]["text"]})
            assert r.status_code == 200
            assert (await _agent_message(visitor))["text"] == "Hola Ana, soy Alice. {unknown}"
            transcript = (await client.get(f"/api/v1/interactions/{item.id}/messages", headers=auth["alice"])).json()
            assert [(m["direction"], m["text"]) for m in transcript] == [("inbound", "hola"), ("outbound", canned[0]["text"])]

            r = await client.post(f"/api/v1/interactions/{item.id}/notes", headers=auth["alice"], json={"text": "asked about <b>invoices</b>"})
            assert r.json()["crm"] == ["crm_sqlite"] or r.json()["crm"]
            assert [n["text"] for n in await crm.notes(contact)][-1] == "asked about <b>invoices</b>"
    await visitor.stream.aclose()


async def test_visitor_typing_reaches_the_desk_event_stream(tmp_path):
    async with open_test_engine(CONFIG, plugins=[chat_plugin, crm_plugin], data_dir=tmp_path) as engine:
        visitor, item = await _offered_chat(engine, "Ana", "")
        async with engine.bus.subscribe("test") as events:
            await visitor.send_json({"type": "typing", "on": True})
            with trio.fail_after(10):
                async for event in events:
                    if event.event == "ChatTyping":
                        break
        assert event.interaction == item.id and event.fields["Party"] == "visitor" and event.fields["Typing"] is True
        await visitor.stream.aclose()


async def test_callbacks_for_me_or_anyone_wait_in_routing(tmp_path):
    async with open_test_engine(CONFIG, plugins=[chat_plugin, crm_plugin], data_dir=tmp_path) as engine:
        auth = await _setup(engine)
        visitor, item = await _offered_chat(engine, "Ana", "")
        at = time.time() + 3600
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            await client.post(f"/api/v1/interactions/{item.id}/accept", headers=auth["alice"], json={})
            # a chat has no phone number: the agent must give one
            r = await client.post(f"/api/v1/interactions/{item.id}/callback", headers=auth["alice"], json={"at": at})
            assert r.status_code == 400 and "number" in r.json()["error"]
            r = await client.post(f"/api/v1/interactions/{item.id}/callback", headers=auth["alice"],
                                  json={"at": at, "number": "+34911222333", "note": "after 5"})
            assert r.status_code == 201, r.text
            mine = r.json()
            assert mine["queue"] == "agent:alice" and mine["state"] == "queued" and mine["callback"]["owner"] == "alice"
            r = await client.post(f"/api/v1/interactions/{item.id}/callback", headers=auth["alice"],
                                  json={"at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at + 60)),
                                        "number": "+34911222333", "owner": "anyone"})
            assert r.status_code == 201 and r.json()["queue"] == "web" and r.json()["callback"]["owner"] is None
            # alice sees both; bob (not the owner) sees only anyone's; the supervisor sees every one
            seen = {name: [c["id"] for c in (await client.get("/api/v1/callbacks", headers=auth[name])).json()]
                    for name in ("alice", "bob", "sue")}
            assert len(seen["alice"]) == 2 and seen["bob"] == [r.json()["id"]] and seen["sue"] == seen["alice"]
            # nobody is offered a callback before its time
            assert all(i.state.value == "queued" for i in engine.interactions.values() if "scheduled_callback" in i.attributes)
            # an agent cannot give their callback to another agent
            r = await client.post(f"/api/v1/interactions/{item.id}/callback", headers=auth["alice"],
                                  json={"at": at, "number": "+34911222333", "owner": "bob"})
            assert r.status_code == 403
        await visitor.stream.aclose()


async def test_hostile_desk_input_is_refused_with_a_reason(tmp_path):
    async with open_test_engine(CONFIG, plugins=[chat_plugin, crm_plugin], data_dir=tmp_path) as engine:
        auth = await _setup(engine)
        visitor, item = await _offered_chat(engine, "Ana", "")
        base = f"/api/v1/interactions/{item.id}"
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            await client.post(f"{base}/accept", headers=auth["alice"], json={})
            refused = [
                ("POST", "/api/v1/canned", "sue", {"title": ["x"], "body": "b"}),
                ("POST", "/api/v1/canned", "sue", {"title": "t", "body": {"$ne": 1}}),
                ("POST", "/api/v1/canned", "sue", {"title": "t" * 81, "body": "b"}),
                ("POST", "/api/v1/canned", "sue", {"title": "t", "body": "b" * 4001}),
                ("POST", "/api/v1/canned", "sue", {"title": "t", "body": "b", "queue": "../../etc"}),
                ("POST", "/api/v1/canned", "sue", {"title": "t", "body": "b", "queue": 7}),
                ("PUT", "/api/v1/canned/1", "sue", {"title": ""}),
                ("POST", f"{base}/typing", "alice", {"on": "yes"}),
                ("POST", f"{base}/typing", "alice", {}),
                ("POST", f"{base}/notes", "alice", {"text": ""}),
                ("POST", f"{base}/notes", "alice", {"text": 5}),
                ("POST", f"{base}/notes", "alice", {"text": "n" * 2001}),
                ("POST", f"{base}/callback", "alice", {"at": {"when": 1}, "number": "+341"}),
                ("POST", f"{base}/callback", "alice", {"at": "tomorrow", "number": "+341"}),
                ("POST", f"{base}/callback", "alice", {"at": True, "number": "+341"}),
                ("POST", f"{base}/callback", "alice", {"at": time.time() + 200 * 86400, "number": "+341"}),
                ("POST", f"{base}/callback", "alice", {"at": time.time() + 60, "number": "sip:evil@example.com"}),
                ("POST", f"{base}/callback", "alice", {"at": time.time() + 60, "number": "+34 911;ATH"}),
            ]
            await client.post("/api/v1/canned", headers=auth["sue"], json={"title": "ok", "body": "ok"})
            for method, path, who, body in refused:
                r = await client.request(method, path, headers=auth[who], json=body)
                assert r.status_code == 400, (method, path, body, r.status_code, r.text)
                assert r.json()["error"]
            assert (await client.post(f"{base}/notes", headers=auth["alice"], content=b"{not json",
                                      )).status_code == 400
            assert (await client.delete("/api/v1/canned/999", headers=auth["sue"])).status_code == 404
            assert (await client.delete("/api/v1/canned/abc", headers=auth["sue"])).status_code == 404
            assert (await client.post(f"{base}/typing", headers=auth["bob"], json={"on": True})).status_code == 403
            assert (await client.get("/api/v1/interactions/nope/contact", headers=auth["alice"])).status_code == 404
            # the one valid response is shown escaped on the management page; a hostile one too
            await client.post("/api/v1/canned", headers=auth["sue"], json={"title": XSS, "body": XSS})
            page = (await client.get("/canned", headers=auth["sue"])).text
            assert "<img" not in page and "&lt;img src=x" in page
            # the same through the pages' forms
            forms = [
                (f"/desk/{item.id}/callback", "alice", {"at": "not a date"}, 400),
                (f"/desk/{item.id}/callback", "alice", {"at": "2026-01-01T10:00", "number": "+341"}, 400),  # the past
                (f"/desk/{item.id}/notes", "alice", {"text": ""}, 400),
                (f"/desk/{item.id}/disposition", "alice", {"disposition": "x" * 65}, 400),
                (f"/desk/{item.id}/launch", "alice", {}, 404),
                (f"/desk/{item.id}/notes", "bob", {"text": "not mine"}, 403),
                ("/supervise/members", "sue", {"agent": "alice", "queue": "web", "member": "2"}, 400),
                ("/supervise/members", "alice", {"agent": "alice", "queue": "web", "member": "1"}, 403),
                (f"/supervise/calls/{item.id}/listen", "sue", {"endpoint": "sip:2001"}, 409),
                ("/canned", "sue", {"title": "", "body": "x"}, 400),
                ("/canned/abc/delete", "sue", {}, 404),
            ]
            for path, who, data, status in forms:
                r = await client.post(path, headers=auth[who], data=data)
                assert r.status_code == status, (path, data, r.status_code, r.text[:200])
            assert engine.ready()[0]  # nothing above hurt the engine
        await visitor.stream.aclose()


async def test_supervisor_moves_agents_between_queues_until_the_next_config_apply(tmp_path):
    async with open_test_engine(CONFIG, plugins=[chat_plugin, crm_plugin], data_dir=tmp_path) as engine:
        auth = await _setup(engine)

        def members(queue):
            return set(engine.queue_detail(queue)["members"])

        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            assert members("sales") == {"bob"}
            r = await client.post("/api/v1/queues/sales/members/alice", headers=auth["sue"])
            assert r.status_code == 200 and set(r.json()["members"]) == {"bob", "alice"}
            r = await client.delete("/api/v1/queues/web/members/alice", headers=auth["sue"])
            assert r.status_code == 200 and r.json()["members"] == []
            assert members("sales") == {"bob", "alice"} and members("web") == set()
            assert (await client.post("/api/v1/queues/sales/members/alice", headers=auth["alice"])).status_code == 403
            assert (await client.post("/api/v1/queues/nope/members/alice", headers=auth["sue"])).status_code == 404
            assert (await client.post("/api/v1/queues/sales/members/nobody", headers=auth["sue"])).status_code == 404
            page = (await client.get("/supervise", headers=auth["sue"])).text
            assert "until the next configuration apply" in page
            # how long each agent has been in their status: alice was offered nothing, bob too
            engine.set_agent_state("bob", "paused", "lunch")
            page = (await client.get("/supervise", headers=auth["sue"])).text
            bob_row = page[page.index("<td>bob</td>"):].split("</tr>", 1)[0]
            assert "<td>paused</td><td>0 min 0" in bob_row and "lunch" in bob_row  # exact, just now
            alice_row = page[page.index("<td>alice</td>"):].split("</tr>", 1)[0]
            assert "≥ " in alice_row  # no change seen since the console started: a lower bound
            # a chat now waits in web with nobody to take it; putting alice back offers it to her
            visitor = await WsClient.connect(engine.console.url)
            await visitor.send_json({"type": "hello", "token": None, "name": "x"})
            await visitor.receive("welcome")
            await visitor.send_json({"type": "message", "text": "hola"})
            await wait_until(lambda: any(i.state.value == "queued" for i in engine.interactions.values()), timeout=30)
            await client.post("/api/v1/queues/web/members/alice", headers=auth["sue"])
            await wait_until(lambda: engine.acd.router.agent_status("alice")["offers"], timeout=30)
            await client.delete("/api/v1/queues/web/members/alice", headers=auth["sue"])
            engine.reload(copy.copy(engine.config))  # a configuration apply: the file's membership again
            assert members("web") == {"alice"} and members("sales") == {"bob"}
            r = await client.post("/api/v1/queues/sales/members/alice", headers=auth["sue"])
            assert set(r.json()["members"]) == {"bob", "alice"}  # built on the file's membership, not the old changes
            assert members("web") == {"alice"}
            await visitor.stream.aclose()


async def test_a_callback_whose_time_has_come_rings_its_owner_then_dials_the_customer(tmp_path):
    from engine.abc import DialResult, VoiceChannel

    class Phones(VoiceChannel):
        """Alice's phone answers at once; the customer answers the callback."""

        name = "phones"
        schemes = ("sip",)

        def __init__(self, engine):
            self.engine, self.dialed, self.connected = engine, [], []

        def endpoint_reachable(self, endpoint):
            return True

        async def run(self, *, task_status=trio.TASK_STATUS_IGNORED):
            task_status.started()

        async def offer(self, interaction, agent, endpoint):
            self.engine.offer_answered(interaction, agent)

        async def hangup(self, interaction, cause="normal"):
            pass

        async def dial(self, interaction, number, *, caller_id, ring_timeout):
            self.dialed.append(number)
            return DialResult("answered")

        async def connect_agent(self, interaction, agent, endpoint):
            self.connected.append((interaction.to, agent))
            return True

    config = CONFIG.replace("channels = { chat = 3 }", "channels = { chat = 3, voice = 1 }", 1)  # alice takes calls too
    async with open_test_engine(config, plugins=[chat_plugin, crm_plugin], data_dir=tmp_path) as engine:
        auth = await _setup(engine)
        phones = engine.channels["phones"] = Phones(engine)
        engine.endpoint_state_changed("sip:1001", True)  # alice's phone registered
        visitor, item = await _offered_chat(engine, "Ana", "")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            await client.post(f"/api/v1/interactions/{item.id}/accept", headers=auth["alice"], json={})
            later = await client.post(f"/api/v1/interactions/{item.id}/callback", headers=auth["alice"],
                                      json={"at": time.time() + 3600, "number": "+34911999999"})
            r = await client.post(f"/api/v1/interactions/{item.id}/callback", headers=auth["alice"],
                                  json={"at": time.time(), "number": "+34911222333"})
            assert r.status_code == 201 and later.status_code == 201
        await wait_until(lambda: phones.connected, timeout=30)
        assert phones.dialed == ["+34911222333"] and phones.connected == [("+34911222333", "alice")]
        # the one due in an hour still waits, not offered, not dialed
        assert engine.find_interaction(later.json()["id"]).state.value == "queued"
        await visitor.stream.aclose()
