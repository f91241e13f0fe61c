"""Trunks against a SIPp 'provider': digest registration, refresh before expiry, 423, failure backoff."""

from __future__ import annotations

import pytest
import trio

from sip_interop_helpers import FAST_TIMERS, SCENARIOS, describe, free_udp_port, run_sipp

pytestmark = pytest.mark.interop


def trunk(port: int, *, expires: int = 60) -> str:
    return f"""
[[sip.trunks]]
name = "itsp"
server = "sip:127.0.0.1:{port}"
username = "acct"
password = "provider-secret"
register = true
expires = {expires}
"""


async def _provider(scenario: str, port: int, results: list) -> None:
    results.append(await run_sipp(["-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port), "-m", "1"]))


async def test_trunk_registers_with_digest_and_refreshes_before_expiry(sip_engine) -> None:
    port = free_udp_port()
    results: list = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_provider, "provider_registrar.xml", port, results)
        async with sip_engine(sip=trunk(port)) as (engine, channel):
            with trio.fail_after(30):
                while not results:
                    await trio.sleep(0.05)
            state = channel.statistics()["trunks"]["itsp"]
    assert results[0].returncode == 0, describe(results[0])
    assert state["state"] == "registered" and state["granted_expires"] == 60


async def test_trunk_follows_423_min_expires(sip_engine) -> None:
    port = free_udp_port()
    results: list = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_provider, "provider_423.xml", port, results)
        async with sip_engine(sip=trunk(port, expires=600)) as (engine, channel):
            with trio.fail_after(30):
                while not results:
                    await trio.sleep(0.05)
            with trio.fail_after(10):
                while channel.statistics()["trunks"]["itsp"]["state"] != "registered":
                    await trio.sleep(0.05)
            assert channel.trunks.trunks["itsp"].expires == 7200
    assert results[0].returncode == 0, describe(results[0])


async def test_unreachable_provider_is_reported_and_retried_with_backoff(sip_engine) -> None:
    port = free_udp_port()  # nobody answers there
    # A short T1: each unanswered REGISTER gives up after 64*T1 (Timer F).
    timers = FAST_TIMERS.replace("t1 = 0.1", "t1 = 0.02")
    async with sip_engine(sip=trunk(port), timers=timers) as (engine, channel):
        async with engine.bus.subscribe("trunk") as events:
            with trio.fail_after(30):
                while True:
                    event = await events.receive()
                    if event.event == "SipTrunkStatus" and event.fields["State"] == "failed":
                        break
            with trio.fail_after(30):
                while channel.trunks.trunks["itsp"].failures < 2:
                    await trio.sleep(0.05)
        assert channel.statistics()["trunks"]["itsp"]["last_error"] == "no answer from the provider"
