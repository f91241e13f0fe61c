"""The new dashboard parts in headless Chromium: alarms (with hostile names that must stay text), the
service-level-today column surviving live refreshes, the half-hour and per-hour SVG charts, and agents'
time in state ticking and restarting when their activity changes. Screenshots go to
``<repo>/build/screenshots/console/`` (dashboard-alarms.png, wallboard-agents.png)."""

from __future__ import annotations

import re
import time
from typing import Any

import trio

from engine._events import Event
from engine.reporting import compute

from .test_console_browser import SCREENSHOTS, _require_browser

XSS = '<img src=x onerror="window.__xss=1">'


def _today(now: float) -> list[dict[str, Any]]:
    midnight = now - now % 86400

    def r(ts: float, event: str, iid: str, **fields: Any) -> dict[str, Any]:
        return {"ts": midnight + ts, "event": event, "interaction": iid, "fields": fields}

    rows = []
    for queue in ("support", XSS):
        rows += [r(9 * 3600, "QueueCallerJoin", "a", Queue=queue), r(9 * 3600 + 5, "AgentConnect", "a", Queue=queue, Agent="alice", HoldTime=5),
                 r(9 * 3600 + 60, "QueueCallerJoin", "b", Queue=queue), r(9 * 3600 + 100, "QueueCallerAbandon", "b", Queue=queue, HoldTime=40)]  # fmt: skip
    return rows


def _session(console: Any) -> dict[str, Any]:
    sync_playwright, expect = _require_browser()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    outcome: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 1000}).new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto("/login")
            page.fill('input[name="user"]', "sue")
            page.fill('input[name="password"]', "correct horse battery")
            page.click('button[type="submit"]')
            expect(page.locator("h1")).to_have_text("Dashboard")
            expect(page.locator("#live-status")).to_have_text("live", timeout=15_000)
            alarms = page.locator("#alarms")
            expect(alarms).to_contain_text(f"SIP trunk {XSS} failed: Service Unavailable (SIP 503)")  # as text
            expect(alarms).to_contain_text("No space left on device")
            expect(page.locator("svg[aria-label^='Service level and abandoned'] rect >> nth=0")).to_be_visible()
            outcome["sl_bars"] = page.locator("svg[aria-label^='Service level and abandoned'] rect title").all_text_contents()
            outcome["message_bars"] = page.locator("svg[aria-label^='Messages per hour'] rect title").all_text_contents()
            support = page.locator("#queues tbody tr", has_text="support")
            expect(support.locator("td").nth(4)).to_have_text("50%")
            alice = page.locator("#agents tbody tr", has_text="alice").locator("span.since")
            first = alice.text_content()
            expect(alice).not_to_have_text(first or "", timeout=5_000)  # it ticks
            page.screenshot(path=str(SCREENSHOTS / "dashboard-alarms.png"), full_page=True)

            # a live event refreshes the tables from the API: SL today stays, alice's time restarts
            def change() -> None:
                console.engine.queues["support"]["waiting"] = 7
                console.engine.agents["alice"].update(state="paused", reason="café")
                console.bus.publish("QueueMemberStatus", Agent="alice", Status="paused")

            trio.from_thread.run_sync(change)
            expect(support.locator("td").nth(1)).to_have_text("7", timeout=15_000)
            expect(support.locator("td").nth(4)).to_have_text("50%")
            expect(alice).to_have_text(re.compile(r"^\d s$"))  # restarted from zero

            # the disk alarm is cleared by hand; the trunk's clears when it registers again
            page.locator("#alarm-list tr", has_text="No space left").get_by_role("button", name="Clear").click()
            expect(page.locator("h1")).to_have_text("Dashboard")
            expect(page.locator("#alarms")).not_to_contain_text("No space left")
            expect(page.locator("#live-status")).to_have_text("live", timeout=15_000)
            # alarms come and go live, without a reload
            trio.from_thread.run_sync(lambda: console.bus.publish("DeviceStateChange", Device=XSS, State="UNAVAILABLE"))
            expect(page.locator("#alarms")).to_contain_text(f"{XSS} is not reachable", timeout=15_000)
            trio.from_thread.run_sync(lambda: console.bus.publish("SipTrunkStatus", Trunk=XSS, State="registered", Status=200))
            expect(page.locator("#alarms")).not_to_contain_text("SIP trunk", timeout=15_000)
            outcome["xss_ran_live"] = page.evaluate("() => window.__xss === 1")
            page.goto("/wallboard")
            expect(page.locator("#wallboard .tile[data-queue='support'] [data-figure='SL today'] .value")).to_have_text("50%")
            expect(page.locator("#agents span.since").first).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / "wallboard-agents.png"), full_page=True)
            outcome["xss_ran"] = page.evaluate("() => window.__xss === 1")
            page.goto("/")
            outcome["xss_ran_dashboard"] = page.evaluate("() => window.__xss === 1")
            outcome["dialogs"] = dialogs
        finally:
            browser.close()
    return outcome


async def test_dashboard_alarms_charts_and_time_in_state_in_a_real_browser(make_console, tmp_path, monkeypatch):
    async with make_console(tmp_path) as console:
        now = time.time()

        async def report(since: float, until: float | None = None, **options: Any) -> dict[str, Any]:
            return {"since": since, "until": until, **compute(_today(now), threshold=20, now=time.time()).as_json()}

        monkeypatch.setattr(console.engine, "report", report)
        console.engine.queues[XSS] = {"name": XSS, "waiting": 0, "members": {}, "answered": 1, "abandoned": 1}
        console.engine.cdr_rows = [{"start": now - 600 - n, "disposition": "ANSWERED", "userfield": kind, "_t": now - 600 - n}
                                   for n, kind in enumerate(["chat", "chat", "sms", "email", "voice"])]
        client, _ = await console.logged_in("sue", "supervisor")
        await client.aclose()
        console.bus.publish_nowait(Event("QueueMemberStatus", {"Agent": "alice", "Status": "available"}, timestamp=now - 65))
        console.bus.publish("SipTrunkStatus", Trunk=XSS, State="failed", Status=503, Error="Service Unavailable")
        console.bus.publish("RecordingFailed", File="/rec/x.wav", Cause="[Errno 28] No space left on device")
        with trio.fail_after(240):
            outcome = await trio.to_thread.run_sync(_session, console)
    assert outcome["xss_ran"] is False and outcome["xss_ran_dashboard"] is False and outcome["xss_ran_live"] is False
    assert outcome["dialogs"] == []
    assert "09:00 service level: 50%" in outcome["sl_bars"] and "09:00 abandoned: 50%" in outcome["sl_bars"]  # 1 of 2 offered
    assert sorted(t.split(" ", 1)[1] for t in outcome["message_bars"]) == ["chat: 2", "email: 1", "sms: 1"]
