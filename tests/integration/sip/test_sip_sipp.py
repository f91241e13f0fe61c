"""The SIP plugin against SIPp: a phone registering, callers calling, agents answering (all on loopback)."""

from __future__ import annotations

import pytest
import trio

from sip_interop_helpers import SCENARIOS, describe, free_udp_port, run_sipp

pytestmark = pytest.mark.interop

USERS = """
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

[[routes]]
match = "100"
queue = "support"

[[routes]]
match = "200"
agent = "alice"

[[routes]]
match = "_9XX"
flow = "main"

[[flows]]
name = "main"
start = "menu"
[flows.nodes.menu]
type = "menu"
text = "Welcome. Press 1 to leave."
timeout = 30
options = { "1" = "bye" }
[flows.nodes.bye]
type = "hangup"

[[routes]]
match = "300"
flow = "toqueue"

[[flows]]
name = "toqueue"
start = "q"
[flows.nodes.q]
type = "queue"
queue = "support"
"""


def caller_trunk(port: int) -> str:
    # Calls from the SIPp caller's exact address are a trunk's (no challenge), per CONTRACT.md.
    return f'\n[[sip.trunks]]\nname = "sipp"\nserver = "sip:127.0.0.1:{port}"\n'


async def register_agent(channel, port: int) -> None:
    target = f"127.0.0.1:{channel.bound[0].port}"
    result = await run_sipp(
        [target, "-sf", str(SCENARIOS / "register_digest.xml"), "-s", "1001", "-au", "1001", "-ap", "s3cret",
         "-i", "127.0.0.1", "-p", str(port), "-m", "1"]
    )
    assert result.returncode == 0, describe(result)
    assert channel.endpoint_reachable("sip:1001")


async def test_register_flow_with_401_challenge(sip_engine) -> None:
    async with sip_engine(sip=USERS) as (engine, channel):
        await register_agent(channel, free_udp_port())
        assert channel.statistics()["registrations"]["challenged"] >= 1


async def test_wrong_password_is_refused(sip_engine) -> None:
    async with sip_engine(sip=USERS) as (engine, channel):
        target = f"127.0.0.1:{channel.bound[0].port}"
        result = await run_sipp(
            [target, "-sf", str(SCENARIOS / "register_digest.xml"), "-s", "1001", "-au", "1001", "-ap", "wrong",
             "-i", "127.0.0.1", "-m", "1", "-recv_timeout", "3000"]
        )
        assert result.returncode != 0
        assert not channel.endpoint_reachable("sip:1001")


async def test_builtin_uac_calling_a_number_the_engine_answers(sip_engine) -> None:
    caller_port = free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=USERS + caller_trunk(caller_port)) as (engine, channel):
        target = f"127.0.0.1:{channel.bound[0].port}"
        result = await run_sipp([target, "-sn", "uac", "-s", "900", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "5", "-r", "5", "-d", "200"])
        assert result.returncode == 0, describe(result)
        assert channel.statistics()["calls"]["answered"] == 5
        with trio.fail_after(10):
            while len(await engine.cdr()) < 5:
                await trio.sleep(0.05)
        rows = await engine.cdr()
        assert {r["dst"] for r in rows} == {"900"}
        assert all(r["disposition"] == "ANSWERED" for r in rows)


async def test_unknown_number_gets_404(sip_engine) -> None:
    caller_port = free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=USERS + caller_trunk(caller_port)) as (engine, channel):
        target = f"127.0.0.1:{channel.bound[0].port}"
        result = await run_sipp([target, "-sn", "uac", "-s", "555", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "1", "-recv_timeout", "3000"])
        assert result.returncode != 0  # the built-in uac expects a 200
        assert channel.statistics()["calls"]["rejected"] == 1


async def test_call_through_a_queue_reaches_the_sipp_agent_and_is_bridged(sip_engine) -> None:
    caller_port, agent_port = free_udp_port(), free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=USERS + caller_trunk(caller_port)) as (engine, channel):
        await register_agent(channel, agent_port)
        target = f"127.0.0.1:{channel.bound[0].port}"
        async with trio.open_nursery() as nursery:
            agent_result: list = []

            async def agent() -> None:
                agent_result.append(await run_sipp([target, "-sn", "uas", "-i", "127.0.0.1", "-p", str(agent_port), "-m", "1"]))

            nursery.start_soon(agent)
            caller = await run_sipp([target, "-sn", "uac", "-s", "100", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "1", "-d", "500"])
        assert caller.returncode == 0, describe(caller)
        assert agent_result[0].returncode == 0, describe(agent_result[0])
        with trio.fail_after(10):
            while not await engine.cdr():
                await trio.sleep(0.05)
        (row,) = await engine.cdr()
        assert row["dst"] == "100" and row["disposition"] == "ANSWERED" and row["dstchannel"] == "alice"


async def test_caller_cancels_while_the_agent_rings(sip_engine) -> None:
    caller_port = free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=USERS + caller_trunk(caller_port)) as (engine, channel):
        target = f"127.0.0.1:{channel.bound[0].port}"
        # No agent is registered: the caller waits in the queue hearing ringback, then gives up.
        result = await run_sipp([target, "-sf", str(SCENARIOS / "cancel.xml"), "-s", "100", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "1"])
        assert result.returncode == 0, describe(result)
        with trio.fail_after(10):
            while not await engine.cdr():
                await trio.sleep(0.05)
        (row,) = await engine.cdr()
        assert row["disposition"] == "NO ANSWER"


async def test_info_dtmf_and_hold_unhold_pass_between_caller_and_agent(sip_engine) -> None:
    caller_port, agent_port = free_udp_port(), free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=USERS + caller_trunk(caller_port)) as (engine, channel):
        await register_agent(channel, agent_port)
        target = f"127.0.0.1:{channel.bound[0].port}"
        async with engine.bus.subscribe("dtmf") as events:
            async with trio.open_nursery() as nursery:
                agent_result: list = []

                async def agent() -> None:
                    agent_result.append(await run_sipp([target, "-sf", str(SCENARIOS / "agent_hold_info.xml"), "-i", "127.0.0.1", "-p", str(agent_port), "-m", "1"]))

                nursery.start_soon(agent)
                caller = await run_sipp([target, "-sf", str(SCENARIOS / "caller_hold_info.xml"), "-s", "200", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "1"])
            assert caller.returncode == 0, describe(caller)
            assert agent_result[0].returncode == 0, describe(agent_result[0])
            with trio.fail_after(10):
                while True:
                    event = await events.receive()
                    if event.event == "DTMFEnd":
                        break
            assert event.fields["Digit"] == "5" and event.fields["Direction"] == "Received"


async def test_builtin_uac_over_tcp(sip_engine) -> None:
    caller_port = free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=USERS + caller_trunk(caller_port)) as (engine, channel):
        tcp = channel.bound[1]
        assert tcp.transport == "tcp"
        result = await run_sipp(
            [f"127.0.0.1:{tcp.port}", "-sn", "uac", "-s", "900", "-t", "t1", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "3", "-d", "200"]
        )
        assert result.returncode == 0, describe(result)
        stats = channel.statistics()
        assert stats["calls"]["answered"] == 3 and stats["transport"]["tcp_received"] >= 9


async def test_ivr_answered_caller_is_bridged_to_the_agent_through_the_media_engine(sip_engine) -> None:
    caller_port, agent_port = free_udp_port(), free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=USERS + caller_trunk(caller_port)) as (engine, channel):
        await register_agent(channel, agent_port)
        target = f"127.0.0.1:{channel.bound[0].port}"
        bridged = []
        async with trio.open_nursery() as nursery:
            agent_result: list = []

            async def agent() -> None:
                agent_result.append(await run_sipp([target, "-sn", "uas", "-i", "127.0.0.1", "-p", str(agent_port), "-m", "1"]))

            async def watch() -> None:
                # While the call is up, the caller and the agent each face an RTP endpoint of the engine's.
                with trio.move_on_after(20):
                    while not bridged:
                        if engine.media.statistics()["bridges"] == 1:
                            bridged.append(engine.media.statistics()["endpoints"])
                        await trio.sleep(0.01)

            nursery.start_soon(agent)
            nursery.start_soon(watch)
            caller = await run_sipp([target, "-sn", "uac", "-s", "300", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "1", "-d", "300"])
        assert caller.returncode == 0, describe(caller)
        assert agent_result[0].returncode == 0, describe(agent_result[0])
        assert bridged == [2]
        with trio.fail_after(10):
            while engine.media.statistics()["endpoints"]:
                await trio.sleep(0.02)
        (row,) = await engine.cdr()
        assert row["disposition"] == "ANSWERED" and row["dstchannel"] == "alice"


async def test_rfc2833_digit_from_a_caller_reaches_the_engine(sip_engine) -> None:
    pcap = "/usr/share/sip-tester/dtmf_2833_7.pcap"
    import os

    if not os.path.exists(pcap):
        pytest.fail("SIPp's DTMF captures are needed: apt-get install -y sip-tester")
    caller_port = free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=USERS + caller_trunk(caller_port)) as (engine, channel):
        target = f"127.0.0.1:{channel.bound[0].port}"
        async with engine.bus.subscribe("dtmf") as events:
            result = await run_sipp([target, "-sf", str(SCENARIOS / "caller_rfc2833.xml"), "-s", "900", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "1"])
            assert result.returncode == 0, describe(result)
            with trio.fail_after(10):
                while True:
                    event = await events.receive()
                    if event.event == "DTMFEnd":
                        break
        assert event.fields["Digit"] == "7"


async def test_originate_rings_a_registered_phone_and_api_hangup_ends_it(sip_engine) -> None:
    agent_port = free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=USERS) as (engine, channel):
        await register_agent(channel, agent_port)
        target = f"127.0.0.1:{channel.bound[0].port}"
        async with trio.open_nursery() as nursery:
            phone: list = []

            async def answering_phone() -> None:
                phone.append(await run_sipp([target, "-sn", "uas", "-i", "127.0.0.1", "-p", str(agent_port), "-m", "1"]))

            nursery.start_soon(answering_phone)
            created = await engine.originate({"to": "1001", "from": "callback"})
            interaction = engine.interactions[created["id"]]
            with trio.fail_after(20):
                while interaction.state.value != "active":
                    await trio.sleep(0.02)
            await engine.interaction_action(interaction.id, "hangup", {})
        assert phone[0].returncode == 0, describe(phone[0])
        assert interaction.state.value == "ended"


async def test_agent_blind_transfer_with_refer(sip_engine) -> None:
    caller_port, alice_port, bob_port = free_udp_port(), free_udp_port(), free_udp_port()
    users = USERS + '\n[[sip.users]]\nname = "1002"\npassword = "b0b"\n'
    async with sip_engine(CONTACT_CENTER, sip=users + caller_trunk(caller_port)) as (engine, channel):
        target = f"127.0.0.1:{channel.bound[0].port}"
        await register_agent(channel, alice_port)
        registered = await run_sipp(
            [target, "-sf", str(SCENARIOS / "register_digest.xml"), "-s", "1002", "-au", "1002", "-ap", "b0b",
             "-i", "127.0.0.1", "-p", str(bob_port), "-m", "1"]
        )
        assert registered.returncode == 0, describe(registered)
        results: dict = {}
        async with trio.open_nursery() as nursery:

            async def run(name: str, args: list[str]) -> None:
                results[name] = await run_sipp(args)

            nursery.start_soon(run, "alice", [target, "-sf", str(SCENARIOS / "agent_refer.xml"), "-i", "127.0.0.1", "-p", str(alice_port), "-m", "1"])
            nursery.start_soon(run, "bob", [target, "-sn", "uas", "-i", "127.0.0.1", "-p", str(bob_port), "-m", "1"])
            await run("caller", [target, "-sf", str(SCENARIOS / "caller_transferred.xml"), "-s", "200", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "1"])
        for name in ("caller", "alice", "bob"):
            assert results[name].returncode == 0, f"{name}: " + describe(results[name])


async def test_early_media_from_the_agent_reaches_the_caller(sip_engine) -> None:
    caller_port, agent_port = free_udp_port(), free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=USERS + caller_trunk(caller_port)) as (engine, channel):
        await register_agent(channel, agent_port)
        target = f"127.0.0.1:{channel.bound[0].port}"
        results: dict = {}
        async with trio.open_nursery() as nursery:

            async def agent() -> None:
                results["agent"] = await run_sipp([target, "-sf", str(SCENARIOS / "agent_early_media.xml"), "-i", "127.0.0.1", "-p", str(agent_port), "-m", "1"])

            nursery.start_soon(agent)
            results["caller"] = await run_sipp([target, "-sf", str(SCENARIOS / "caller_early_media.xml"), "-s", "200", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "1"])
        for name in ("caller", "agent"):
            assert results[name].returncode == 0, f"{name}: " + describe(results[name])


async def test_anchor_media_puts_a_queue_call_through_the_media_engine(sip_engine) -> None:
    caller_port, agent_port = free_udp_port(), free_udp_port()
    sip = "anchor_media = true\n" + USERS + caller_trunk(caller_port)
    async with sip_engine(CONTACT_CENTER, sip=sip) as (engine, channel):
        await register_agent(channel, agent_port)
        target = f"127.0.0.1:{channel.bound[0].port}"
        bridged = []
        async with trio.open_nursery() as nursery:
            agent_result: list = []

            async def agent() -> None:
                agent_result.append(await run_sipp([target, "-sn", "uas", "-i", "127.0.0.1", "-p", str(agent_port), "-m", "1"]))

            async def watch() -> None:
                with trio.move_on_after(20):
                    while not bridged:
                        if engine.media.statistics()["bridges"] == 1:
                            bridged.append(engine.media.statistics()["endpoints"])
                        await trio.sleep(0.01)

            nursery.start_soon(agent)
            nursery.start_soon(watch)
            caller = await run_sipp([target, "-sn", "uac", "-s", "100", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "1", "-d", "300"])
        assert caller.returncode == 0, describe(caller)
        assert agent_result[0].returncode == 0, describe(agent_result[0])
        assert bridged == [2]
        with trio.fail_after(10):
            while engine.media.statistics()["endpoints"]:
                await trio.sleep(0.02)


async def test_busy_agent_is_reported_and_the_caller_keeps_waiting(sip_engine) -> None:
    caller_port, agent_port = free_udp_port(), free_udp_port()
    async with sip_engine(CONTACT_CENTER, sip=USERS + caller_trunk(caller_port)) as (engine, channel):
        await register_agent(channel, agent_port)
        target = f"127.0.0.1:{channel.bound[0].port}"
        async with engine.bus.subscribe("busy") as events:
            results: dict = {}
            async with trio.open_nursery() as nursery:

                async def agent() -> None:
                    results["agent"] = await run_sipp([target, "-sf", str(SCENARIOS / "agent_busy.xml"), "-i", "127.0.0.1", "-p", str(agent_port), "-m", "1"])

                nursery.start_soon(agent)
                # The caller rings for 1.5 s (the agent's phone answers busy meanwhile), then gives up.
                results["caller"] = await run_sipp([target, "-sf", str(SCENARIOS / "cancel.xml"), "-s", "100", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "1", "-d", "1500"])
            busy = []
            with trio.move_on_after(5):
                while not busy:
                    event = await events.receive()
                    if event.event == "AgentRingNoAnswer":
                        busy.append(event)
        assert results["agent"].returncode == 0, describe(results["agent"])
        assert results["caller"].returncode == 0, describe(results["caller"])
        assert busy and busy[0].fields["Agent"] == "alice", busy
        assert "busy" in str(dict(busy[0].fields)).lower(), busy[0].fields
