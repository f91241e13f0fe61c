"""baresip as an agent's phone: registers with digest auth, auto-answers an offer from a queue, and a
SIPp caller reaching that queue is bridged to it."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from baresip_agent import baresip_account, baresip_config, free_sip_port, open_baresip, tone, write_wav
from sip_interop_helpers import describe, free_udp_port, run_sipp

pytestmark = pytest.mark.interop

SETUP = """
[[sip.users]]
name = "1001"
password = "s3cret"

[[sip.trunks]]
name = "sipp"
server = "sip:127.0.0.1:{caller_port}"

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
"""


async def test_baresip_registers_answers_and_is_bridged_with_a_sipp_caller(sip_engine, tmp_path: Path) -> None:
    caller_port = free_udp_port()
    users = SETUP.format(caller_port=caller_port)
    async with sip_engine(sip=users) as (engine, channel):
        phone_dir = tmp_path / "baresip"
        phone_dir.mkdir()
        write_wav(phone_dir / "tone.wav", tone(440, 2.0))  # what the phone 'says' into the call
        (phone_dir / "config").write_text(
            baresip_config(phone_dir, sip_port=free_sip_port(), source="tone.wav", ctrl_port=free_sip_port())
        )
        engine_port = channel.bound[0].port
        (phone_dir / "accounts").write_text(baresip_account("1001", "s3cret", engine_port))
        log_path = tmp_path / "baresip.log"
        async with open_baresip(phone_dir, log_path):
            with trio.move_on_after(20):
                while not channel.endpoint_reachable("sip:1001"):
                    await trio.sleep(0.05)
            assert channel.endpoint_reachable("sip:1001"), "baresip never registered:\n" + log_path.read_text(errors="replace")[-3000:]
            (binding,) = channel.registrar.contacts("1001")
            assert "baresip" in binding.user_agent.lower()
            target = f"127.0.0.1:{engine_port}"
            caller = await run_sipp(
                [target, "-sn", "uac", "-s", "100", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "1", "-d", "1000"]
            )
            assert caller.returncode == 0, describe(caller) + log_path.read_text(errors="replace")[-3000:]
            with trio.fail_after(10):
                while not await engine.cdr():
                    await trio.sleep(0.05)
            (row,) = await engine.cdr()
            assert row["disposition"] == "ANSWERED" and row["dstchannel"] == "alice" and row["dst"] == "100"
            assert channel.statistics()["calls"]["offers_answered"] == 1
