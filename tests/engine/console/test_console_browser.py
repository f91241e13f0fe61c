"""The console in a real browser: headless Chromium driven by Playwright (sync API in a worker thread,
while the console runs in the test's trio loop). Screenshots of the main pages go to
``<repo>/build/screenshots/console/``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import trio

from engine.console import add_user

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "build" / "screenshots" / "console"
XSS = '<img src=x onerror="window.__xss=1">'


def _require_browser() -> Any:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: .venv/bin/pip install playwright (the browser is Debian's chromium)")
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    return sync_playwright, expect


def _browser_session(console: Any, agent_password: str) -> dict[str, Any]:
    sync_playwright, expect = _require_browser()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    outcome: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            # --- the technician: one-time password, forced change, dashboard with live updates
            admin = browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 900})
            page = admin.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto("/")
            expect(page).to_have_url(f"{console.url}/login?next=/")
            page.screenshot(path=str(SCREENSHOTS / "login.png"))
            page.fill('input[name="user"]', "admin")
            page.fill('input[name="password"]', console.admin_password)
            page.click('button[type="submit"]')
            expect(page).to_have_url(f"{console.url}/password")
            page.screenshot(path=str(SCREENSHOTS / "password.png"))
            page.fill('input[name="current"]', console.admin_password)
            page.fill('input[name="new"]', "technician's password")
            page.fill('input[name="confirm"]', "technician's password")
            page.click('button[type="submit"]')
            expect(page.locator("h1")).to_have_text("Dashboard")
            expect(page.locator("#live-status")).to_have_text("live", timeout=15_000)

            # a call enters the queue: the dashboard shows it without a reload
            def arrive() -> None:
                console.engine.interactions["i3"] = {"id": "i3", "kind": "voice", "state": "queued", "from": "+34600111222",
                                                     "to": "100", "queue": "support", "agent": None}
                console.engine.queues["support"]["waiting"] = 3
                console.bus.publish("QueueCallerJoin", interaction="i3", Queue="support", Position=3,
                                    CallerIDNum="+34600111222", CallerIDName=XSS)

            trio.from_thread.run_sync(arrive)
            expect(page.locator("#interactions")).to_contain_text("+34600111222", timeout=15_000)
            expect(page.locator("#events")).to_contain_text("QueueCallerJoin")
            expect(page.locator("#events")).to_contain_text(XSS)  # shown as text...
            outcome["xss_ran"] = page.evaluate("() => window.__xss === 1")  # ...never run
            page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
            for name in ("wallboard", "agents", "queues", "reports", "devices", "plugins", "logs", "users"):
                page.goto(f"/{name}")
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
            outcome["dialogs"] = dialogs

            # --- the agent: log in, accept a chat offer, reply
            agent = browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 900})
            desk = agent.new_page()
            desk.goto("/login")
            desk.fill('input[name="user"]', "alice")
            desk.fill('input[name="password"]', agent_password)
            desk.click('button[type="submit"]')
            desk.fill('input[name="current"]', agent_password)
            desk.fill('input[name="new"]', "alice's own password")
            desk.fill('input[name="confirm"]', "alice's own password")
            desk.click('button[type="submit"]')
            expect(desk.locator("h1")).to_have_text("Agent desk")
            expect(desk.locator("#offers")).to_contain_text("visitor")
            desk.screenshot(path=str(SCREENSHOTS / "desk-offer.png"), full_page=True)
            desk.locator("#offers button", has_text="Accept").first.click()
            expect(desk.locator("article.conversation")).to_contain_text("chat from visitor")
            expect(desk.locator("#live-status")).to_have_text("live", timeout=15_000)
            trio.from_thread.run_sync(lambda: console.bus.publish(
                "MessageReceived", interaction="i1", CallerIDNum="visitor", Message="Necesito ayuda " + XSS))
            expect(desk.locator("article.conversation .transcript")).to_contain_text("Necesito ayuda " + XSS, timeout=15_000)
            outcome["desk_xss_ran"] = desk.evaluate("() => window.__xss === 1")
            desk.fill("article.conversation textarea", "Hola, ¿en qué puedo ayudarle?")
            desk.click("article.conversation .reply button")
            expect(desk.locator("h1")).to_have_text("Agent desk")
            desk.screenshot(path=str(SCREENSHOTS / "desk-conversation.png"), full_page=True)

            # an agent cannot open admin pages, and a state change without the CSRF token is refused
            outcome["agent_plugins_status"] = desk.goto("/plugins").status
            outcome["csrf_less_post_status"] = desk.request.post(
                "/api/v1/agents/alice/state", data={"state": "paused"}, headers={"content-type": "application/json"}
            ).status
        finally:
            browser.close()
    return outcome


async def test_console_in_a_real_browser(make_console, tmp_path):
    async with make_console(tmp_path) as console:
        agent_password = await add_user(console.store, "alice", "agent")
        now = time.time()
        console.engine.cdr_rows = [  # some history so the charts in the screenshots have something to show
            {"start": now - 3600 * (n % 20) - 60, "src": f"+3491100{n:04d}", "dst": "100", "clid": f"Caller {n}",
             "duration": 60 + n, "billsec": 50 + n, "disposition": "ANSWERED" if n % 4 else "NO ANSWER",
             "uniqueid": f"h{n}", "_t": now - 3600 * (n % 20) - 60}
            for n in range(60)
        ]
        with trio.fail_after(240):
            outcome = await trio.to_thread.run_sync(_browser_session, console, agent_password)
    assert outcome["xss_ran"] is False and outcome["desk_xss_ran"] is False and outcome["dialogs"] == []
    assert ("i1", "accept", {"agent": "alice"}) in console.engine.actions
    assert ("i1", "reply", {"text": "Hola, ¿en qué puedo ayudarle?"}) in console.engine.actions
    assert outcome["agent_plugins_status"] == 403
    assert outcome["csrf_less_post_status"] == 403
    assert console.engine.agents["alice"]["state"] == "available"
    assert all((SCREENSHOTS / f"{name}.png").stat().st_size > 0 for name in ("login", "dashboard", "desk-conversation"))
