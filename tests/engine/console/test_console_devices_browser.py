"""The devices page in headless Chromium: a headset's level meter follows DeviceLevel events live over
the events WebSocket (no reload), for a device whose name is hostile HTML. Screenshot in
``build/screenshots/console/devices-levels.png``."""

from __future__ import annotations

from typing import Any

import trio

from .test_console_browser import CHROMIUM, SCREENSHOTS, XSS, _require_browser

HEADSET = f'desk "1" {XSS}'


def _status_with_headset(base: dict) -> dict:
    return {**base, "devices": {HEADSET: {"health": "ok", "driver": "headset", "device": "Jabra", "rate": 48000},
                                "gsm1": {"health": "ok", "driver": "gsm_modem", "model": "SIM800", "sim": "READY",
                                         "signal": 18}}}  # fmt: skip


def _browser(console: Any, password: str) -> dict[str, Any]:
    sync_playwright, expect = _require_browser()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    outcome: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 900}).new_page()
            page.goto("/login?next=/devices")
            page.fill('input[name="user"]', "tech")
            page.fill('input[name="password"]', password)
            page.click('button[type="submit"]')
            expect(page.locator("h1")).to_have_text("Devices and lines")
            expect(page.locator("#live-status")).to_have_text("live", timeout=15_000)
            page.evaluate("() => { window.__same_page = true; }")  # gone if the page reloaded
            text = page.locator('#audio-devices .level-text[data-direction="input"]')
            expect(text).to_have_text("–")

            def levels(device: str, inp: float, out: float) -> None:
                trio.from_thread.run_sync(lambda: console.bus.publish("DeviceLevel", Device=device, InputDbfs=inp, OutputDbfs=out))

            levels("someone else", -3.0, -3.0)  # another device's level must not move this meter
            levels(HEADSET, -12.3, -80.0)
            expect(text).to_have_text("-12.3 dBFS", timeout=15_000)
            expect(page.locator('#audio-devices .level-text[data-direction="output"]')).to_have_text("silent")
            outcome["meter"] = page.evaluate(
                "() => [...document.querySelectorAll('#audio-devices meter.level')].map(m => [m.dataset.direction, m.value])"
            )
            outcome["same_page"] = page.evaluate("() => window.__same_page === true")
            outcome["xss_ran"] = page.evaluate("() => window.__xss === 1")
            page.screenshot(path=str(SCREENSHOTS / "devices-levels.png"), full_page=True)
        finally:
            browser.close()
    return outcome


async def test_level_meter_follows_device_level_events_live(console):
    status = _status_with_headset(console.engine.status())
    console.engine.status = lambda: status  # type: ignore[method-assign]
    client, _ = await console.logged_in("tech", "admin")
    await client.aclose()
    with trio.fail_after(180):
        outcome = await trio.to_thread.run_sync(_browser, console, "correct horse battery")
    assert outcome["same_page"] is True and outcome["xss_ran"] is False
    assert sorted(outcome["meter"]) == [["input", -12.3], ["output", -60]]  # the meter's scale stops at -60 dBFS
    assert (SCREENSHOTS / "devices-levels.png").stat().st_size > 0
