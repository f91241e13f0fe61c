"""Opt-outs from any channel reach the dialer: an SMS "STOP" (through the real SMS channel and the SMSC
simulator over SMPP) means no call to that number, in every campaign, also after a restart."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import trio

from engine import hookimpl
from engine.testing import FakeVoiceChannel, open_test_engine
from plugins.sms import plugin as sms_plugin
from plugins.sms.simulator import SmscSimulator

CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"

[sms]
address = "900100"
smpp = "smpp://centralita:secret@127.0.0.1:{port}"
enquire_interval = 0.5
response_timeout = 2.0
reconnect_backoff = 0.05
reconnect_backoff_max = 0.2

[[campaigns]]
name = "{campaign}"
mode = "progressive"
agents = ["alice"]
caller_id = "+34910000000"
ring_timeout = 15
[campaigns.schedule]
start = "00:00"
end = "23:59"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
timezone = "UTC"
"""

STOPPED, OTHER = "+15551234567", "+15551234568"


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)


async def add_leads(engine: Any, campaign: str, numbers: list[str], prefix: str) -> None:
    await engine.store.write_many([
        ("INSERT INTO dialer_leads(campaign, lead, numbers, fields, imported) VALUES (?,?,?,?,?)",
         (campaign, f"{prefix}-{i}", json.dumps([n]), "{}", time.time()))
        for i, n in enumerate(numbers)
    ])


async def audit(engine: Any, campaign: str) -> list[dict[str, Any]]:
    rows = await engine.store.fetchall("SELECT record FROM dialer_audit WHERE campaign = ? ORDER BY seq", (campaign,))
    return [json.loads(r["record"]) for r in rows]


async def wait_for_refusal(engine: Any, campaign: str, number: str) -> dict[str, Any]:
    with trio.fail_after(20):
        while True:
            refused = [r for r in await audit(engine, campaign) if r["kind"] == "refused" and r["number"] == number]
            if refused:
                return refused[0]
            await trio.sleep(0.05)


async def test_sms_stop_keeps_the_number_off_every_campaign_even_after_a_restart(nursery, tmp_path: Path) -> None:
    smsc = SmscSimulator()
    await nursery.start(smsc.run)
    config = CONFIG.format(port=smsc.port, campaign="renewals")
    async with open_test_engine(config, plugins=[sms_plugin, Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        voice.register("fake:alice")
        with trio.fail_after(20):
            await smsc.wait_for(lambda: smsc.bound_count == 1)
        await smsc.deliver(STOPPED, "900100", "STOP")
        with trio.fail_after(20):
            while await engine.store.fetchone("SELECT 1 AS x FROM msg_do_not_contact WHERE address = ?", (STOPPED,)) is None:
                await trio.sleep(0.05)
        await add_leads(engine, "renewals", [STOPPED, OTHER], "a")
        refusal = await wait_for_refusal(engine, "renewals", STOPPED)
        assert refusal["detail"]["reason"] == "do-not-call (opt-out:sms)"
        with trio.fail_after(20):
            while OTHER not in voice.dialed:
                await trio.sleep(0.05)
        opt_outs = [r for r in await audit(engine, "renewals") if r["kind"] == "opt-out"]
        assert [(r["number"], r["detail"]["channel"]) for r in opt_outs] == [(STOPPED, "sms")]
        assert STOPPED not in voice.dialed

    # A new campaign after a restart, with the number imported again: still never dialed.
    config = CONFIG.format(port=smsc.port, campaign="winback")
    async with open_test_engine(config, plugins=[sms_plugin, Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        voice.register("fake:alice")
        await add_leads(engine, "winback", [STOPPED], "b")
        refusal = await wait_for_refusal(engine, "winback", STOPPED)
        assert refusal["detail"]["reason"] == "do-not-call (opt-out:sms)"
        assert voice.dialed == []


def test_which_opt_out_addresses_are_numbers() -> None:
    from engine.dialing.leads import opt_out_number

    assert opt_out_number("+1 (555) 123-4567") == STOPPED  # not a valid US range, still the sender's number
    assert opt_out_number("tel:+15551234567;phone-context=x") == STOPPED
    assert opt_out_number("600 111 222", "ES") == "+34600111222"
    assert opt_out_number("someone@example.com") is None
    assert opt_out_number("+1;ATH") is None
    assert opt_out_number("") is None
    assert opt_out_number("9" * 5000) is None
