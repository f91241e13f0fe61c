"""Round-trip time of the OPTIONS qualify, for registered phones and for trunks, against a real SIPp."""

from __future__ import annotations

import socket
from pathlib import Path

import trio
from sip_shell_helpers import FAST_TIMERS, require_tool

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
QUALIFY_TIMERS = FAST_TIMERS.replace("qualify_interval = 0", "qualify_interval = 0.3\nqualify_timeout = 2")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _sipp(args: list[str], results: list) -> None:
    command = [require_tool("sipp", "sip-tester"), *args, "-nostdin", "-timeout", "30", "-timeout_error", "-m", "1"]
    results.append(await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False))


def _describe(result) -> str:
    return f"sipp exit {result.returncode}\n{result.stdout.decode(errors='replace')[-1500:]}\n{result.stderr.decode(errors='replace')[-1500:]}"


async def test_registered_phone_answering_options_gets_a_round_trip_time(sip_engine) -> None:
    users = '[[sip.users]]\nname = "1001"\npassword = "s3cret"\n'
    port = _free_udp_port()
    async with sip_engine(sip=users, timers=QUALIFY_TIMERS) as (_engine, channel):
        results: list = []
        target = f"127.0.0.1:{channel.bound[0].port}"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_sipp, [target, "-sf", str(SCENARIOS / "phone_registers_and_answers_options.xml"),
                                       "-oocsf", str(SCENARIOS / "provider_answers_options.xml"),
                                       "-s", "1001", "-au", "1001", "-ap", "s3cret", "-i", "127.0.0.1", "-p", str(port)],
                               results)  # fmt: skip
            with trio.fail_after(30):
                while not any(c["rtt_ms"] is not None for c in channel.statistics()["registrations"]["contacts"]):
                    await trio.sleep(0.05)
        assert results[0].returncode == 0, _describe(results[0])
        contacts = channel.statistics()["registrations"]["contacts"]
        (contact,) = [c for c in contacts if c["user"] == "1001"]
        assert contact["transport"] == "udp" and contact["reachable"] is True
        # SIPp answered on loopback: a real, positive round trip well under the qualify timeout.
        assert contact["rtt_ms"] is not None and 0 < contact["rtt_ms"] < 2000


async def test_trunk_gets_pinged_and_reports_its_round_trip(sip_engine) -> None:
    port = _free_udp_port()
    trunk = f'[[sip.trunks]]\nname = "itsp"\nserver = "sip:127.0.0.1:{port}"\n'
    results: list = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_sipp, ["-sf", str(SCENARIOS / "provider_answers_options.xml"), "-i", "127.0.0.1", "-p", str(port)], results)
        async with sip_engine(sip=trunk, timers=QUALIFY_TIMERS) as (_engine, channel):
            with trio.fail_after(30):
                while channel.statistics()["trunks"]["itsp"]["rtt_ms"] is None:
                    await trio.sleep(0.05)
            state = channel.statistics()["trunks"]["itsp"]
    assert results[0].returncode == 0, _describe(results[0])
    assert state["reachable"] is True and 0 < state["rtt_ms"] < 2000


async def test_silent_trunk_is_unreachable_without_a_round_trip(sip_engine) -> None:
    port = _free_udp_port()  # nobody answers there
    trunk = f'[[sip.trunks]]\nname = "itsp"\nserver = "sip:127.0.0.1:{port}"\n'
    timers = QUALIFY_TIMERS.replace("qualify_timeout = 2", "qualify_timeout = 0.2")
    async with sip_engine(sip=trunk, timers=timers) as (_engine, channel):
        with trio.fail_after(30):
            while channel.statistics()["trunks"]["itsp"]["reachable"] is not False:
                await trio.sleep(0.05)
        assert channel.statistics()["trunks"]["itsp"]["rtt_ms"] is None
