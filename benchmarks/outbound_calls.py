"""Outbound SIP calls (``SipChannel.dial``) against inbound ones, measured in the same run with SIPp.

Method: the real engine runs in this process with the SIP plugin and the media framework. Outbound:
``--calls`` calls go out through a trunk to SIPp's built-in ``uas`` (180, 200 with SDP, waits for BYE),
at most ``--concurrency`` at a time; each is dialed (INVITE with an SDP offer from an RTP endpoint of
ours, 180, 200, ACK), then hung up (BYE, 200), and its interaction ended (CDR written). Inbound: the same
number of calls from SIPp's built-in ``uac`` (INVITE, 180/200, ACK, BYE after ``-d 0``) to a number the
IVR answers, at most ``--concurrency`` at a time. For each phase: this process's CPU time (user +
system, ``time.process_time``: the engine, not SIPp) per call, wall time and calls per second. The ratio
outbound/inbound CPU per call is the figure that does not depend on how busy the shared machine is.

    .venv/bin/python benchmarks/outbound_calls.py            # ~20 s
    .venv/bin/python benchmarks/outbound_calls.py --calls 1000 --concurrency 50

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CONFIG = """
[engine]
log_level = "warning"

[sip]
listen = ["udp:127.0.0.1:0"]

[sip.security]
rate = 100000
burst = 100000
max_transactions_per_source = 100000

[sip.timers]
qualify_interval = 0

[[sip.trunks]]
name = "carrier"
server = "sip:127.0.0.1:{callee_port}"
outbound = true
dial = ["_X."]

[[sip.trunks]]
name = "callers"
server = "sip:127.0.0.1:{caller_port}"

[[routes]]
match = "_X."
flow = "main"

[[flows]]
name = "main"
start = "menu"
[flows.nodes.menu]
type = "menu"
text = "Welcome"
timeout = 60
options = {{ "1" = "bye" }}
[flows.nodes.bye]
type = "hangup"
"""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _run(args: argparse.Namespace) -> dict:
    import plugins.sip.plugin as sip_plugin
    from engine import Direction, InteractionKind
    from engine.testing import open_test_engine

    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("SIPp is needed: apt-get install -y sip-tester")
    callee_port, caller_port = _free_udp_port(), _free_udp_port()
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="centralita-bench-") as data_dir:
        config = f'[engine]\ndata_dir = "{data_dir}"\ndrain_timeout = 1\n' + CONFIG.split("[engine]\n", 1)[1]
        config = config.format(callee_port=callee_port, caller_port=caller_port)
        async with open_test_engine(config, plugins=[sip_plugin], data_dir=Path(data_dir)) as engine:
            channel = engine.channels["sip"]
            common = ["-nostdin", "-i", "127.0.0.1", "-m", str(args.calls), "-timeout", "120", "-max_recv_loops", "1000"]

            # ---- outbound: the engine dials SIPp's uas
            callee = await trio.lowlevel.open_process(
                [sipp, "-sn", "uas", "-p", str(callee_port), *common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            limiter = trio.CapacityLimiter(args.concurrency)
            outcomes: dict[str, int] = {}

            async def one(n: int) -> None:
                async with limiter:
                    interaction = engine.new_interaction(
                        InteractionKind.VOICE, Direction.OUTBOUND, from_="+34910000000", to=f"6{n:08d}", channel="sip"
                    )
                    result = await channel.dial(interaction, interaction.to, caller_id="+34910000000", ring_timeout=30)
                    outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
                    if result.outcome == "answered":
                        await channel.hangup(interaction)
                    await engine.end_interaction(interaction, cause="bench")

            cpu, wall = time.process_time(), time.perf_counter()
            async with trio.open_nursery() as nursery:
                for n in range(args.calls):
                    nursery.start_soon(one, n)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            with trio.fail_after(30):
                await callee.wait()
            out["outbound"] = {
                "calls": args.calls, "outcomes": outcomes, "sipp_exit": callee.returncode,
                "cpu_ms_per_call": round(1000 * cpu / args.calls, 3), "wall_s": round(wall, 2),
                "calls_per_s": round(args.calls / wall, 1),
            }

            # ---- inbound: SIPp's uac calls a number the IVR answers
            target = f"127.0.0.1:{channel.bound[0].port}"
            cpu, wall = time.process_time(), time.perf_counter()
            caller = await trio.lowlevel.open_process(
                [sipp, target, "-sn", "uac", "-s", "900", "-p", str(caller_port), "-l", str(args.concurrency),
                 "-r", "1000", "-d", "0", *common],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            with trio.fail_after(120):
                await caller.wait()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            out["inbound"] = {
                "calls": args.calls, "sipp_exit": caller.returncode,
                "answered": channel.statistics()["calls"]["answered"],
                "cpu_ms_per_call": round(1000 * cpu / args.calls, 3), "wall_s": round(wall, 2),
                "calls_per_s": round(args.calls / wall, 1),
            }
    out["ratio_outbound_to_inbound_cpu"] = round(out["outbound"]["cpu_ms_per_call"] / out["inbound"]["cpu_ms_per_call"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    load_before = os.getloadavg()
    result = trio.run(_run, args)
    result["machine"] = {
        "python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    result["method"] = "in-process engine, SIPp uas/uac on loopback, CPU = time.process_time of the engine's process"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
