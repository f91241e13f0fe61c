"""Console server benchmark: request throughput, events WebSocket throughput, login cost.

Runs the real engine (``engine.testing.open_test_engine``) with its console on a loopback port, and
drives it from the same process with light raw-socket clients (an HTTP/1.1 keep-alive loop and a
wsproto reader), so the numbers are the server's cost plus a small, constant client cost.

    .venv/bin/python benchmarks/console.py [--seconds 5] [--clients 4] [--events 20000]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from engine.console import add_token, add_user
from engine.testing import open_test_engine

CONFIG = """
[[agents]]
id = "alice"

[[queues]]
name = "support"
members = ["alice"]
"""


async def _read_response(stream: trio.SocketStream, buffer: bytearray) -> int:
    while b"\r\n\r\n" not in buffer:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("server closed")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("server closed")
        rest += chunk
    buffer[:] = rest[length:]
    return status


async def http_load(port: int, path: str, headers: str, seconds: float, clients: int) -> dict[str, Any]:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode()
    counts = [0] * clients
    latencies: list[float] = []
    deadline = trio.current_time() + seconds

    async def client(index: int) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        buffer = bytearray()
        async with stream:
            while trio.current_time() < deadline:
                started = time.perf_counter()
                await stream.send_all(request)
                status = await _read_response(stream, buffer)
                if status != 200:
                    raise RuntimeError(f"{path}: HTTP {status}")
                latencies.append(time.perf_counter() - started)
                counts[index] += 1

    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index in range(clients):
            nursery.start_soon(client, index)
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": sum(counts),
        "requests_per_s": round(sum(counts) / elapsed),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


async def ws_throughput(engine: Any, port: int, token: str, events: int) -> dict[str, Any]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host="127.0.0.1", target="/api/v1/events",
                                          extra_headers=[("authorization", f"Bearer {token}")])))
    accepted = False
    while not accepted:
        ws.receive_data(await stream.receive_some(65536))
        accepted = any(isinstance(e, AcceptConnection) for e in ws.events())
    while engine.bus.statistics().subscribers < 1:
        await trio.sleep(0.01)
    received = 0
    began = time.perf_counter()
    # publish in bursts the subscriber buffer can hold, as real traffic would arrive
    sent = 0
    async with stream:
        while received < events:
            while sent < events and sent - received < 200:
                # a name the queue log does not persist, so this measures the console, not the store
                engine.bus.publish("BenchmarkEvent", interaction=f"i{sent}", Queue="support", Position=sent)
                sent += 1
            ws.receive_data(await stream.receive_some(65536))
            received += sum(1 for e in ws.events() if isinstance(e, TextMessage))
    elapsed = time.perf_counter() - began
    return {"events": received, "events_per_s": round(received / elapsed),
            "dropped": engine.bus.statistics().dropped}


async def login_cost(port: int, user: str, password: str, attempts: int = 5) -> dict[str, Any]:
    body = json.dumps({"user": user, "password": password}).encode()
    request = (f"POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
               f"content-length: {len(body)}\r\n\r\n").encode() + body
    times = []
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    buffer = bytearray()
    async with stream:
        for _ in range(attempts):
            started = time.perf_counter()
            await stream.send_all(request)
            status = await _read_response(stream, buffer)
            if status != 200:
                raise RuntimeError(f"login: HTTP {status}")
            times.append(time.perf_counter() - started)
    times.sort()
    return {"login_median_ms": round(times[len(times) // 2] * 1000, 1)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="centralita-bench-") as tmp:
        started = time.perf_counter()
        async with open_test_engine(CONFIG, data_dir=Path(tmp)) as engine:
            startup = time.perf_counter() - started
            port = engine.console.bound_port
            token = await add_token(engine.store, "bench", "admin")
            password = await add_user(engine.store, "bench-user", "agent")
            auth = f"Authorization: Bearer {token}\r\n"
            results: dict[str, Any] = {
                "benchmark": "console",
                "machine": {"cpus": 2, "python": platform.python_version()},
                "engine_start_to_console_listening_s": round(startup, 3),
                "livez": await http_load(port, "/livez", "", args.seconds, args.clients),
                "api_agents_bearer": await http_load(port, "/api/v1/agents", auth, args.seconds, args.clients),
                "metrics": await http_load(port, "/metrics", "", args.seconds, 1),
                "ws_events": await ws_throughput(engine, port, token, args.events),
                **await login_cost(port, "bench-user", password),
            }
            results["store"] = engine.store.statistics()
            return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per HTTP load phase")
    parser.add_argument("--clients", type=int, default=4, help="concurrent keep-alive connections")
    parser.add_argument("--events", type=int, default=20000, help="events to push through the WebSocket")
    print(json.dumps(trio.run(main, parser.parse_args())))
