"""The supervisor's dashboard: service level today per queue, the alarms the engine raises (and their
clearing on recovery), the half-hour service-level and messages-per-hour charts, and how long each
agent has been in their state; attacker-controlled names stay text."""

from __future__ import annotations

import contextlib
import html
import re
import time
from typing import Any

from engine._events import Event
from engine.reporting import compute

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _section(page: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}".*?</section>', page, re.S)
    assert match, f"no section {section_id}"
    return match.group(0)


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


async def test_alarms_are_raised_by_engine_events_cleared_on_recovery_and_escaped(console):
    supervisor, _ = await console.logged_in("sue", "supervisor")
    async with contextlib.aclosing(supervisor):
        quiet = _section((await supervisor.get("/")).text, "alarms")
        # the FakeEngine's status has a plugin that failed to load: an alarm that clears itself
        assert "Plugin broken failed: ImportError: x" in quiet and "No active alarms" not in quiet
        console.bus.publish("SipTrunkStatus", Trunk=XSS, State="failed", Status=403, Error="Forbidden")
        console.bus.publish("RecordingFailed", File="/rec/a.wav", Cause="[Errno 28] No space left on device")
        console.bus.publish("DeviceStateChange", Device="sip:2001", State="UNAVAILABLE")
        page = (await supervisor.get("/")).text
        alarms = _section(page, "alarms")
        assert "<script>alert" not in page and "onerror=alert(1)>" not in page
        assert html.escape(f"SIP trunk {XSS} failed: Forbidden (SIP 403)", quote=True) in alarms
        assert "No space left on device" in alarms and "sip:2001 is not reachable" in alarms
        assert alarms.index("SIP trunk") < alarms.index("No space left")  # critical first
        # recovery clears: the trunk registers again, the phone answers again
        console.bus.publish("SipTrunkStatus", Trunk=XSS, State="registered", Status=200, Error="")
        console.bus.publish("DeviceStateChange", Device="sip:2001", State="NOT_INUSE")
        alarms = _section((await supervisor.get("/")).text, "alarms")
        assert "SIP trunk" not in alarms and "sip:2001" not in alarms and "No space left" in alarms
        # the disk alarm has no recovery event: a supervisor clears it, with the CSRF token only
        page = (await supervisor.get("/")).text
        assert (await supervisor.post("/alarms/clear", data={"key": "recording"})).status_code == 403
        r = await supervisor.post("/alarms/clear", data={"key": "recording", "csrf_token": _csrf(page)})
        assert r.status_code == 303
        alarms = _section((await supervisor.get("/")).text, "alarms")
        assert "No space left" not in alarms and "Plugin broken failed" in alarms
    async with await console.bearer("supervisor") as api:  # what the dashboard's script redraws from
        listed = (await api.get("/api/v1/alarms")).json()
        assert [(a["source"], a["clearable"]) for a in listed["alarms"]] == [("plugin", False)] and listed["dropped"] == 0
    agent, _ = await console.logged_in("ann", "agent")
    async with contextlib.aclosing(agent):
        assert (await agent.post("/alarms/clear", data={"key": "x"})).status_code == 403
        assert (await agent.get("/api/v1/alarms")).status_code == 403


async def test_the_alarm_list_stays_bounded(console):
    supervisor, _ = await console.logged_in("sue", "supervisor")
    for n in range(500):
        console.bus.publish("DeviceStateChange", Device=f"sip:{n}", State="UNAVAILABLE")
    async with contextlib.aclosing(supervisor):
        alarms = _section((await supervisor.get("/")).text, "alarms")
    assert alarms.count("is not reachable") == 200 and "300 older alarms were dropped" in alarms
    assert "sip:499 " in alarms and "sip:0 " not in alarms  # the newest are kept


def _today_log(queue: str, midnight: float) -> list[dict[str, Any]]:
    def r(ts: float, event: str, iid: str, **fields: Any) -> dict[str, Any]:
        return {"ts": midnight + ts, "event": event, "interaction": iid, "fields": fields}

    return [  # 09:00-09:30: one answered in 10 s, one in 40 s (SL 50%); 09:30-10:00: one abandoned after 30 s
        r(9 * 3600, "QueueCallerJoin", "a", Queue=queue), r(9 * 3600 + 10, "AgentConnect", "a", Queue=queue, Agent="alice", HoldTime=10),
        r(9 * 3600 + 60, "QueueCallerJoin", "b", Queue=queue), r(9 * 3600 + 100, "AgentConnect", "b", Queue=queue, Agent="bob", HoldTime=40),
        r(9 * 3600 + 1800, "QueueCallerJoin", "c", Queue=queue), r(9 * 3600 + 1830, "QueueCallerAbandon", "c", Queue=queue, HoldTime=30),
    ]  # fmt: skip


async def test_service_level_today_and_the_charts(console, monkeypatch):
    now = time.time()
    midnight = now - now % 86400
    asked: list[float] = []

    async def report(since: float, until: float | None = None, **options: Any) -> dict[str, Any]:
        asked.append(since)
        rows = _today_log("support", midnight) + _today_log(XSS, midnight)
        return {"since": since, "until": until, **compute(rows, threshold=20, now=now).as_json()}

    monkeypatch.setattr(console.engine, "report", report)
    console.engine.queues[XSS] = {"name": XSS, "waiting": 0, "members": {}, "answered": 0, "abandoned": 0}
    console.engine.cdr_rows = [
        {"start": now - 30, "disposition": "ANSWERED", "userfield": "chat", "_t": now - 30},
        {"start": now - 40, "disposition": "ANSWERED", "userfield": "sms", "_t": now - 40},
        {"start": now - 50, "disposition": "ANSWERED", "userfield": "voice", "_t": now - 50},
    ]
    supervisor, _ = await console.logged_in("sue", "supervisor")
    async with contextlib.aclosing(supervisor):
        page = (await supervisor.get("/")).text
        board = (await supervisor.get("/wallboard")).text
    assert asked[0] == midnight  # "today" is since midnight (UTC)
    queues = re.search(r'<table id="queues">.*?</table>', page, re.S).group(0)
    assert "<th>SL today</th>" in queues
    # 1 answered within 20 s / (2 answered + 1 abandoned after 20 s)
    assert re.search(r"<td>support</td>(<td>[^<]*</td>){3}<td>33%</td>", queues)
    assert "<script>alert" not in page and "<script>alert" not in board
    chart = re.search(r"<svg[^>]*aria-label=\"Service level and abandoned[^\"]*\".*?</svg>", page, re.S).group(0)
    assert "09:00 service level: 50%</title>" in chart and "09:00 abandoned: 0%</title>" in chart
    assert "09:30 abandoned: 100%</title>" in chart and "09:30 service level: 0%</title>" in chart
    messages = re.search(r"<svg[^>]*aria-label=\"Messages per hour.*?</svg>", page, re.S).group(0)
    assert "chat: 1</title>" in messages and "sms: 1</title>" in messages and "email: 1</title>" not in messages
    calls = re.search(r"<svg[^>]*aria-label=\"Calls per hour.*?</svg>", page, re.S).group(0)
    assert calls.count("answered: 1</title>") == 1  # the voice call only
    states = re.search(r"<svg[^>]*aria-label=\"Agent states today.*?</svg>", page, re.S).group(0)
    assert states.count("<rect x=") - states.count('width="10" height="10"') == 0  # nobody changed state today
    tile = re.search(r'<section class="tile" data-queue="support">.*?</section>', board, re.S).group(0)
    assert re.search(r'data-figure="SL today"><span class="label">SL today</span><span class="value">33%</span>', tile)


async def test_agent_states_over_the_day_chart(console, monkeypatch):
    now = time.time()
    midnight = now - now % 86400

    def status(ts: float, agent: str, value: str) -> dict[str, Any]:
        return {"ts": midnight + ts, "event": "QueueMemberStatus", "fields": {"Agent": agent, "Status": value}}

    rows = [status(8 * 3600, "alice", "available"), status(9 * 3600, "alice", "busy"), status(10 * 3600, "alice", "paused"),
            status(8 * 3600, XSS, "available")]  # fmt: skip

    async def report(since: float, until: float | None = None, **options: Any) -> dict[str, Any]:
        return {"since": since, "until": until, **compute(rows, until=midnight + 11 * 3600).as_json()}

    monkeypatch.setattr(console.engine, "report", report)
    supervisor, _ = await console.logged_in("sue", "supervisor")
    async with contextlib.aclosing(supervisor):
        page = (await supervisor.get("/")).text
    chart = re.search(r"<svg[^>]*aria-label=\"Agent states today.*?</svg>", page, re.S).group(0)
    assert "<title>alice busy: 1</title>" in chart and "<title>alice available: 1</title>" in chart
    assert "<title>alice paused: 1</title>" in chart  # 10:00 to 11:00
    assert f"<title>{html.escape(XSS, quote=True)} available: 3</title>" in chart and "<img" not in chart


async def test_agents_show_how_long_they_have_been_in_their_state(console):
    console.bus.publish_nowait(Event("QueueMemberStatus", {"Agent": "alice", "Status": "available"},
                                     timestamp=time.time() - 3725))
    console.bus.publish_nowait(Event("QueueMemberStatus", {"Agent": "bob", "Status": "busy"}, timestamp=time.time() - 50))
    supervisor, _ = await console.logged_in("sue", "supervisor")
    async with contextlib.aclosing(supervisor):
        for path in ("/agents", "/", "/wallboard"):
            agents = re.search(r'<table id="agents">.*?</table>', (await supervisor.get(path)).text, re.S).group(0)
            assert "<th>in state</th>" in agents
            alice = re.search(r"<tr><td>alice</td>.*?</tr>", agents).group(0)
            assert re.search(r'<span class="since" data-since="\d+">1 h 02 min</span>', alice)
            bob = re.search(r"<tr><td>bob</td>.*?</tr>", agents).group(0)
            assert 'class="since"' not in bob  # bob is paused now; his last seen activity was "busy"


async def test_reports_page_shows_occupancy_channels_campaigns_and_links_the_csv(console, monkeypatch):
    def r(ts: float, event: str, iid: str | None = None, **fields: Any) -> dict[str, Any]:
        return {"ts": ts, "event": event, "interaction": iid, "fields": fields}

    rows = [r(0, "QueueMemberStatus", Agent=XSS, Status="available"),
            r(100, "QueueCallerJoin", "i1", Queue="support", Kind="email"),
            r(110, "AgentConnect", "i1", Queue="support", Agent=XSS, HoldTime=10),
            r(110, "QueueMemberStatus", Agent=XSS, Status="busy"),
            r(210, "AgentComplete", "i1", Queue="support", Agent=XSS, TalkTime=100),
            r(210, "QueueMemberStatus", Agent=XSS, Status="available"),
            r(210, "Hangup", "i1", Kind="email", Customer="a@example.com", Answered=110),
            r(300, "Hangup", "i2", Kind="voice", Campaign=XSS, Customer="+34911000002", Answered=290)]  # fmt: skip

    async def report(since: float, until: float | None = None, **options: Any) -> dict[str, Any]:
        return {"since": since, "until": until, **compute(rows, until=400, now=400, fcr_window=50).as_json()}

    monkeypatch.setattr(console.engine, "report", report)
    supervisor, _ = await console.logged_in("sue", "supervisor")
    async with contextlib.aclosing(supervisor):
        page = (await supervisor.get("/reports", params={"since": "0"})).text
    assert "<script>alert" not in page
    agents = re.search(r'<table id="agent-figures">.*?</table>', page, re.S).group(0)
    assert f"<td>{html.escape(XSS, quote=True)}</td><td>1</td><td>100 s</td><td>0 s</td><td>100 s</td><td>25.0 %</td>" in agents
    channels = re.search(r'<table id="channel-figures">.*?</table>', page, re.S).group(0)
    assert "<td>email</td><td>1</td><td>100.0 %</td><td>100 s</td><td>1</td><td>1</td><td>100 s</td><td>100.0 %</td><td>0</td>" in channels
    campaigns = re.search(r'<table id="campaign-figures">.*?</table>', page, re.S).group(0)
    assert f"<td>{html.escape(XSS, quote=True)}</td><td>1</td><td>1</td><td>10 s</td><td>100.0 %</td>" in campaigns
    assert 'href="/api/v1/reports?format=csv&amp;since=0"' in page


async def test_time_in_state_and_service_level_from_a_real_engine(tmp_path):
    import httpx

    from engine.console import add_token
    from engine.testing import open_test_engine

    config = '[[agents]]\nid = "alice"\n\n[[queues]]\nname = "support"\nmembers = ["alice"]\n'
    async with open_test_engine(config, data_dir=tmp_path) as engine:
        token = await add_token(engine.store, "ops", "supervisor")
        engine.set_agent_state("alice", "paused", "training")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30,
                                     headers={"authorization": f"Bearer {token}"}) as client:
            agents = re.search(r'<table id="agents">.*?</table>', (await client.get("/agents")).text, re.S).group(0)
            alice = re.search(r"<tr><td>alice</td>.*?</tr>", agents).group(0)
            assert "<td>paused</td>" in alice and "<td>training</td>" in alice
            assert re.search(r'<span class="since" data-since="\d+">\d+ s</span>', alice)  # seen on the bus
            page = (await client.get("/")).text
            assert "<th>SL today</th>" in page and 'aria-label="Service level and abandoned' in page
            assert "No active alarms." in page
