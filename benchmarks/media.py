"""Media relay benchmark: N concurrent two-leg G.711 calls bridged through the MediaEngine on loopback.

    .venv/bin/python benchmarks/media.py [--calls 50,100,200,400] [--seconds 5] [--no-record | --only-record]
                                         [--no-hot-path] [--gc none,freeze,freeze-threshold]
                                         (MEDIA_BENCH_PIN=1: engine on CPU 0, generator on 1)

Three processes: this one (the conductor), the engine and a load generator, each of the last two in a
session of its own: for every call the generator owns a "caller" and an "agent" UDP socket that each
send one 172-byte RTP packet every 20 ms (50 pps per leg, staggered over the 20 ms), stamped with the
send time, and receive what the engine relays from the other leg. Each N runs without recording and
then with stereo recording to a temporary directory. Prints one JSON object.

Reported per run: packets/s relayed, engine CPU (utime+stime from /proc over the measured window) as a
percentage of one core, CPU µs per relayed packet, the engine's run-queue wait (time other work kept it
from a CPU), the generator's CPU, p50/p99/max forwarding delay (send to receive, including the
generator's own scheduling), lost (sent but never received) and late (> 40 ms) packets, engine RSS
growth per call and its garbage-collector pauses. Before the runs, ``hot_path``: the engine's receive
round alone on real sockets, in-process (see docs/performance/media.md).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def pin(cpu: int) -> None:
    if not os.environ.get("MEDIA_BENCH_PIN"):
        return  # on a shared box pinning fights other processes for one core; opt in with MEDIA_BENCH_PIN=1
    try:
        if len(os.sched_getaffinity(0)) > 1:
            os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def runqueue_wait_seconds(pid: int) -> float:
    """Time the process's main thread spent runnable but waiting for a CPU (other work on the box)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_seconds(pid: int) -> float:
    return sum(cpu_split(pid))


# -- the engine process ------------------------------------------------------------------------------


def engine_main(calls: int, record_dir: str | None, gc_mode: str = "none") -> None:
    pin(0)
    sys.path.insert(0, str(ROOT))
    import trio

    from engine.media import MediaEngine

    import gc

    gc_pauses: list[tuple[int, float]] = []  # (generation, seconds) of every collection
    gc_started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses.append((info["generation"], time.perf_counter() - gc_started[0]))

    gc.callbacks.append(on_gc)

    async def main() -> None:
        media = MediaEngine(rtcp=False)
        async with trio.open_nursery() as nursery:
            await nursery.start(media.run)
            if gc_mode != "none":
                # What ``centralita run`` does once the engine is up (engine._cli.settle_startup_heap):
                # before any call exists, so the calls' own objects stay collectable as in production.
                from engine._cli import settle_startup_heap

                settle_startup_heap(raise_threshold=gc_mode == "freeze-threshold")
            gc_pauses.clear()
            baseline = rss_bytes(os.getpid())
            ports = []
            for i in range(calls):
                a = media.allocate(codec="PCMU")
                b = media.allocate(codec="PCMU")
                bridge = media.bridge(a, b)
                if record_dir:
                    bridge.start_recording(Path(record_dir) / f"call{i}.wav", stereo=True)
                ports.append((a.local_address[1], b.local_address[1]))
            print(json.dumps({"ports": ports, "rss_before": baseline, "rss_after": rss_bytes(os.getpid())}),
                  flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)  # until the conductor closes our stdin
            pauses = [p for _, p in gc_pauses]
            # What one full collection costs with every call still up (CPU time: the box is shared).
            forced = time.process_time()
            gc.collect()
            forced = time.process_time() - forced
            print(json.dumps({"statistics": media.statistics(), "gc": {
                "collections": len(pauses), "full": sum(1 for g, _ in gc_pauses if g == 2),
                "max_pause_ms": round(1000 * max(pauses, default=0.0), 2),
                "total_ms": round(1000 * sum(pauses), 1),
                "forced_full_cpu_ms": round(1000 * forced, 2),
                "tracked_objects": len(gc.get_objects())}}), flush=True)
            nursery.cancel_scope.cancel()

    profile_to = os.environ.get("MEDIA_BENCH_PROFILE")
    if profile_to:
        import cProfile

        cProfile.runctx("trio.run(main)", globals(), {"trio": trio, "main": main}, profile_to)
    else:
        trio.run(main)


# -- the load generator process ----------------------------------------------------------------------


def generator_main(ports: list[tuple[int, int]], warmup: float, seconds: float) -> None:
    """Send for every leg, receive what the engine relays; print counts and delays as JSON.

    Kept cheap so that it is never the bottleneck: each leg's socket is connect()ed to its engine port
    (send, not sendto), each leg's packet is one bytearray whose header and send-time stamp are
    rewritten in place, and each ready socket is read once per epoll round (level-triggered), so there
    is no trailing recv that fails with EAGAIN. Its own CPU use is reported beside the engine's.
    """
    pin(1)
    header = struct.Struct("!HIId")  # sequence, timestamp, SSRC, then the send time as the payload's start
    legs = []  # [socket, packet, sequence, ssrc]
    for port_a, port_b in ports:
        for port in (port_a, port_b):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
            sock.bind(("127.0.0.1", 0))
            sock.connect(("127.0.0.1", port))
            sock.setblocking(False)
            packet = bytearray(172)
            packet[0] = 0x80  # V=2, PT 0 (PCMU)
            legs.append([sock, packet, 0, len(legs) + 1])
    by_fd = {leg[0].fileno(): leg[0] for leg in legs}
    epoll = select.epoll()
    for fd in by_fd:
        epoll.register(fd, select.EPOLLIN)
    slots = 10  # legs are spread over ten 2 ms slots of each 20 ms period
    start = time.monotonic()
    measure_from = start + warmup
    stop_sending = measure_from + seconds
    end = stop_sending + 0.5  # drain
    delays: list[float] = []
    sent = received = late = 0
    next_slot = start
    slot = 0
    announced = False
    stamp_at = struct.Struct("!d")
    pack_into = header.pack_into
    unpack_stamp = stamp_at.unpack_from
    buffer = bytearray(2048)
    monotonic = time.monotonic
    while True:
        now = monotonic()
        if now >= end:
            break
        if now >= next_slot and now < stop_sending:
            for leg in legs[slot::slots]:
                seq = leg[2] = leg[2] + 1
                t = monotonic()
                pack_into(leg[1], 2, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, leg[3], t)
                try:
                    leg[0].send(leg[1])
                except OSError:
                    continue
                if t >= measure_from:
                    sent += 1
            slot = (slot + 1) % slots
            next_slot += 0.002
            if now - next_slot > 0.1:
                next_slot = now  # we fell behind: do not burst
        if not announced and now >= measure_from:
            print("MEASURE", flush=True)
            announced = True
        timeout = max(0.0, min(next_slot, end) - monotonic())
        events = epoll.poll(timeout)
        t = monotonic()
        for fd, _ in events:
            try:
                by_fd[fd].recv_into(buffer)
            except OSError:
                continue
            (sent_at,) = unpack_stamp(buffer, 12)
            if sent_at >= measure_from:
                received += 1
                delay = t - sent_at
                delays.append(delay)
                if delay > 0.040:
                    late += 1
    delays.sort()

    def pct(p: float) -> float | None:
        return round(delays[min(len(delays) - 1, int(p * len(delays)))] * 1000, 3) if delays else None

    print(json.dumps({
        "sent": sent, "received": received, "lost": max(0, sent - received), "late": late,
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0), "seconds": seconds,
    }), flush=True)


# -- load-independent parts: the Python hot path alone, and the bare syscalls --------------------------


def hot_path_microbenchmark(pairs: int = 400, rounds: int = 40) -> dict:
    """CPU µs per relayed packet of the engine's receive round alone (no trio, no epoll wait), on real
    loopback sockets: ``pairs`` bridged calls, each round one packet into every caller leg, then one
    ``receive_round`` relays them all; and the bare connected send+recv syscall pair on this machine.
    The difference is our Python. Measured in-process, so a busy machine distorts it less than the
    end-to-end runs (the best of the rounds is reported)."""
    sys.path.insert(0, str(ROOT))
    from engine.media import MediaEngine, RtpPacket
    from engine.media._receive import ReceiveBuffer, receive_round

    media = MediaEngine(rtcp=False)
    phones = []
    for k in range(pairs):
        a, b = media.allocate(), media.allocate()
        media.bridge(a, b)
        caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        agent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for phone, leg in ((caller, a), (agent, b)):
            phone.bind(("127.0.0.1", 0))
            phone.connect(leg.local_address)
            phone.setblocking(False)
        phones.append((caller, agent, a, b, k))
    buffer = ReceiveBuffer()
    # latch both legs of every call (the first packets take the general path)
    for caller, agent, a, b, k in phones:
        agent.send(RtpPacket(0, 1, 160, 900 + k, bytes(160)).build())
    receive_round(media._by_fd, [(b._rtp.fileno(), 1) for _, _, _, b, _ in phones], 0.0, buffer)
    events = [(a._rtp.fileno(), 1) for _, _, a, _, _ in phones]
    best = float("inf")
    for r in range(rounds):
        for caller, agent, a, b, k in phones:
            caller.send(RtpPacket(0, r, 160 * r, 77 + k, bytes(160)).build())
        t = time.process_time()
        receive_round(media._by_fd, events, 0.02 * r, buffer)
        elapsed = time.process_time() - t
        if r >= 3:  # the first rounds latch and take the general path
            best = min(best, elapsed / pairs * 1e6)
        for caller, agent, a, b, k in phones:
            agent.recv(2048)
    relayed = sum(e.relayed for e in media._endpoints)
    for caller, agent, a, b, k in phones:
        caller.close()
        agent.close()
        media.release(a)
        media.release(b)
    assert relayed >= pairs * rounds, relayed

    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    tx.connect(rx.getsockname())
    rx.connect(tx.getsockname())
    payload = bytes(172)
    syscalls = float("inf")
    for _ in range(3):
        t = time.process_time()
        for _ in range(2000):
            tx.send(payload)
            rx.recv(2048)
        syscalls = min(syscalls, (time.process_time() - t) / 2000 * 1e6)
    tx.close()
    rx.close()
    return {"pairs": pairs, "receive_round_us_per_packet": round(best, 2), "send_recv_syscalls_us": round(syscalls, 2),
            "python_us_per_packet": round(best - syscalls, 2)}


# -- the conductor -------------------------------------------------------------------------------------


def run_one(calls: int, record: bool, warmup: float, seconds: float, gc_mode: str = "none") -> dict:
    with tempfile.TemporaryDirectory(prefix="media-bench-") as tmp:
        engine_cmd = [sys.executable, __file__, "--role", "engine", "--calls", str(calls), "--gc", gc_mode]
        if record:
            engine_cmd += ["--record-dir", tmp]
        # Engine and generator each in a session of their own: with the kernel's autogroup scheduling a
        # session shares one slice of the CPUs, so in one session they would fight each other for it.
        engine = subprocess.Popen(engine_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  start_new_session=True)
        try:
            setup = json.loads(engine.stdout.readline())
            generator = subprocess.Popen(
                [sys.executable, __file__, "--role", "generator", "--warmup", str(warmup), "--seconds", str(seconds)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
            )
            generator.stdin.write(json.dumps(setup["ports"]))
            generator.stdin.close()
            assert generator.stdout.readline().strip() == "MEASURE"
            (user0, sys0), t0 = cpu_split(engine.pid), time.monotonic()
            gen0, wait0 = cpu_seconds(generator.pid), runqueue_wait_seconds(engine.pid)
            time.sleep(seconds)
            (user1, sys1), t1 = cpu_split(engine.pid), time.monotonic()
            gen1, wait1 = cpu_seconds(generator.pid), runqueue_wait_seconds(engine.pid)
            cpu0, cpu1 = user0 + sys0, user1 + sys1
            load = json.loads(generator.stdout.readline())
            generator.wait(timeout=30)
            engine.stdin.close()
            final = json.loads(engine.stdout.readline())
            stats = final["statistics"]
            engine.wait(timeout=60)
            recorded_bytes = sum(p.stat().st_size for p in Path(tmp).glob("*.wav")) if record else 0
        finally:
            if engine.poll() is None:
                engine.kill()
    relayed_pps = load["received"] / seconds
    cpu = (cpu1 - cpu0) / (t1 - t0)
    return {
        "calls": calls,
        "record": record,
        "gc_mode": gc_mode,
        "packets_per_s": round(relayed_pps),
        "engine_cpu_percent": round(100 * cpu, 1),
        "cpu_us_per_packet": round(1e6 * (cpu1 - cpu0) / max(load["received"], 1), 2),
        "generator_cpu_percent": round(100 * (gen1 - gen0) / (t1 - t0), 1),
        # > a few % means the engine was kept waiting for a CPU by other work: delays and loss then say
        # more about the machine than about the engine
        "engine_runqueue_wait_percent": round(100 * (wait1 - wait0) / (t1 - t0), 1),
        "kernel_share_percent": round(100 * (sys1 - sys0) / max(cpu1 - cpu0, 1e-9)),
        "p50_delay_ms": load["p50_ms"],
        "p99_delay_ms": load["p99_ms"],
        "max_delay_ms": load["max_ms"],
        "lost": load["lost"],
        "loss_percent": round(100 * load["lost"] / max(load["sent"], 1), 3),
        "late_over_40ms": load["late"],
        "memory_per_call_kb": round((setup["rss_after"] - setup["rss_before"]) / calls / 1024, 1),
        "recorded_mb": round(recorded_bytes / 1e6, 1),
        "engine_receive_passes": stats["receive_passes"],
        "engine_datagrams": stats["datagrams"],
        "engine_errors": stats["receive_errors"] + stats["send_errors"],
        "engine_gc": final["gc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["conductor", "engine", "generator"], default="conductor")
    parser.add_argument("--calls", default="50,100,200,400")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--record-dir")
    parser.add_argument("--no-record", action="store_true", help="skip the runs with recording")
    parser.add_argument("--only-record", action="store_true", help="skip the runs without recording")
    parser.add_argument("--no-hot-path", action="store_true", help="skip the in-process microbenchmark")
    parser.add_argument("--gc", default="none",
                        help="comma-separated garbage-collector set-ups to compare, each run in turn for every N: "
                             "none | freeze (gc.freeze() after start-up) | freeze-threshold (and a larger gen0)")
    args = parser.parse_args()
    if args.role == "engine":
        engine_main(int(args.calls), args.record_dir, args.gc)
        return
    if args.role == "generator":
        generator_main([tuple(p) for p in json.loads(sys.stdin.read())], args.warmup, args.seconds)
        return
    runs = []
    load_before = os.getloadavg()
    settings = {k: os.environ.get(k) for k in ("MEDIA_BENCH_PIN",)}
    print(json.dumps({"load_average_before": load_before}), file=sys.stderr, flush=True)
    hot_path = None if args.no_hot_path else hot_path_microbenchmark()
    print(json.dumps(hot_path), file=sys.stderr, flush=True)
    for calls in (int(c) for c in args.calls.split(",")):
        for record in (False,) if args.no_record else (True,) if args.only_record else (False, True):
            for gc_mode in args.gc.split(","):
                runs.append(run_one(calls, record, args.warmup, args.seconds, gc_mode))
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    print(json.dumps({
        "benchmark": "media-relay",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "settings": settings,
        "hot_path": hot_path,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "packet": "172-byte RTP (160-byte PCMU payload), 50 pps per leg, both directions",
        "runs": runs,
    }, indent=1))


if __name__ == "__main__":
    main()
