"""Chat channel benchmark: 1,000 concurrent visitors over real WebSockets to the real engine.

Measures (1) the engine's memory per idle visitor connection (RSS of the engine process, the visitors
run in a child process) and (2) messages per second end to end: visitor frame -> stored -> interaction
created and handed to routing (offered to an agent or queued), with every visitor sending at once.

    .venv/bin/python benchmarks/chat.py [--visitors 1000] [--messages 3]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = """
[[agents]]
id = "a{n}"
endpoint = "sip:10{n:02d}"
channels = {{ chat = 3 }}
"""


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ------------------------------------------------------------------------------------ visitor side

async def visitors_main(url: str, count: int, messages: int) -> None:
    """Child process: open ``count`` sockets, say hello, report, wait for 'go', then send and report."""
    from urllib.parse import urlsplit

    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Message, Request

    parts = urlsplit(url)

    async def open_one() -> tuple[trio.SocketStream, WSConnection]:
        stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host=parts.netloc, target="/chat/ws")))
        while True:
            ws.receive_data(await stream.receive_some(65536))
            if any(isinstance(e, AcceptConnection) for e in ws.events()):
                break
        await stream.send_all(ws.send(Message(data=json.dumps({"type": "hello", "token": None, "name": "b"}))))
        return stream, ws

    conns: list[tuple[trio.SocketStream, WSConnection]] = []
    limiter = trio.CapacityLimiter(50)

    async def opener() -> None:
        async with limiter:
            conns.append(await open_one())

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(opener)

    async def drain(stream: trio.SocketStream) -> None:
        try:
            while await stream.receive_some(65536):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async with trio.open_nursery() as nursery:
        for stream, _ in conns:
            nursery.start_soon(drain, stream)
        print("connected", flush=True)
        await trio.to_thread.run_sync(sys.stdin.readline)
        for n in range(messages):
            for stream, ws in conns:
                await stream.send_all(ws.send(Message(data=json.dumps({"type": "message", "text": f"msg {n}"}))))
        print("sent", flush=True)
        await trio.to_thread.run_sync(sys.stdin.readline)
        nursery.cancel_scope.cancel()


# ------------------------------------------------------------------------------------ engine side

async def engine_main(count: int, messages: int) -> dict[str, object]:
    from engine import InteractionState
    from engine.testing import open_test_engine
    from plugins.chat import plugin as chat_plugin

    agents = "".join(CONFIG.format(n=n) for n in range(10))
    config = agents + '[[queues]]\nname = "web"\nmembers = [' + ", ".join(f'"a{n}"' for n in range(10)) + ']\n'
    if os.environ.get("CHAT_BENCH_NO_ROUTE") != "1":
        config += '[[routes]]\nmatch = "webchat"\nqueue = "web"\n'
    config += '[chat]\nrate = 50.0\nburst = 20\n'
    with tempfile.TemporaryDirectory() as tmp:
        async with open_test_engine(config, plugins=[chat_plugin], data_dir=Path(tmp)) as engine:
            channel = engine.channels["chat"]
            before = rss_kib()
            child = await trio.lowlevel.open_process(
                [sys.executable, __file__, "--child", engine.console.url, str(count), str(messages)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )
            lines = _lines(child.stdout)
            assert await lines.__anext__() == "connected"
            with trio.fail_after(120):
                while channel.counters["open"] < count:
                    await trio.sleep(0.05)
            await trio.sleep(1.0)  # let allocations settle before sampling RSS
            idle = rss_kib()
            start = time.perf_counter()
            await child.stdin.send_all(b"go\n")
            with trio.fail_after(170):
                while channel.counters["received"] < count * messages:
                    await trio.sleep(0.005)
            elapsed = time.perf_counter() - start
            routed = sum(1 for i in engine.interactions.values()
                         if i.state in (InteractionState.QUEUED, InteractionState.OFFERED, InteractionState.ACTIVE))
            await child.stdin.send_all(b"stop\n")
            await child.wait()
            return {
                "benchmark": "chat",
                "visitors": count,
                "messages_per_visitor": messages,
                "messages": count * messages,
                "seconds": round(elapsed, 3),
                "messages_per_second": round(count * messages / elapsed, 1),
                "interactions_routed": routed,
                "engine_rss_before_kib": before,
                "engine_rss_idle_kib": idle,
                "kib_per_idle_visitor": round((idle - before) / count, 1),
                "rejected_frames": channel.counters["rejected_frames"],
                "store": engine.store.statistics(),
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
            }


async def _lines(stream):  # type: ignore[no-untyped-def]
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield line.decode().strip()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        trio.run(visitors_main, sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=3)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    print(json.dumps(trio.run(engine_main, args.visitors, args.messages)))


if __name__ == "__main__":
    main()
