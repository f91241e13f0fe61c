"""The devices page's "Test this device": the voice-modem conformance checks run against the emulated
modem (a pty) through the running driver, which pauses its session for the test and comes back
healthy; an unplugged device gets a failing report, not an error page."""

from __future__ import annotations

import httpx
import pytest
import trio

from engine.abc import DeviceHealth
from engine.console import add_token, add_user
from engine.testing import open_test_engine
from hardware.emulators import VoiceModemEmulator
from hardware.voice_modem import plugin as voice_plugin


def _config(link: str) -> str:
    return f"""
[[devices]]
name = "line1"
driver = "voice-modem"
port = "{link}"
options = {{ command_timeout = 1.0, ring_gone = 0.6 }}

[[queues]]
name = "support"
members = []

[[routes]]
match = "line1"
queue = "support"
"""


async def test_the_button_runs_the_conformance_checks_through_the_running_driver(tmp_path):
    async with trio.open_nursery() as nursery:
        emulator = VoiceModemEmulator(link_dir=str(tmp_path))
        await nursery.start(emulator.run)
        async with open_test_engine(_config(emulator.link), plugins=[voice_plugin], data_dir=tmp_path) as engine:
            line = engine.devices.get("line1")
            with trio.fail_after(30):
                await line.wait_health(DeviceHealth.OK)
            token = await add_token(engine.store, "tech", "admin")
            async with httpx.AsyncClient(base_url=engine.console.url, timeout=200,
                                         headers={"authorization": f"Bearer {token}"}) as client:
                r = await client.post("/api/v1/devices/line1/test")
                assert r.status_code == 200, r.text
                report = r.json()
                assert report["passed"] is True and report["driver"] == "voice-modem"
                ran = [x for x in report["results"] if not x["skipped"]]
                assert len(ran) >= 3 and all(x["passed"] for x in ran)
                assert any(x["transcript"] for x in ran)  # the device's own words are in the report
                # the driver took its port back
                with trio.fail_after(30):
                    await line.wait_health(DeviceHealth.OK)
                assert (await client.post("/api/v1/devices/nope/test")).status_code == 404
                assert (await client.post("/api/v1/devices/" + "x" * 300 + "/test")).status_code == 404

                # an unplugged modem: a report that says what failed
                emulator.pty.unplug()
                r = await client.post("/api/v1/devices/line1/test")
                assert r.status_code == 200 and r.json()["passed"] is False
                emulator.pty.replug()

            supervisor = await add_token(engine.store, "sup", "supervisor")
            async with httpx.AsyncClient(base_url=engine.console.url, timeout=30,
                                         headers={"authorization": f"Bearer {supervisor}"}) as client:
                assert (await client.post("/api/v1/devices/line1/test")).status_code == 403

            # the page: a button on the devices page (CSRF-protected form) and a pass/fail report
            one_time = await add_user(engine.store, "tech2", "admin")
            async with httpx.AsyncClient(base_url=engine.console.url, timeout=200) as browser:
                r = await browser.post("/api/v1/login", json={"user": "tech2", "password": one_time})
                r = await browser.post("/api/v1/password", json={"current": one_time, "new": "a long new password"},
                                       headers={"x-csrf-token": r.json()["csrf"]})
                csrf = r.json()["csrf"]
                with trio.fail_after(30):
                    await line.wait_health(DeviceHealth.OK)
                devices = await browser.get("/devices")
                assert 'action="/devices/line1/test"' in devices.text and "Test this device" in devices.text
                assert (await browser.post("/devices/line1/test")).status_code == 403  # no CSRF token
                r = await browser.post("/devices/line1/test", data={"csrf_token": csrf})
                assert r.status_code == 200, r.text
                assert 'id="device-test-summary"' in r.text and "All checks passed." in r.text
                assert 'data-verdict="PASS"' in r.text and 'data-verdict="FAIL"' not in r.text
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("family", ["gsm-modem", "dtmf-board"])
async def test_the_other_families_are_tested_through_their_drivers_too(tmp_path, family):
    from hardware.dtmf_board import plugin as board_plugin
    from hardware.emulators import DtmfBoardEmulator, GsmModemEmulator
    from hardware.gsm_modem import plugin as gsm_plugin

    emulator = (GsmModemEmulator if family == "gsm-modem" else DtmfBoardEmulator)(link_dir=str(tmp_path))
    plugin = gsm_plugin if family == "gsm-modem" else board_plugin
    config = f'[[devices]]\nname = "dev"\ndriver = "{family}"\nport = "{emulator.link}"\n'
    async with trio.open_nursery() as nursery:
        await nursery.start(emulator.run)
        async with open_test_engine(config, plugins=[plugin], data_dir=tmp_path) as engine:
            device = engine.devices.get("dev")
            with trio.fail_after(30):
                await device.wait_health(DeviceHealth.OK)
            token = await add_token(engine.store, "tech", "admin")
            async with httpx.AsyncClient(base_url=engine.console.url, timeout=200,
                                         headers={"authorization": f"Bearer {token}"}) as client:
                r = await client.post("/api/v1/devices/dev/test")
            assert r.status_code == 200, r.text
            report = r.json()
            assert report["passed"] is True, report
            assert [x for x in report["results"] if not x["skipped"]]
            with trio.fail_after(30):
                await device.wait_health(DeviceHealth.OK)
        nursery.cancel_scope.cancel()
