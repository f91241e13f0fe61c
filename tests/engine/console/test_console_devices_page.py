"""The devices page: SIP registrations and trunks with their round-trip time, serial devices (model,
signal, SIM, caller ID) and audio devices with level meters, everything a peer or a device wrote escaped."""

from __future__ import annotations

import contextlib
import html
import re

EVIL = '<script>alert("x")</script>'


def _status(engine_status: dict) -> dict:
    return {
        **engine_status,
        "channels": {
            "sip": {
                "registrations": {
                    "registered": 3,
                    "contacts": [
                        {"user": "1001", "contact": f"sip:1001@10.0.0.5:5060;x={EVIL}", "transport": "udp",
                         "expires_in": 3541, "reachable": True, "rtt_ms": 12.3, "user_agent": EVIL},
                        {"user": EVIL, "contact": "sip:evil@10.0.0.6", "transport": "tcp",
                         "expires_in": 60, "reachable": False, "rtt_ms": None},
                        "not a contact", 17,  # a malformed entry is skipped, not a crash
                    ],
                },
                "trunks": {
                    "itsp": {"state": "failed", "last_error": f"403 {EVIL}", "rtt_ms": 48.25, "reachable": True},
                    EVIL: {"state": "registered", "last_error": "", "rtt_ms": None, "reachable": None},
                    "odd": "registered",
                },
            },
        },
        "devices": {
            "gsm1": {"health": "ok", "driver": "gsm_modem", "model": EVIL, "sim": "READY", "signal": 20,
                     "registration": "home"},
            "modem1": {"health": "degraded", "driver": "voice_modem", "model": "USR5637", "caller_id": True,
                       "last_caller_id": {"number": "+34911", "name": EVIL, "time": "10:00"}},
            EVIL: {"health": "ok", "driver": "headset", "device": "Jabra", "rate": 48000},
        },
    }


def _row_cells(text: str, table_id: str) -> list[list[str]]:
    section = re.search(rf'<table id="{table_id}">(.*?)</table>', text, re.DOTALL)
    assert section, f"no table {table_id}"
    rows = re.findall(r"<tr>(.*?)</tr>", section.group(1), re.DOTALL)[1:]  # the first row is the header
    return [re.findall(r"<td>(.*?)</td>", row, re.DOTALL) for row in rows]


async def test_devices_page_tables_show_rtt_signal_and_meters_escaped(console):
    status = _status(console.engine.status())
    console.engine.status = lambda: status  # type: ignore[method-assign]
    admin, _ = await console.logged_in("tech", "admin")
    async with contextlib.aclosing(admin):
        r = await admin.get("/devices")
    assert r.status_code == 200
    assert "<script>alert" not in r.text  # nothing a phone, provider or device wrote runs in the page
    escaped = html.escape(EVIL, quote=True)

    registrations = _row_cells(r.text, "registrations")
    assert registrations[0][:6] == ["1001", f"sip:1001@10.0.0.5:5060;x={escaped}", "udp", "3541 s", "12.3 ms", "yes"]
    assert registrations[1][0] == escaped and registrations[1][4:6] == ["–", "no"]
    assert len(registrations) == 2

    trunks = {row[0]: row for row in _row_cells(r.text, "trunks")}
    assert trunks["itsp"] == ["itsp", "failed", f"403 {escaped}", "48.2 ms", "yes"]
    assert trunks[escaped][1:] == ["registered", "–", "–", "–"]
    assert "odd" not in trunks

    serial = {row[0]: row for row in _row_cells(r.text, "devices")}
    assert serial["gsm1"][1:6] == ["ok", escaped, "20/31 (-73 dBm)", "READY", "–"]
    assert serial["modem1"][1:6] == ["degraded", "USR5637", "–", "–", f"+34911 {escaped} 10:00"]
    assert "Test this device" in serial["gsm1"][7]

    audio = _row_cells(r.text, "audio-devices")
    assert len(audio) == 1 and audio[0][0] == escaped
    assert '<meter class="level"' in audio[0][2] and f'data-device="{escaped}"' in audio[0][2]
    assert 'data-direction="output"' in audio[0][3]


async def test_devices_page_survives_a_status_of_the_wrong_shape(console):
    console.engine.status = lambda: {"channels": ["sip"], "devices": {"x": "ok", "y": None}}  # type: ignore[method-assign]
    admin, _ = await console.logged_in("tech3", "admin")
    async with contextlib.aclosing(admin):
        r = await admin.get("/devices")
    assert r.status_code == 200
    assert "No phone is registered." in r.text and "No [[sip.trunks]] configured." in r.text
    assert {row[0] for row in _row_cells(r.text, "devices")} == {"x", "y"}
