"""Outbound calls (``SipChannel.dial``) against SIPp customers behind a trunk: answered, early media,
busy, not found, never answering (CANCEL at the ring timeout), a provider that challenges with 401, a
registered user with two phones, the customer's RFC 4733 digits, and a prompt played to the customer."""

from __future__ import annotations

import os

import numpy as np
import pytest
import trio
from baresip_agent import dominant_frequency, loud, tone, write_wav
from sip_interop_helpers import SCENARIOS, describe, free_udp_port, run_sipp

from engine import Direction, InteractionKind
from engine.media import decode_ulaw
from engine.testing import wait_until

pytestmark = pytest.mark.interop

CALLER_ID = "+34910000000"


def carrier(port: int, credentials: str = "") -> str:
    return (
        f'\n[[sip.trunks]]\nname = "carrier"\nserver = "sip:127.0.0.1:{port}"\noutbound = true\n'
        f'dial = ["_X."]\n{credentials}'
    )


def new_call(engine, number: str):
    return engine.new_interaction(
        InteractionKind.VOICE, Direction.OUTBOUND, from_=CALLER_ID, to=number, channel="sip"
    )


async def dial_with_callee(channel, interaction, number: str, sipp_args: list[str], *, ring_timeout: float = 10):
    """Start the SIPp customer, dial it, and return (DialResult, SIPp's completed process)."""
    results: dict = {}
    async with trio.open_nursery() as nursery:

        async def callee() -> None:
            results["sipp"] = await run_sipp(sipp_args)

        nursery.start_soon(callee)
        results["dial"] = await channel.dial(interaction, number, caller_id=CALLER_ID, ring_timeout=ring_timeout)
        if results["dial"].outcome == "answered":
            results["answered_state"] = channel.calls.calls.get(interaction.id) is not None
            await channel.hangup(interaction)
    return results["dial"], results["sipp"], results.get("answered_state")


async def test_answered_call_stays_up_until_the_customer_hangs_up_with_a_cdr(sip_engine) -> None:
    port = free_udp_port()
    async with sip_engine(sip=carrier(port)) as (engine, channel):
        interaction = new_call(engine, "600123456")
        results: dict = {}
        async with trio.open_nursery() as nursery:

            async def callee() -> None:
                results["sipp"] = await run_sipp(
                    ["-sf", str(SCENARIOS / "callee_hangs_up.xml"), "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-d", "1000"]
                )

            nursery.start_soon(callee)
            result = await channel.dial(interaction, "600123456", caller_id=CALLER_ID, ring_timeout=10)
            assert result.outcome == "answered" and result.status == 200
            # The answered call is the channel's, anchored on the engine's media, until the customer's BYE.
            assert channel.media_of(interaction) is not None
            assert engine.media.statistics()["endpoints"] == 1
        assert results["sipp"].returncode == 0, describe(results["sipp"])
        await wait_until(lambda: interaction.state.value == "ended")
        with trio.fail_after(20):  # the CDR is written just after the hang-up
            while not (rows := [r for r in await engine.cdr() if r["uniqueid"] == interaction.id]):
                await trio.sleep(0.05)
        (row,) = rows
        assert row["disposition"] == "ANSWERED" and row["dst"] == "600123456"
        await wait_until(lambda: engine.media.statistics()["endpoints"] == 0)


async def test_early_media_reaches_the_engine_before_the_answer(sip_engine) -> None:
    if not os.path.exists("/usr/share/sip-tester/g711a.pcap"):
        pytest.fail("SIPp's G.711 capture is needed: apt-get install -y sip-tester")
    port = free_udp_port()
    async with sip_engine(sip=carrier(port)) as (engine, channel):
        interaction = new_call(engine, "600123457")
        heard_before_answer: list[int] = []
        results: dict = {}

        class Tap:
            def write_frame(self, frame) -> None:
                if interaction.answered is None and abs(frame.astype("int32")).max() > 500:
                    heard_before_answer.append(len(frame))

        async with trio.open_nursery() as nursery:

            async def callee() -> None:
                results["sipp"] = await run_sipp(
                    ["-sf", str(SCENARIOS / "callee_early_media.xml"), "-i", "127.0.0.1", "-p", str(port), "-m", "1"]
                )

            async def attach_tap() -> None:
                # What answering-machine detection would do: listen from the first ring on.
                await wait_until(lambda: channel.media_of(interaction) is not None)
                channel.media_of(interaction).sinks.append(Tap())

            nursery.start_soon(callee)
            nursery.start_soon(attach_tap)
            result = await channel.dial(interaction, "600123457", caller_id=CALLER_ID, ring_timeout=10)
            assert result.outcome == "answered"
            assert interaction.attributes.get("early_media") is True
            assert channel.media_of(interaction).codec == "PCMA"
            await channel.hangup(interaction)
        assert results["sipp"].returncode == 0, describe(results["sipp"])
        assert heard_before_answer, "no early-media audio reached the engine's endpoint before the 200"


async def test_busy_not_found_and_no_answer_outcomes(sip_engine) -> None:
    cases = [
        ("agent_busy.xml", "busy", 486),
        ("callee_not_found.xml", "invalid", 404),
        ("callee_never_answers.xml", "no-answer", None),
    ]
    for scenario, outcome, status in cases:
        port = free_udp_port()
        async with sip_engine(sip=carrier(port)) as (engine, channel):
            interaction = new_call(engine, "600000001")
            result, sipp, _ = await dial_with_callee(
                channel, interaction, "600000001",
                ["-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port), "-m", "1"],
                ring_timeout=1.5,
            )
            assert sipp.returncode == 0, scenario + ": " + describe(sipp)
            assert result.outcome == outcome, (scenario, result)
            if status is not None:
                assert result.status == status
            # A failed attempt leaves nothing behind: no call, no RTP endpoint.
            assert interaction.id not in channel.calls.calls
            assert engine.media.statistics()["endpoints"] == 0


async def test_trunk_that_challenges_with_401_gets_our_credentials(sip_engine) -> None:
    port = free_udp_port()
    credentials = 'username = "acct"\npassword = "t0ps3cret"\n'
    async with sip_engine(sip=carrier(port, credentials)) as (engine, channel):
        interaction = new_call(engine, "600123458")
        result, sipp, was_up = await dial_with_callee(
            channel, interaction, "600123458",
            ["-sf", str(SCENARIOS / "carrier_digest.xml"), "-i", "127.0.0.1", "-p", str(port), "-m", "1"],
        )
        assert result.outcome == "answered", result
        assert was_up
        assert sipp.returncode == 0, describe(sipp)


async def test_wrong_trunk_password_is_a_failed_attempt(sip_engine) -> None:
    port = free_udp_port()
    credentials = 'username = "acct"\npassword = "wrong"\n'
    async with sip_engine(sip=carrier(port, credentials)) as (engine, channel):
        interaction = new_call(engine, "600123459")
        result, _, _ = await dial_with_callee(
            channel, interaction, "600123459",
            ["-sf", str(SCENARIOS / "carrier_digest.xml"), "-i", "127.0.0.1", "-p", str(port), "-m", "1"],
        )
        assert result.outcome == "failed" and result.status == 403, result


async def test_dialing_a_registered_user_forks_to_its_contacts_and_cancels_the_loser(sip_engine) -> None:
    user = '\n[[sip.users]]\nname = "1002"\npassword = "b0b"\n'
    ringing_port, answering_port = free_udp_port(), free_udp_port()
    async with sip_engine(sip=user) as (engine, channel):
        target = f"127.0.0.1:{channel.bound[0].port}"
        for port in (ringing_port, answering_port):  # the same user on two phones
            registered = await run_sipp(
                [target, "-sf", str(SCENARIOS / "register_digest.xml"), "-s", "1002", "-au", "1002", "-ap", "b0b",
                 "-i", "127.0.0.1", "-p", str(port), "-m", "1"]
            )
            assert registered.returncode == 0, describe(registered)
        assert len(channel.registrar.contacts("1002")) == 2
        interaction = new_call(engine, "1002")
        results: dict = {}
        async with trio.open_nursery() as nursery:

            async def phone(name: str, args: list[str]) -> None:
                results[name] = await run_sipp(args)

            # One phone only rings (and must be CANCELled once the other answers); the other answers.
            nursery.start_soon(phone, "ringing", ["-sf", str(SCENARIOS / "callee_never_answers.xml"), "-i", "127.0.0.1", "-p", str(ringing_port), "-m", "1"])
            nursery.start_soon(phone, "answering", ["-sn", "uas", "-i", "127.0.0.1", "-p", str(answering_port), "-m", "1"])
            result = await channel.dial(interaction, "1002", caller_id=CALLER_ID, ring_timeout=10)
            assert result.outcome == "answered", result
            assert channel.calls.calls[interaction.id].caller.peer.port == answering_port
            await channel.hangup(interaction)
        for name in ("ringing", "answering"):
            assert results[name].returncode == 0, f"{name}: " + describe(results[name])


async def test_digits_the_customer_presses_reach_the_engine(sip_engine) -> None:
    if not os.path.exists("/usr/share/sip-tester/dtmf_2833_7.pcap"):
        pytest.fail("SIPp's DTMF captures are needed: apt-get install -y sip-tester")
    port = free_udp_port()
    async with sip_engine(sip=carrier(port)) as (engine, channel):
        interaction = new_call(engine, "600123460")
        async with engine.bus.subscribe("dtmf") as events:
            results: dict = {}
            async with trio.open_nursery() as nursery:

                async def callee() -> None:
                    results["sipp"] = await run_sipp(["-sf", str(SCENARIOS / "callee_dtmf.xml"), "-i", "127.0.0.1", "-p", str(port), "-m", "1"])

                nursery.start_soon(callee)
                result = await channel.dial(interaction, "600123460", caller_id=CALLER_ID, ring_timeout=10)
                assert result.outcome == "answered", result
                with trio.fail_after(20):
                    while True:
                        event = await events.receive()
                        if event.event == "DTMFEnd" and event.interaction == interaction.id:
                            break
                await channel.hangup(interaction)
        assert event.fields["Digit"] == "7" and event.fields["Direction"] == "Received"
        assert results["sipp"].returncode == 0, describe(results["sipp"])


async def test_a_prompt_played_to_the_answered_customer_is_heard(sip_engine) -> None:
    port = free_udp_port()
    async with sip_engine(sip=carrier(port)) as (engine, channel):
        engine.prompts.root.mkdir(parents=True, exist_ok=True)
        write_wav(engine.prompts.root / "abandon.wav", tone(600.0, 1.0))
        listener = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await listener.bind(("127.0.0.1", 0))
        heard: list = []

        async def hear() -> None:
            while True:
                data = await listener.recv(2048)
                if len(data) > 12 and data[1] & 0x7F == 0:
                    heard.append(decode_ulaw(data[12:]))

        interaction = new_call(engine, "600123461")
        results: dict = {}
        async with trio.open_nursery() as nursery:

            async def callee() -> None:
                results["sipp"] = await run_sipp(
                    ["-sf", str(SCENARIOS / "callee_media_waits.xml"), "-set", "rtp_port", str(listener.getsockname()[1]),
                     "-i", "127.0.0.1", "-p", str(port), "-m", "1"]
                )

            nursery.start_soon(callee)
            async with trio.open_nursery() as media:
                media.start_soon(hear)
                result = await channel.dial(interaction, "600123461", caller_id=CALLER_ID, ring_timeout=10)
                assert result.outcome == "answered", result
                # What the dialer does on an abandoned call: play the information message, then hang up.
                await channel.play(interaction, prompt="abandon")
                await wait_until(lambda: len(heard) >= 40)
                media.cancel_scope.cancel()
            await channel.hangup(interaction)
        assert results["sipp"].returncode == 0, describe(results["sipp"])
        audio = loud(np.concatenate(heard))
        assert len(audio) >= 4000 and abs(dominant_frequency(audio, 8000) - 600) < 15


async def test_originate_through_the_trunk_to_a_busy_number_ends_with_a_busy_cdr(sip_engine) -> None:
    port = free_udp_port()
    async with sip_engine(sip=carrier(port)) as (engine, _channel):
        results: dict = {}
        async with trio.open_nursery() as nursery:

            async def callee() -> None:
                results["sipp"] = await run_sipp(["-sf", str(SCENARIOS / "agent_busy.xml"), "-i", "127.0.0.1", "-p", str(port), "-m", "1"])

            nursery.start_soon(callee)
            created = await engine.originate({"to": "600123462", "from": CALLER_ID})
        assert results["sipp"].returncode == 0, describe(results["sipp"])
        with trio.fail_after(20):
            while not (rows := [r for r in await engine.cdr() if r["uniqueid"] == created["id"]]):
                await trio.sleep(0.05)
        assert rows[0]["disposition"] == "BUSY" and rows[0]["dst"] == "600123462"
