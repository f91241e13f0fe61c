"""SIP calls per second through the real engine, measured with SIPp.

Method: the engine runs in its own process (the SIP plugin, the IVR answering every call to a flow
number). SIPp's built-in ``uac`` (INVITE, 100/180/200, ACK, pause, BYE, 200) calls it at a rate that
steps up; a step passes when at most 0.1% of its calls fail. For each step the engine's CPU (user +
system time of its process over the step's wall time, where 1.0 is one core) and resident memory are
read from /proc. Then SIPp calls SIPp directly (``uas``) at the best rate and above it, to show the load
generator was not the bottleneck, and the ratio engine/SIPp is reported.

    .venv/bin/python benchmarks/sip_cps.py              # ~2-3 minutes
    .venv/bin/python benchmarks/sip_cps.py --long       # + 10 minutes at 80% of the best rate: memory

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

REPO = Path(__file__).resolve().parents[1]

ENGINE_CONFIG = """
[engine]
data_dir = "{data_dir}"
log_level = "warning"
drain_timeout = 1

[console]
listen = "127.0.0.1:0"

[sip]
listen = ["udp:127.0.0.1:0"]

[[sip.trunks]]
name = "sipp"
server = "sip:127.0.0.1"

[[queues]]
name = "support"

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

ENGINE_MAIN = """
import sys, trio
sys.path.insert(0, {repo!r})
from engine.testing import load_test_config, make_manager
from engine._engine import Engine
import plugins.sip.plugin as sip_plugin
from pathlib import Path

async def main():
    manager = make_manager([sip_plugin])
    config = load_test_config(open({config!r}).read(), manager, Path({data_dir!r}))
    manager.hooks.configure(config)
    engine = Engine(config, manager)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        print(engine.channels["sip"].bound[0].port, flush=True)
        await trio.wrap_file(sys.stdin).read()
        engine.request_stop()

trio.run(main)
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_sipp(target: str, rate: int, calls: int, workdir: Path, extra: list[str]) -> dict[str, float]:
    stat = workdir / f"stat-{rate}-{time.monotonic_ns()}.csv"
    command = [
        "sipp", target, "-sn", "uac", "-s", "100", "-i", "127.0.0.1", "-r", str(rate), "-m", str(calls),
        "-d", "100", "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "1", "-timeout", "120",
        "-max_recv_loops", "10000", "-max_sched_loops", "10000", "-l", str(rate * 4), *extra,
    ]
    started = time.monotonic()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, cwd=workdir)
    elapsed = time.monotonic() - started
    rows = [line.split(";") for line in stat.read_text().splitlines() if line.strip()]
    header, last = rows[0], rows[-1]
    ok = int(last[header.index("SuccessfulCall(C)")])
    failed = int(last[header.index("FailedCall(C)")])
    retrans = int(last[header.index("Retransmissions(C)")])
    return {"successful": ok, "failed": failed + max(0, calls - ok - failed), "retransmissions": retrans, "elapsed": elapsed}


def start_engine(workdir: Path) -> tuple[subprocess.Popen[str], int]:
    data_dir = workdir / "var"
    data_dir.mkdir()
    config = workdir / "bench.toml"
    config.write_text(ENGINE_CONFIG.format(data_dir=data_dir.as_posix()))
    script = ENGINE_MAIN.format(repo=str(REPO), config=str(config), data_dir=str(data_dir))
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        raise SystemExit(f"the engine did not start (got {line!r})")
    return process, int(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=int, default=100, help="first rate (calls/s)")
    parser.add_argument("--step", type=int, default=100, help="rate increase per step")
    parser.add_argument("--max-rate", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each step")
    parser.add_argument("--long", action="store_true", help="add a 10-minute run at 80%% of the best rate")
    parser.add_argument("--long-seconds", type=float, default=600.0)
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        raise SystemExit("SIPp is needed: apt-get install -y sip-tester")

    with tempfile.TemporaryDirectory(prefix="sip-cps-") as tmp:
        workdir = Path(tmp)
        engine, port = start_engine(workdir)
        target = f"127.0.0.1:{port}"
        steps = []
        best = 0
        try:
            rss_start = proc_rss_mib(engine.pid)
            rate = args.start
            while rate <= args.max_rate:
                cpu0 = proc_cpu_seconds(engine.pid)
                result = run_sipp(target, rate, int(rate * args.seconds), workdir, [])
                cpu_seconds = proc_cpu_seconds(engine.pid) - cpu0
                cpu = cpu_seconds / result["elapsed"]
                total = result["successful"] + result["failed"]
                failure_rate = result["failed"] / total if total else 1.0
                step = {
                    "rate": rate,
                    "calls": total,
                    "failed": result["failed"],
                    "failure_rate": round(failure_rate, 5),
                    "retransmissions": result["retransmissions"],
                    "achieved_cps": round(result["successful"] / result["elapsed"], 1),
                    "engine_cpu_cores": round(cpu, 3),
                    # CPU time per completed call: the figure least disturbed by other load on the box
                    "engine_cpu_ms_per_call": round(1000 * cpu_seconds / max(1, result["successful"]), 2),
                    "engine_rss_mib": round(proc_rss_mib(engine.pid), 1),
                }
                steps.append(step)
                # A step passes when (almost) every call succeeds *and* the calls kept up with the rate:
                # an overloaded engine lets SIPp retransmit until calls complete late, which is not
                # "sustained".
                step["sustained"] = failure_rate <= 0.001 and result["successful"] / result["elapsed"] >= 0.9 * rate
                print(json.dumps(step), file=sys.stderr, flush=True)
                if not step["sustained"]:
                    break
                best = rate
                rate += args.step
            long_run = None
            if args.long and best:
                long_rate = max(1, int(best * 0.8))
                samples = []
                started = time.monotonic()
                chunk = 30.0
                while time.monotonic() - started < args.long_seconds:
                    result = run_sipp(target, long_rate, int(long_rate * chunk), workdir, [])
                    samples.append({"t": round(time.monotonic() - started), "rss_mib": round(proc_rss_mib(engine.pid), 1), "failed": result["failed"]})
                    print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
                half = len(samples) // 2
                first = sum(s["rss_mib"] for s in samples[:half]) / max(1, half)
                second = sum(s["rss_mib"] for s in samples[half:]) / max(1, len(samples) - half)
                long_run = {"rate": long_rate, "seconds": round(time.monotonic() - started), "samples": samples,
                            "rss_first_half_mib": round(first, 1), "rss_second_half_mib": round(second, 1),
                            "failed": sum(s["failed"] for s in samples)}
            rss_end = proc_rss_mib(engine.pid)
        finally:
            assert engine.stdin is not None
            engine.stdin.close()
            try:
                engine.wait(timeout=15)
            except subprocess.TimeoutExpired:
                engine.kill()

        # SIPp calling SIPp directly, at the engine's best rate and at four times it.
        uas_port = free_port()
        uas = subprocess.Popen(
            ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-nostdin", "-max_recv_loops", "10000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
        )
        baseline = []
        try:
            time.sleep(0.5)  # let SIPp bind its socket before calling it
            for rate in sorted({max(best, args.start), max(best, args.start) * 4}):
                result = run_sipp(f"127.0.0.1:{uas_port}", rate, int(rate * args.seconds / 2), workdir, [])
                total = result["successful"] + result["failed"]
                baseline.append({"rate": rate, "calls": total, "failed": result["failed"],
                                 "achieved_cps": round(result["successful"] / result["elapsed"], 1),
                                 "sustained": result["failed"] <= 0.001 * total and result["successful"] / result["elapsed"] >= 0.9 * rate})
        finally:
            uas.terminate()
            uas.wait(timeout=10)
        sipp_best = max((b["rate"] for b in baseline if b["sustained"]), default=0)

    print(json.dumps({
        "benchmark": "sip_cps",
        "scenario": "SIPp uac -> engine (IVR answers; caller hangs up after 100 ms), UDP on loopback",
        "best_sustained_cps": best,
        "criterion": "failed calls <= 0.1% and completed calls/s >= 90% of the offered rate, per step",
        "step_seconds": args.seconds,
        "steps": steps,
        "engine_rss_mib": {"start": round(rss_start, 1), "end": round(rss_end, 1)},
        "sipp_to_sipp": baseline,
        "sipp_to_sipp_best_tested_cps": sipp_best,
        "ratio_engine_to_sipp": round(best / sipp_best, 3) if sipp_best else None,
        "long_run": long_run,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }, indent=1))


if __name__ == "__main__":
    main()
