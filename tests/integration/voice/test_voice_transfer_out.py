"""An IVR ``transfer`` node to an outside number on a real SIP call: a baresip caller (saying 500 Hz)
is sent by the flow to 600123456, which goes out through the outbound trunk to a SIPp party (its media
is the test's own UDP socket, saying 900 Hz back). The two hear each other through the engine, the
outside party sees the caller's number, and when it hangs up the caller is hung up too; both halves
get a CDR. A number the dial check refuses hangs the caller up with ``transfer-failed``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trio
from baresip_agent import baresip_agent, dominant_frequency
from sip_interop_helpers import describe, free_udp_port, run_sipp
from voice_helpers import (
    PHONES,
    ToneResponder,
    cdr_row,
    count_frames_at,
    dial,
    frame_tones,
    heard,
)

from engine.testing import wait_until

pytestmark = pytest.mark.interop

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "outside_party.xml"
SIP_SCENARIOS = Path(__file__).resolve().parents[1] / "sip" / "scenarios"
CALLER_HZ, OUTSIDE_HZ = 500.0, 900.0


def config(destination: str) -> str:
    return f"""
[[flows]]
name = "main"
start = "out"

[flows.nodes.out]
type = "transfer"
to = "{destination}"

[[routes]]
match = "100"
flow = "main"
"""


def carrier(port: int) -> str:
    return f'\n[[sip.trunks]]\nname = "carrier"\nserver = "sip:127.0.0.1:{port}"\noutbound = true\ndial = ["_X."]\n'


async def test_an_ivr_transfer_to_an_outside_number_goes_out_through_the_trunk(voice_engine, tmp_path):
    sip_port = free_udp_port()
    outside = ToneResponder(OUTSIDE_HZ, ssrc=0x1234)
    await outside.sock.bind(("127.0.0.1", 0))
    rtp_port = outside.sock.getsockname()[1]
    results: dict = {}
    async with voice_engine(config("600123456"), sip=PHONES + carrier(sip_port)) as (engine, channel):
        events: list = []
        engine.bus.add_listener(events.append)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outside.run)

            async def party() -> None:
                results["sipp"] = await run_sipp(["-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(sip_port),
                                                  "-m", "1", "-d", "4000", "-set", "rtp_port", str(rtp_port)])

            nursery.start_soon(party)
            async with baresip_agent(channel, tmp_path, user="2001", frequency=CALLER_HZ) as caller:
                await dial(caller, channel, "100")
                with trio.fail_after(60):
                    while "sipp" not in results:  # the outside party hangs up after talking for 4 s
                        await trio.sleep(0.05)
                assert results["sipp"].returncode == 0, describe(results["sipp"])
                # ... and the engine hangs the caller up.
                await wait_until(lambda: not channel.calls.calls, timeout=20)
            nursery.cancel_scope.cancel()
        # The caller's interaction ends when the transfer is done (its CDR: answered by the flow); the
        # outside party's call is an interaction of its own, ended by its BYE.
        causes = {e.fields["Cause"]: e.interaction for e in events if e.event == "Hangup"}
        assert set(causes) == {"transferred", "caller"}, causes
        inbound = await cdr_row(engine, causes["transferred"])
        assert inbound["disposition"] == "ANSWERED" and inbound["dst"] == "100" and inbound["src"] == "2001"
        with trio.fail_after(20):
            while not (rows := [r for r in await engine.cdr() if r["dst"] == "600123456"]):
                await trio.sleep(0.05)
        (outbound,) = rows
        assert outbound["disposition"] == "ANSWERED" and outbound["src"] == "2001"
        assert engine.media.statistics()["endpoints"] == 0

    said_by_caller = np.concatenate(outside.heard)
    loud = said_by_caller[np.abs(said_by_caller) > 1000]
    assert len(loud) >= 8000 and abs(dominant_frequency(said_by_caller, 8000) - CALLER_HZ) < 15
    assert count_frames_at(frame_tones(heard(caller)), OUTSIDE_HZ) >= 50  # 1 s and more of the outside party


async def test_a_transfer_to_a_refused_number_hangs_the_caller_up(voice_engine, tmp_path):
    sip_port = free_udp_port()  # nothing listens there: nothing may be dialled
    async with voice_engine(config("+34-91-000"), sip=PHONES + carrier(sip_port)) as (engine, channel):
        events: list = []
        engine.bus.add_listener(events.append)
        async with baresip_agent(channel, tmp_path, user="2001") as caller:
            await dial(caller, channel, "100")
            # The refusal is immediate: the call may be over before a poll could see it in the flow.
            await wait_until(lambda: [e for e in events if e.event == "Hangup"], timeout=20)
            await wait_until(lambda: not channel.calls.calls, timeout=20)  # the caller was hung up
        (hangup,) = [e for e in events if e.event == "Hangup"]
        assert hangup.fields["Cause"] == "transfer-failed"
        row = await cdr_row(engine, hangup.interaction)
        assert row["dst"] == "100" and row["disposition"] == "ANSWERED"
        assert [r["uniqueid"] for r in await engine.cdr()] == [hangup.interaction]  # no outbound call was made
        assert channel.outbound.statistics()["dialed"] == 0


async def test_an_ivr_transfer_to_a_registered_sip_user_bridges_the_caller(voice_engine, tmp_path):
    """The same node with an extension: the user's baresip phone (1300 Hz) rings, answers, and the two
    phones hear each other through the caller's RTP endpoint (the IVR had answered it)."""
    async with voice_engine(config("1001"), sip=PHONES) as (engine, channel):
        events: list = []
        engine.bus.add_listener(events.append)
        async with baresip_agent(channel, tmp_path, user="1001", frequency=1300.0) as agent, \
                baresip_agent(channel, tmp_path, user="2001", frequency=CALLER_HZ) as caller:
            await dial(caller, channel, "100")
            await wait_until(lambda: [e for e in events if e.event == "Hangup"], timeout=20)  # the flow is done
            (call,) = channel.calls.calls.values()
            agent_leg = call.connected_agent.media_leg.endpoint
            await wait_until(lambda: agent_leg.packets_in >= 100 and call.anchor.endpoint.packets_in >= 100, timeout=20)
            await caller.command("hangup")
            await wait_until(lambda: not channel.calls.calls, timeout=20)  # the agent's leg went with it
        (hangup,) = [e for e in events if e.event == "Hangup"]
        assert hangup.fields["Cause"] == "transferred"
    assert count_frames_at(frame_tones(heard(caller)), 1300.0) >= 50
    assert count_frames_at(frame_tones(heard(agent)), CALLER_HZ) >= 50


async def test_a_transfer_to_a_busy_outside_number_hangs_the_caller_up(voice_engine, tmp_path):
    """The SIPp party behind the trunk answers 486: the outside call's CDR says BUSY, the caller is hung
    up with ``transfer-failed``, and no RTP endpoint is left open."""
    sip_port = free_udp_port()
    async with voice_engine(config("600123456"), sip=PHONES + carrier(sip_port)) as (engine, channel):
        events: list = []
        engine.bus.add_listener(events.append)
        results: dict = {}
        async with trio.open_nursery() as nursery:

            async def party() -> None:
                results["sipp"] = await run_sipp(["-sf", str(SIP_SCENARIOS / "agent_busy.xml"), "-i", "127.0.0.1",
                                                  "-p", str(sip_port), "-m", "1"])

            nursery.start_soon(party)
            async with baresip_agent(channel, tmp_path, user="2001") as caller:
                await dial(caller, channel, "100")
                await wait_until(lambda: len([e for e in events if e.event == "Hangup"]) == 2, timeout=30)
                await wait_until(lambda: not channel.calls.calls, timeout=20)
        assert results["sipp"].returncode == 0, describe(results["sipp"])
        causes = {e.fields["Cause"]: e.interaction for e in events if e.event == "Hangup"}
        assert set(causes) == {"busy", "transfer-failed"}, causes
        outside = await cdr_row(engine, causes["busy"])
        assert outside["disposition"] == "BUSY" and outside["dst"] == "600123456"
        assert (await cdr_row(engine, causes["transfer-failed"]))["dst"] == "100"
        await wait_until(lambda: engine.media.statistics()["endpoints"] == 0, timeout=10)
