"""The technician's pages in a real browser (headless Debian Chromium through Playwright, sync API in
a worker thread while the real engine runs in the test's trio loop), and the dashboard showing a real
SIPp call entering a queue without a reload. Screenshots go to ``<repo>/build/screenshots/console/``.
"""

from __future__ import annotations

import calendar
import importlib.util
import time
import wave
from pathlib import Path
from typing import Any

import pytest
import trio

from engine.abc import DeviceHealth
from engine.console import add_user
from engine.testing import open_test_engine
from hardware.emulators import VoiceModemEmulator
from hardware.voice_modem import plugin as voice_plugin

pytestmark = pytest.mark.interop

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "build" / "screenshots" / "console"
PASSWORD = "technician's password"


def _playwright() -> Any:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: .venv/bin/pip install playwright (the browser is Debian's chromium)")
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    return sync_playwright, expect


def _launch(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
    )


def _log_in(page: Any, expect: Any, url: str, user: str, password: str, *, first: str | None = None) -> None:
    page.goto("/login")
    page.fill('input[name="user"]', user)
    page.fill('input[name="password"]', first or password)
    page.click('button[type="submit"]')
    if first is not None:  # the one-time password must be replaced first
        expect(page).to_have_url(f"{url}/password")
        page.fill('input[name="current"]', first)
        page.fill('input[name="new"]', password)
        page.fill('input[name="confirm"]', password)
        page.click('button[type="submit"]')
    expect(page.locator("h1")).to_have_text("Dashboard")


CONFIG = """
[[devices]]
name = "line1"
driver = "voice-modem"
port = "{link}"
options = {{ command_timeout = 1.0, ring_gone = 0.6 }}

[[agents]]
id = "alice"

[[queues]]
name = "support"
members = ["alice"]

[[routes]]
match = "line1"
queue = "support"
"""


def _technician_session(url: str, one_time: str, call: Any, tmp_path: Path) -> dict[str, Any]:
    sync_playwright, expect = _playwright()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page = context.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            _log_in(page, expect, url, "tech", PASSWORD, first=one_time)

            # --- the configuration: save with an error, see it at its line, fix it, apply it
            page.click("nav >> text=Configuration")
            expect(page.locator("h1")).to_have_text("Configuration")
            text = page.input_value("#config-text")
            broken = text.rstrip("\n") + '\n\n[[queues]]\nname = "sales <b>"\nmembers = ["alice"]\ntimeout = "soon"\n'
            bad_line = broken.splitlines().index('timeout = "soon"') + 1
            page.fill("#config-text", broken)
            page.click("button[value=apply]")
            expect(page.locator("#config-problems")).to_contain_text(f"line {bad_line}")
            expect(page.locator("#config-problems")).to_contain_text("queues[1].timeout")
            expect(page.locator(f"#line-{bad_line}")).to_have_class("error")
            expect(page.locator(f"#line-{bad_line}")).to_contain_text('timeout = "soon"')
            expect(page.locator("#config-diff")).to_contain_text('+name = "sales <b>"')
            page.screenshot(path=str(SCREENSHOTS / "config-error.png"), full_page=True)
            out["queues_after_error"] = call(lambda engine: sorted(q["name"] for q in engine.list_queues()))
            page.fill("#config-text", page.input_value("#config-text").replace('timeout = "soon"', "timeout = 20"))
            page.click("button[value=check]")
            expect(page.locator("#config-ok")).to_be_visible()
            page.click("button[value=apply]")
            expect(page.locator("#config-applied")).to_be_visible()
            expect(page.locator("#config-versions tbody tr")).to_have_count(2)
            page.screenshot(path=str(SCREENSHOTS / "config.png"), full_page=True)
            out["queues_after_apply"] = call(lambda engine: sorted(q["name"] for q in engine.list_queues()))

            # --- a recording found by its caller and played in the page's <audio>
            page.click("nav >> text=Recordings")
            page.fill('#search input[name="caller"]', "600111")
            page.click("#search button")
            expect(page.locator("#recordings tbody tr")).to_have_count(1)
            page.evaluate("() => document.querySelector('#recordings audio').play()")
            page.wait_for_function(
                "() => { const a = document.querySelector('#recordings audio'); return a.ended || a.currentTime > 0.3; }",
                timeout=20_000,
            )
            out["audio_duration"] = page.evaluate("() => document.querySelector('#recordings audio').duration")
            page.screenshot(path=str(SCREENSHOTS / "recordings.png"), full_page=True)
            page.click("nav >> text=Voicemail")
            page.screenshot(path=str(SCREENSHOTS / "voicemail.png"), full_page=True)

            # --- the device test button
            page.click("nav >> text=Devices")
            call(lambda engine: engine.devices.get("line1").wait_health(DeviceHealth.OK), wait=True)
            page.locator("#devices tr", has_text="line1").locator("button", has_text="Test this device").click()
            expect(page.locator("#device-test-summary")).to_contain_text("All checks passed", timeout=60_000)
            out["verdicts"] = page.locator("#device-test-report li").evaluate_all("els => els.map(e => e.dataset.verdict)")
            page.screenshot(path=str(SCREENSHOTS / "device-test.png"), full_page=True)

            # --- a backup downloaded, then restored (undoing what happened since)
            page.click("nav >> text=Backup")
            with page.expect_download() as info:
                page.click("#backup-download")
            archive = tmp_path / "downloaded.zip"
            info.value.save_as(archive)
            out["archive_size"] = archive.stat().st_size
            page.screenshot(path=str(SCREENSHOTS / "backup.png"), full_page=True)
            call(lambda engine: add_user(engine.store, "intruder", "admin"), wait=True)
            page.set_input_files('#restore-form input[type="file"]', str(archive))
            page.click("#restore-form button")
            expect(page.locator("#restore-done")).to_be_visible()
            expect(page.locator("#restart-needed")).to_contain_text("next start")
            page.screenshot(path=str(SCREENSHOTS / "restored.png"), full_page=True)
            out["users_after_restore"] = call(
                lambda engine: engine.store.fetchall("SELECT name FROM console_users ORDER BY name"), wait=True)
            # every session ended: the technician logs in again with the account from the backup
            page.goto("/config")
            expect(page).to_have_url(f"{url}/login?next=/config")
            _log_in(page, expect, url, "tech", PASSWORD)
            out["xss_ran"] = page.evaluate("() => window.__xss === 1")
            out["dialogs"] = dialogs
        finally:
            browser.close()
    return out


async def test_technician_pages_in_a_real_browser(tmp_path):
    async with trio.open_nursery() as nursery:
        emulator = VoiceModemEmulator(link_dir=str(tmp_path))
        await nursery.start(emulator.run)
        async with open_test_engine(CONFIG.format(link=emulator.link), plugins=[voice_plugin], data_dir=tmp_path) as engine:
            one_time = await add_user(engine.store, "tech", "admin")
            recording = engine.recordings_dir / "call-42.wav"
            recording.parent.mkdir(parents=True)
            with wave.open(str(recording), "wb") as w:
                w.setnchannels(2)
                w.setsampwidth(2)
                w.setframerate(8000)
                w.writeframes(b"\x10\x00\xf0\xff" * 8000)  # one second, caller left, agent right
            start = calendar.timegm(time.gmtime()) - 120
            await engine.store.write(
                'INSERT INTO cdr(src, dst, dcontext, clid, dstchannel, start, "end", duration, billsec, disposition, uniqueid) '
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                ("+34600111222", "100", "support", '"" <+34600111222>', "alice", start, start + 60, 60, 58, "ANSWERED", "call-42"),
            )
            token = trio.lowlevel.current_trio_token()

            def call(function: Any, *, wait: bool = False) -> Any:
                """Run ``function(engine)`` in the trio loop (awaiting its result when ``wait``)."""
                if wait:
                    async def run() -> Any:
                        return await function(engine)

                    return trio.from_thread.run(run, trio_token=token)
                return trio.from_thread.run_sync(lambda: function(engine), trio_token=token)

            with trio.fail_after(300):
                out = await trio.to_thread.run_sync(_technician_session, engine.console.url, one_time, call, tmp_path)
        nursery.cancel_scope.cancel()
    assert out["queues_after_error"] == ["support"]  # the broken text changed nothing
    assert out["queues_after_apply"] == ["sales <b>", "support"]
    assert 0.9 < out["audio_duration"] < 1.1  # the browser decoded the whole WAV (1 s)
    assert "PASS" in out["verdicts"] and "FAIL" not in out["verdicts"]
    assert out["archive_size"] > 0
    assert [u["name"] for u in out["users_after_restore"]] == ["admin", "tech"]  # "intruder" came after the backup
    assert out["xss_ran"] is False and out["dialogs"] == []
    for name in ("config-error", "config", "recordings", "device-test", "backup", "restored"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 0


# ------------------------------------------------------------------------------ dashboard + SIPp


def _sip_helpers() -> Any:
    path = Path(__file__).resolve().parents[2] / "integration" / "sip" / "sip_interop_helpers.py"
    spec = importlib.util.spec_from_file_location("sip_interop_helpers_console", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dashboard_session(url: str, one_time: str, ready: Any, caller: str) -> dict[str, Any]:
    sync_playwright, expect = _playwright()
    out: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page(base_url=url, viewport={"width": 1280, "height": 900})
            _log_in(page, expect, url, "sup", PASSWORD, first=one_time)
            expect(page.locator("#live-status")).to_have_text("live", timeout=15_000)
            page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page were reloaded
            expect(page.locator("#interactions")).not_to_contain_text(caller)
            ready()
            expect(page.locator("#interactions")).to_contain_text(caller, timeout=30_000)
            expect(page.locator("#interactions")).to_contain_text("queued")
            expect(page.locator("#events")).to_contain_text("QueueCallerJoin")
            out["same_document"] = page.evaluate("() => window.__sameDocument === true")
            page.screenshot(path=str(SCREENSHOTS / "dashboard-sipp-call.png"), full_page=True)
        finally:
            browser.close()
    return out


async def test_the_dashboard_shows_a_sipp_call_entering_a_queue_without_a_reload(tmp_path):
    import plugins.sip.plugin as sip_plugin

    helpers = _sip_helpers()
    caller_port = helpers.free_udp_port()
    config = (
        '[sip]\nlisten = ["udp:127.0.0.1:0"]\n'
        f'[[sip.trunks]]\nname = "sipp"\nserver = "sip:127.0.0.1:{caller_port}"\n'
        "\n[sip.security]\nrate = 100000\nburst = 100000\n" + helpers.FAST_TIMERS
        + '\n[[sip.users]]\nname = "1001"\npassword = "s3cret"\n'
        + '\n[[agents]]\nid = "alice"\nendpoint = "sip:1001"\n'
        + '\n[[queues]]\nname = "support"\nmembers = ["alice"]\ntimeout = 10\nwrapup = 0\n'
        + '\n[[routes]]\nmatch = "100"\nqueue = "support"\n'
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with open_test_engine(config, plugins=[sip_plugin], data_dir=tmp_path) as engine:
        one_time = await add_user(engine.store, "sup", "supervisor")
        target = f"127.0.0.1:{engine.channels['sip'].bound[0].port}"
        browser_ready = trio.Event()
        token = trio.lowlevel.current_trio_token()
        results: dict[str, Any] = {}

        async def browse() -> None:
            results["browser"] = await trio.to_thread.run_sync(
                _dashboard_session, engine.console.url, one_time,
                lambda: trio.from_thread.run_sync(browser_ready.set, trio_token=token), "600100200")

        async def phone() -> None:
            await browser_ready.wait()
            # nobody answers: the caller waits in the queue, then gives up (CANCEL) after 20 s
            results["sipp"] = await helpers.run_sipp(
                [target, "-sf", str(helpers.SCENARIOS / "cancel.xml"), "-s", "100", "-i", "127.0.0.1",
                 "-p", str(caller_port), "-m", "1", "-d", "20000"], deadline=90)

        with trio.fail_after(200):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(browse)
                nursery.start_soon(phone)
        assert results["browser"]["same_document"] is True
        assert results["sipp"].returncode == 0, helpers.describe(results["sipp"])
        with trio.fail_after(20):
            while not await engine.cdr():
                await trio.sleep(0.05)
        (row,) = await engine.cdr()
        assert row["dcontext"] == "support" and row["disposition"] == "NO ANSWER"
