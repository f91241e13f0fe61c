from __future__ import annotations

import contextlib
import re

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def _form_login(client, user: str, password: str, next_path: str = "/"):
    return await client.post("/login", data={"user": user, "password": password, "next": next_path})


async def test_unauthenticated_pages_redirect_to_login_and_assets_are_public(console):
    async with console.client() as client:
        r = await client.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
        r = await client.get("/login")
        assert r.status_code == 200 and 'name="password"' in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
        r = await client.get("/static/console.js")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
        assert "textContent" in r.text and "innerHTML" not in r.text
        assert (await client.get("/static/console.css")).status_code == 200
        assert (await client.get("/static/..%2f_auth.py")).status_code == 404
        assert (await client.get("/static/_auth.py")).status_code == 404


async def test_first_login_with_one_time_password_then_change_it_in_forms(console):
    async with console.client() as client:
        r = await _form_login(client, "admin", "wrong")
        assert r.status_code == 401 and "wrong user name or password" in r.text
        r = await _form_login(client, "admin", console.admin_password)
        assert r.status_code == 303 and r.headers["location"] == "/password"
        assert (await client.get("/")).headers["location"] == "/password"
        form = await client.get("/password")
        csrf = _csrf(form.text)
        r = await client.post("/password", data={"csrf_token": csrf, "current": console.admin_password,
                                                 "new": "new password 123", "confirm": "new password 124"})
        assert r.status_code == 400 and "differ" in r.text
        r = await client.post("/password", data={"current": console.admin_password, "new": "new password 123",
                                                 "confirm": "new password 123"})
        assert r.status_code == 403  # no CSRF token
        r = await client.post("/password", data={"csrf_token": csrf, "current": console.admin_password,
                                                 "new": "new password 123", "confirm": "new password 123"})
        assert r.status_code == 303 and r.headers["location"] == "/"
        r = await client.get("/")
        assert r.status_code == 200 and "Dashboard" in r.text and 'id="queues"' in r.text
        assert (await client.get("/plugins")).status_code == 200


async def test_open_redirect_after_login_is_refused(console):
    password = await _new_user(console, "sam", "supervisor")
    async with console.client() as client:
        r = await _form_login(client, "sam", password, "//evil.example/steal")
        assert r.headers["location"] in ("/", "/password")


async def _new_user(console, name, role):
    from engine.console import add_user

    return await add_user(console.store, name, role)


async def test_agent_cannot_open_admin_or_supervisor_pages(console):
    client, _ = await console.logged_in("alice", "agent")
    async with contextlib.aclosing(client):
        for path in ("/plugins", "/users", "/agents", "/queues"):
            r = await client.get(path)
            assert r.status_code == 403, path
            assert r.headers["content-type"].startswith("text/html")
        assert (await client.get("/")).headers["location"] == "/desk"
        assert (await client.get("/desk")).status_code == 200


async def test_attacker_controlled_text_is_escaped_in_every_page(console):
    console.engine.agents["alice"]["name"] = XSS
    console.engine.agents["alice"]["reason"] = XSS
    console.engine.interactions["i1"]["from"] = XSS
    console.engine.interactions["i1"]["to"] = '"><svg onload=alert(1)>'
    console.engine.queues[XSS] = {"name": XSS, "waiting": 0, "members": {XSS: XSS}}
    sup, _ = await console.logged_in("sue", "admin")
    agent, _ = await console.logged_in("alice", "agent")
    async with contextlib.aclosing(sup), contextlib.aclosing(agent):
        pages = [await sup.get(p) for p in ("/", "/agents", "/queues", "/plugins", "/users")]
        pages.append(await agent.get("/desk"))
        for page in pages:
            assert page.status_code == 200, page.url
            assert "<script>alert" not in page.text and "<img src=x" not in page.text and "<svg onload" not in page.text, page.url
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in pages[0].text
        assert "&lt;img src=x onerror=alert(1)&gt;" in pages[-1].text


async def test_agent_desk_accepts_offer_and_replies_with_forms(console):
    client, _ = await console.logged_in("alice", "agent")
    async with contextlib.aclosing(client):
        desk = await client.get("/desk")
        assert 'action="/desk/i1/accept"' in desk.text
        csrf = _csrf(desk.text)
        r = await client.post("/desk/i1/accept", data={"csrf_token": csrf})
        assert r.status_code == 303
        desk = await client.get("/desk")
        assert 'action="/desk/i1/reply"' in desk.text
        r = await client.post("/desk/i1/reply", data={"csrf_token": csrf, "text": "Hola, ¿en qué le ayudo?"})
        assert r.status_code == 303
        r = await client.post("/desk/i2/hangup", data={"csrf_token": csrf})
        assert r.status_code == 403  # bob's call
        r = await client.post("/agents/alice/state", data={"csrf_token": csrf, "state": "paused", "reason": "café"})
        assert r.status_code == 303
    assert console.engine.actions == [("i1", "accept", {"agent": "alice"}), ("i1", "reply", {"text": "Hola, ¿en qué le ayudo?"})]
    assert console.engine.agents["alice"]["state"] == "paused" and console.engine.agents["alice"]["reason"] == "café"


async def test_admin_adds_user_from_users_page(console):
    client, _ = await console.logged_in("root2", "admin")
    async with contextlib.aclosing(client):
        page = await client.get("/users")
        r = await client.post("/users", data={"csrf_token": _csrf(page.text), "name": "newagent", "role": "agent"})
        assert r.status_code == 200
        one_time = re.search(r"<code>([^<]+)</code>", r.text).group(1)
    async with console.client() as fresh:
        r = await _form_login(fresh, "newagent", one_time)
        assert r.headers["location"] == "/password"


async def test_wallboard_reports_and_logs_pages(console):
    import logging

    import time

    now = time.time()
    console.engine.cdr_rows = [{"start": now - 60, "src": "+34911", "dst": "100", "clid": XSS,
                                "disposition": "ANSWERED", "uniqueid": "i7", "_t": now - 60},
                               {"start": now - 7200, "src": "+34922", "dst": "100", "clid": "",
                                "disposition": "NO ANSWER", "uniqueid": "i8", "_t": now - 7200}]
    logging.getLogger("centralita.sip").warning("REGISTER from %s refused", XSS)
    admin, _ = await console.logged_in("tech", "admin")
    async with contextlib.aclosing(admin):
        wall = await admin.get("/wallboard")
        assert wall.status_code == 200 and 'data-queue="support"' in wall.text
        reports = await admin.get("/reports")
        assert reports.status_code == 200 and "i7" in reports.text and "<img" not in reports.text
        # the chart has one answered and one unanswered call, in different hours
        calls_chart = re.search(r"<svg.*?Calls per hour.*?</svg>", reports.text).group(0)
        assert calls_chart.count("<rect x=") - calls_chart.count('width="10" height="10"') == 2
        assert "answered: 1</title>" in calls_chart and "not answered: 1</title>" in calls_chart
        csv_link = re.search(r'href="(/api/v1/cdr\?format=csv[^"]*)"', reports.text).group(1)
        r = await admin.get(csv_link)
        assert r.headers["content-type"].startswith("text/csv") and '"+34911"' in r.text
        logs = await admin.get("/logs", params={"level": "WARNING", "logger": "centralita.sip"})
        assert "REGISTER from" in logs.text and "<img" not in logs.text
        assert (await admin.get("/logs", params={"level": "LOUD"})).status_code == 400
        api = (await admin.get("/api/v1/logs", params={"q": "register"})).json()
        assert api and api[-1]["logger"] == "centralita.sip"
        newer = (await admin.get("/api/v1/logs", params={"after": api[-1]["seq"], "q": "register"})).json()
        assert newer == []
    agent, _ = await console.logged_in("ag", "agent")
    async with contextlib.aclosing(agent):
        assert (await agent.get("/logs")).status_code == 403
        assert (await agent.get("/api/v1/logs")).status_code == 403
        assert (await agent.get("/wallboard")).status_code == 403


async def test_logs_page_does_not_show_the_one_time_password(make_console, tmp_path):
    async with make_console(tmp_path) as console:
        assert console.admin_password
        records = console.server.logs.query(text="one-time password")
        assert records and all(console.admin_password not in r.message for r in records)
        assert "[redacted]" in records[0].message


async def test_users_page_revokes_a_token_and_deletes_a_user(console):
    token = await console.token("agent", "kiosk")
    await _new_user(console, "temp", "agent")
    admin, _ = await console.logged_in("boss", "admin")
    async with contextlib.aclosing(admin):
        page = await admin.get("/users")
        csrf = _csrf(page.text)
        revoke = re.search(r'action="(/tokens/[0-9a-f]{12}/revoke)"', page.text).group(1)
        assert (await admin.post(revoke, data={"csrf_token": csrf})).status_code == 303
        assert (await admin.post("/users/temp/delete", data={"csrf_token": csrf})).status_code == 303
        assert (await admin.post("/users/boss/delete", data={"csrf_token": csrf})).status_code == 400
        page = await admin.get("/users")
        assert ">temp<" not in page.text and "kiosk" not in page.text
    async with console.client(headers={"authorization": f"Bearer {token}"}) as gone:
        assert (await gone.get("/api/v1/agents")).status_code == 401


async def test_desk_sets_disposition_with_note_and_transfers(console):
    console.engine.queues["sales"] = {"name": "sales", "waiting": 0, "members": {}}
    console.engine.interactions["i1"]["state"] = "active"
    client, _ = await console.logged_in("alice", "agent")
    async with contextlib.aclosing(client):
        desk = await client.get("/desk")
        csrf = _csrf(desk.text)
        assert 'action="/desk/i1/disposition"' in desk.text and '<option value="sales">' in desk.text
        r = await client.post("/desk/i1/disposition", data={"csrf_token": csrf, "disposition": "resolved", "notes": "<b>ok</b>"})
        assert r.status_code == 303
        r = await client.post("/desk/i1/disposition", data={"csrf_token": csrf, "disposition": " "})
        assert r.status_code == 400
        r = await client.post("/desk/i1/transfer", data={"csrf_token": csrf, "queue": "sales"})
        assert r.status_code == 303
    assert console.engine.actions == [("i1", "disposition", {"disposition": "resolved", "notes": "<b>ok</b>"}),
                                      ("i1", "transfer", {"queue": "sales"})]


async def test_devices_page_shows_channels_and_devices_escaped(console):
    admin, _ = await console.logged_in("tech2", "admin")
    async with contextlib.aclosing(admin):
        r = await admin.get("/devices")
        assert r.status_code == 200
        assert "trunks.itsp=registered" in r.text and "registrations=2" in r.text
        assert "<td>&lt;b&gt;USR5637&lt;/b&gt;</td>" in r.text and "17/31 (-79 dBm)" in r.text


async def test_login_next_cannot_inject_headers(console):
    password = await _new_user(console, "nina", "supervisor")
    async with console.client() as client:
        r = await _form_login(client, "nina", password, "/agents\r\nSet-Cookie: evil=1")
        assert r.status_code == 303 and r.headers["location"] in ("/", "/password")
        assert "evil" not in r.headers.get("set-cookie", "")


async def test_reports_page_shows_service_level_and_staffing(console):
    sup, _ = await console.logged_in("sally", "supervisor")
    async with contextlib.aclosing(sup):
        r = await sup.get("/reports")
        assert r.status_code == 200
        assert "75.0 %" in r.text and "11.1 %" in r.text  # service level, abandon rate
        assert 'id="staffing"' in r.text and "09:30" in r.text
        assert "Answered and abandoned per half hour" in r.text
