"""baresip as an agent's phone: registers with digest auth, auto-answers an offer from a queue, and a
SIPp caller reaching that queue is bridged to it."""

from __future__ import annotations

import math
import shutil
import socket
import struct
import wave
from pathlib import Path

import pytest
import trio

from sip_interop_helpers import describe, free_udp_port, run_sipp

pytestmark = pytest.mark.interop

CONFIG = """poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
sip_trans_def\t\tudp
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\talsa.so
module\t\t\taufile.so
module\t\t\tmenu.so
module\t\t\tctrl_tcp.so
module_app\t\taccount.so
ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}
audio_source\t\taufile,{directory}/tone.wav
audio_player\t\talsa,null
audio_alert\t\talsa,null
"""

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


def _free_sip_ports() -> int:
    """A port P with UDP P, TCP P and TCP P+1 free: baresip listens on all three (TLS on P+1)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        sockets = []
        try:
            for kind, candidate in ((socket.SOCK_DGRAM, port), (socket.SOCK_STREAM, port), (socket.SOCK_STREAM, port + 1)):
                sock = socket.socket(socket.AF_INET, kind)
                sockets.append(sock)
                sock.bind(("127.0.0.1", candidate))
            return port
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port pair for baresip")


def _write_tone(path: Path) -> None:
    """Two seconds of a 440 Hz tone, 8 kHz mono 16-bit: what the phone 'says' into the call."""
    samples = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / 8000))) for n in range(16000)
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(samples)


async def test_baresip_registers_answers_and_is_bridged_with_a_sipp_caller(sip_engine, tmp_path: Path) -> None:
    baresip = shutil.which("baresip")
    if baresip is None:
        pytest.fail("baresip is needed for this test: apt-get install -y baresip-core")
    caller_port = free_udp_port()
    users = SETUP.format(caller_port=caller_port)
    async with sip_engine(sip=users) as (engine, channel):
        phone_dir = tmp_path / "baresip"
        phone_dir.mkdir()
        _write_tone(phone_dir / "tone.wav")
        (phone_dir / "config").write_text(
            CONFIG.format(sip_port=_free_sip_ports(), ctrl_port=_free_sip_ports(), directory=phone_dir)
        )
        engine_port = channel.bound[0].port
        (phone_dir / "accounts").write_text(
            f"<sip:1001@127.0.0.1:{engine_port};transport=udp>;auth_pass=s3cret;answermode=auto;regint=600\n"
        )
        log_path = tmp_path / "baresip.log"
        with log_path.open("wb") as log:
            process = await trio.lowlevel.open_process(
                [baresip, "-f", str(phone_dir), "-n", "127.0.0.1"], stdin=None, stdout=log, stderr=log
            )
            try:
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
            finally:
                process.terminate()
                with trio.move_on_after(5):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
