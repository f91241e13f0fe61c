"""Serial I/O under trio on a pty: non-blocking fd stream (hardware._serial) vs pyserial in a worker thread.

Prints one JSON object. For each approach: median and p99 round-trip latency of an 8-byte AT-sized
exchange with an echoing peer, CPU time per round trip, bulk throughput, and how long cancelling a
blocked read takes. Also the hot sans-IO paths of the voice modem and GSM modem: DLE decoding
(voice needs 8 kB/s per line) and AT line parsing.

    .venv/bin/python benchmarks/serial.py [--round-trips 2000] [--bulk-kib 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import tty
from pathlib import Path

# This file is named serial.py: drop its own directory from the path so "import serial" is pyserial.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import serial
import trio

from hardware._at import AtMachine
from hardware._serial import open_serial_stream
from hardware.voice_modem._dle import DleDecoder, shield


def echo_peer() -> tuple[str, threading.Event]:
    """A pty whose far end echoes every byte back from a plain thread (the same peer for both)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            view = memoryview(data)
            while view:
                view = view[os.write(master, view) :]

    threading.Thread(target=run, daemon=True).start()
    return path, stop


def summarise(samples: list[float], cpu: float) -> dict[str, float]:
    samples.sort()
    return {
        "median_us": round(statistics.median(samples) * 1e6, 1),
        "p99_us": round(samples[int(len(samples) * 0.99) - 1] * 1e6, 1),
        "cpu_us_per_round_trip": round(cpu / len(samples) * 1e6, 1),
    }


async def fd_stream(round_trips: int, bulk: int) -> dict[str, float]:
    path, stop = echo_peer()
    stream = await open_serial_stream(path)
    message = b"AT+CSQ\r\n"
    samples = []
    cpu0 = time.process_time()
    for _ in range(round_trips):
        start = time.perf_counter()
        await stream.send_all(message)
        got = b""
        while len(got) < len(message):
            got += await stream.receive_some(64)
        samples.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu0
    result = summarise(samples, cpu)

    chunk = bytes(range(256)) * 16
    received = 0
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:

        async def writer() -> None:
            for _ in range(bulk // len(chunk)):
                await stream.send_all(chunk)

        nursery.start_soon(writer)
        while received < bulk:
            received += len(await stream.receive_some(65536))
    result["throughput_mib_s"] = round(bulk / (time.perf_counter() - start) / 2**20, 1)

    start = time.perf_counter()
    with trio.move_on_after(0.01):
        await stream.receive_some()
    result["cancel_blocked_read_ms"] = round((time.perf_counter() - start - 0.01) * 1e3, 2)
    await stream.aclose()
    stop.set()
    return result


async def pyserial_thread(round_trips: int, bulk: int) -> dict[str, float]:
    path, stop = echo_peer()
    port = serial.Serial(path, 115200, timeout=0.5)
    message = b"AT+CSQ\r\n"
    samples = []
    cpu0 = time.process_time()
    for _ in range(round_trips):
        start = time.perf_counter()
        await trio.to_thread.run_sync(port.write, message)
        got = await trio.to_thread.run_sync(port.read, len(message))
        assert got == message
        samples.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu0
    result = summarise(samples, cpu)

    chunk = bytes(range(256)) * 16
    received = 0
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:

        async def writer() -> None:
            for _ in range(bulk // len(chunk)):
                await trio.to_thread.run_sync(port.write, chunk)

        nursery.start_soon(writer)
        while received < bulk:
            received += len(await trio.to_thread.run_sync(lambda: port.read(max(1, port.in_waiting) or 1)))
    result["throughput_mib_s"] = round(bulk / (time.perf_counter() - start) / 2**20, 1)

    # A cancelled read in a worker thread only returns at pyserial's own timeout (0.5 s here).
    start = time.perf_counter()
    with trio.move_on_after(0.01):
        await trio.to_thread.run_sync(port.read, 1)
    result["cancel_blocked_read_ms"] = round((time.perf_counter() - start - 0.01) * 1e3, 2)
    port.close()
    stop.set()
    return result


def codecs() -> dict[str, float]:
    audio = bytes(range(256)) * 64  # 16 KiB with 64 DLE bytes to escape
    wire = shield(audio) + b"\x105\x10b"
    decoder = DleDecoder()
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        decoder.feed(wire)
    dle_rate = rounds * len(wire) / (time.perf_counter() - start)

    machine = AtMachine(urc_prefixes=("RING", "+CMTI:", "+CREG:"))
    block = b"\r\n+CSQ: 17,99\r\n\r\nOK\r\n" + b'\r\n+CMTI: "SM",3\r\n'
    lines = 0
    start = time.perf_counter()
    for _ in range(20000):
        machine.send_command("AT+CSQ", 0.0, timeout=1.0)
        machine.receive_data(block, 0.0)
        lines += len(machine.events()) + 1
    at_rate = lines / (time.perf_counter() - start)
    return {
        "dle_decode_mib_s": round(dle_rate / 2**20, 1),
        "dle_decode_voice_lines_per_core": int(dle_rate / 8000),
        "at_lines_per_s": int(at_rate),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--bulk-kib", type=int, default=2048)
    args = parser.parse_args()
    bulk = args.bulk_kib * 1024
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "trio": trio.__version__,
            "pyserial": serial.__version__,
        },
        "fd_stream": trio.run(fd_stream, args.round_trips, bulk),
        "pyserial_thread": trio.run(pyserial_thread, args.round_trips, bulk),
        "sans_io": codecs(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
