"""Outbound calls reaching agents: ``connect_agent`` to a baresip phone with audio checked both ways,
a queued callback dialed through SIP end to end (``Engine.dial_callback``), and one progressive
dialer call through SIP to a SIPp customer connected to a baresip agent."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import trio
from baresip_agent import baresip_agent, dominant_frequency, loud, read_wav, tone
from sip_interop_helpers import SCENARIOS, describe, free_udp_port, run_sipp

from engine import Direction, InteractionKind
from engine.media import decode_ulaw, encode_ulaw
from engine.routing import CallbackRequest
from engine.testing import wait_until

pytestmark = pytest.mark.interop

CALLER_ID = "+34910000000"

AGENT = """
[[sip.users]]
name = "1001"
password = "s3cret"
"""

CONTACT_CENTER = """
[[agents]]
id = "alice"
endpoint = "sip:1001"

[[queues]]
name = "support"
members = ["alice"]
timeout = 10
wrapup = 0
"""


def carrier(port: int) -> str:
    return f'\n[[sip.trunks]]\nname = "carrier"\nserver = "sip:127.0.0.1:{port}"\noutbound = true\ndial = ["_X.", "_+X."]\n'


async def cdr_rows(engine, uniqueid: str) -> list[dict]:
    """The CDR rows of one interaction, once written (the record is written just after the hang-up)."""
    with trio.fail_after(20):
        while True:
            rows = [r for r in await engine.cdr() if r["uniqueid"] == uniqueid]
            if rows:
                return rows
            await trio.sleep(0.05)


class CustomerAudio:
    """The customer's phone media (its SIP side is SIPp): says a 1 kHz tone, keeps what it hears."""

    def __init__(self) -> None:
        self.sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        self.heard: list[np.ndarray] = []

    async def bind(self) -> int:
        await self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    async def talk(self, destination: tuple[str, int]) -> None:
        """Send 20 ms PCMU packets of a 1000 Hz tone at the real-time pace a phone would."""
        samples = tone(1000.0, 60.0)
        seq, ts, start = 0, 0, trio.current_time()
        for offset in range(0, len(samples), 160):
            packet = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts, 0x1234ABCD) + encode_ulaw(samples[offset : offset + 160])
            await self.sock.sendto(packet, destination)
            seq, ts = seq + 1, ts + 160
            await trio.sleep_until(start + seq * 0.02)

    async def listen(self) -> None:
        while True:
            data = await self.sock.recv(2048)
            if len(data) > 12 and data[1] & 0x7F == 0:
                self.heard.append(decode_ulaw(data[12:]))

    def heard_audio(self) -> np.ndarray:
        return np.concatenate(self.heard) if self.heard else np.zeros(0, dtype=np.int16)


async def test_connect_agent_bridges_audio_both_ways_and_the_customers_bye_ends_both_legs(sip_engine, tmp_path: Path) -> None:
    port = free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=AGENT + carrier(port)) as (engine, channel):
        async with baresip_agent(channel, tmp_path, frequency=440.0) as phone:
            customer = CustomerAudio()
            rtp_port = await customer.bind()
            interaction = engine.new_interaction(
                InteractionKind.VOICE, Direction.OUTBOUND, from_=CALLER_ID, to="600123456", channel="sip"
            )
            results: dict = {}
            async with trio.open_nursery() as nursery:

                async def callee() -> None:
                    # The customer talks for 10 s after answering, then hangs up.
                    results["sipp"] = await run_sipp(
                        ["-sf", str(SCENARIOS / "callee_media_at.xml"), "-set", "rtp_port", str(rtp_port),
                         "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-d", "10000"]
                    )

                nursery.start_soon(callee)
                result = await channel.dial(interaction, "600123456", caller_id=CALLER_ID, ring_timeout=10)
                assert result.outcome == "answered", result
                async with trio.open_nursery() as media:
                    media.start_soon(customer.listen)
                    media.start_soon(customer.talk, channel.media_of(interaction).local_address)
                    assert await channel.connect_agent(interaction, "alice", "sip:1001"), phone.log()
                    assert interaction.agent == "alice"
                    # The agent's 440 Hz reaches the customer through the engine's bridge...
                    await wait_until(lambda: len(loud(customer.heard_audio())) >= 8000, timeout=20)
                    # ...and the customer's BYE ends the call: the agent's leg too, with a CDR.
                    await wait_until(lambda: interaction.state.value == "ended", timeout=30)
                    media.cancel_scope.cancel()
            assert results["sipp"].returncode == 0, describe(results["sipp"])
            heard = loud(customer.heard_audio())
            assert abs(dominant_frequency(heard, 8000) - 440) < 15
            # The agent's phone was hung up by the engine (no call left on it).
            calls = await phone.command("listcalls")
            assert "Active calls (0)" in calls["data"], calls
        # What the agent heard (sndfile's recording of decoded audio) is the customer's 1 kHz tone.
        (recording,) = phone.recordings("dec")
        samples, rate = read_wav(recording)
        assert abs(dominant_frequency(loud(samples), rate) - 1000) < 15
        rows = await cdr_rows(engine, interaction.id)
        assert len(rows) == 1 and rows[0]["disposition"] == "ANSWERED" and rows[0]["dstchannel"] == "alice"
        assert engine.media.statistics()["endpoints"] == 0


async def test_connect_agent_to_an_unregistered_phone_leaves_the_customer_up(sip_engine) -> None:
    port = free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=AGENT + carrier(port)) as (engine, channel):
        interaction = engine.new_interaction(
            InteractionKind.VOICE, Direction.OUTBOUND, from_=CALLER_ID, to="600123456", channel="sip"
        )
        results: dict = {}
        async with trio.open_nursery() as nursery:

            async def callee() -> None:
                results["sipp"] = await run_sipp(["-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m", "1"])

            nursery.start_soon(callee)
            assert (await channel.dial(interaction, "600123456", caller_id=CALLER_ID, ring_timeout=10)).outcome == "answered"
            assert await channel.connect_agent(interaction, "alice", "sip:1001") is False
            assert channel.calls.calls[interaction.id].caller.state.value == "answered"
            await channel.hangup(interaction)
        assert results["sipp"].returncode == 0, describe(results["sipp"])


async def test_queued_callback_dials_the_customer_over_sip_and_connects_the_agent(sip_engine, tmp_path: Path) -> None:
    port = free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=AGENT + carrier(port)) as (engine, channel):
        async with baresip_agent(channel, tmp_path) as phone:
            results: dict = {}
            async with trio.open_nursery() as nursery:

                async def customer() -> None:
                    # SIPp's uas answers and waits for the engine's BYE.
                    results["sipp"] = await run_sipp(["-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m", "1"])

                nursery.start_soon(customer)
                # What an IVR "callback" node does: the caller asks to be called back, keeps their place
                # in the queue, and hangs up.
                request = engine.new_interaction(
                    InteractionKind.VOICE, Direction.INBOUND, from_="600777888", to="100", channel="sip"
                )
                engine.acd.enqueue(request, "support", callback=CallbackRequest("req-sip-1", "600777888"))
                await engine.end_interaction(request, cause="callback-requested")

                def callback_call():
                    return next((i for i in engine.all_interactions() if i.attributes.get("callback_attempt")), None)

                await wait_until(lambda: callback_call() is not None and callback_call().agent == "alice", timeout=30)
                call = callback_call()
                assert call.to == "600777888" and call.state.value == "active"
                # The agent hangs up on the phone: BYE from the agent's side ends the customer's leg too.
                await phone.command("hangup")
                await wait_until(lambda: call.state.value in ("ended", "wrapup"), timeout=20)
            assert results["sipp"].returncode == 0, describe(results["sipp"])
        rows = await cdr_rows(engine, call.id)
        assert len(rows) == 1 and rows[0]["disposition"] == "ANSWERED" and rows[0]["dst"] == "600777888"
        done = await engine.store.fetchone("SELECT value FROM kv WHERE component = 'callbacks' AND key = ?", ("req-sip-1#1",))
        assert done is not None and done["value"] == "answered"


DIALER = """
[[campaigns]]
name = "smoke"
mode = "progressive"
agents = ["alice"]
caller_id = "+34910000000"
ring_timeout = 15
amd = false
[campaigns.schedule]
start = "00:00"
end = "23:59"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
timezone = "UTC"
"""


async def test_progressive_campaign_places_one_call_through_sip_and_connects_the_agent(sip_engine, tmp_path: Path) -> None:
    port = free_udp_port()
    async with sip_engine(CONTACT_CENTER + DIALER, sip=AGENT + carrier(port)) as (engine, channel):
        async with baresip_agent(channel, tmp_path) as phone:
            results: dict = {}
            async with trio.open_nursery() as nursery:

                async def customer() -> None:
                    results["sipp"] = await run_sipp(["-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m", "1"])

                nursery.start_soon(customer)
                await engine.store.write_many([
                    ("INSERT INTO dialer_leads(campaign, lead, numbers, fields, imported) VALUES (?,?,?,?,?)",
                     ("smoke", "lead-1", json.dumps(["+34600123456"]), "{}", time.time())),
                ])

                def campaign_call():
                    return next((i for i in engine.all_interactions() if i.attributes.get("campaign") == "smoke"), None)

                await wait_until(lambda: campaign_call() is not None and campaign_call().agent == "alice"
                                 and campaign_call().state.value == "active", timeout=40)
                call = campaign_call()
                await wait_until(lambda: call.id in channel.calls.calls and channel.calls.calls[call.id].connected_agent is not None)
                await phone.command("hangup")
                await wait_until(lambda: call.state.value in ("ended", "wrapup"), timeout=20)
            assert results["sipp"].returncode == 0, describe(results["sipp"])
        rows = await cdr_rows(engine, call.id)
        assert len(rows) == 1 and rows[0]["disposition"] == "ANSWERED"
        audit = await engine.store.fetchall("SELECT kind FROM dialer_audit WHERE campaign = 'smoke' ORDER BY seq")
        kinds = [row["kind"] for row in audit]
        assert kinds.count("dial") == 1 and "connect" in kinds, kinds


async def test_connect_agent_to_a_busy_phone_is_false_and_the_customer_stays_up(sip_engine) -> None:
    port, agent_port = free_udp_port(), free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=AGENT + carrier(port)) as (engine, channel):
        target = f"127.0.0.1:{channel.bound[0].port}"
        registered = await run_sipp(
            [target, "-sf", str(SCENARIOS / "register_digest.xml"), "-s", "1001", "-au", "1001", "-ap", "s3cret",
             "-i", "127.0.0.1", "-p", str(agent_port), "-m", "1"]
        )
        assert registered.returncode == 0, describe(registered)
        interaction = engine.new_interaction(
            InteractionKind.VOICE, Direction.OUTBOUND, from_=CALLER_ID, to="600123456", channel="sip"
        )
        results: dict = {}
        async with trio.open_nursery() as nursery:

            async def run(name: str, args: list[str]) -> None:
                results[name] = await run_sipp(args)

            nursery.start_soon(run, "customer", ["-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m", "1"])
            nursery.start_soon(run, "agent", ["-sf", str(SCENARIOS / "agent_busy.xml"), "-i", "127.0.0.1", "-p", str(agent_port), "-m", "1"])
            assert (await channel.dial(interaction, "600123456", caller_id=CALLER_ID, ring_timeout=10)).outcome == "answered"
            assert await channel.connect_agent(interaction, "alice", "sip:1001") is False
            call = channel.calls.calls[interaction.id]
            assert call.caller.state.value == "answered" and call.agents == []
            assert channel.media_of(interaction) is not None
            await channel.hangup(interaction)
        for name in ("customer", "agent"):
            assert results[name].returncode == 0, f"{name}: " + describe(results[name])
