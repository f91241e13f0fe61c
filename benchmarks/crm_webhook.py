"""Webhook CRM benchmark: lookup rate against a real HTTP server, cache hits, outbox delivery rate.

    .venv/bin/python benchmarks/crm_webhook.py [--lookups 2000] [--concurrency 20] [--records 2000]

The CRM is a small keep-alive HTTP/1.1 server (raw trio sockets) in a child process, on 127.0.0.1.

1. Uncached lookups (``cache_ttl = 0``): sequential and ``--concurrency`` at once; each one is a signed
   GET, a JSON answer and the hostile-input mapping to a Contact. Latency percentiles of the sequential run.
2. Cached lookups: the same customer again and again (no HTTP), per second.
3. Outbox: ``--records`` interaction records queued (each durable in SQLite before ``record_interaction``
   returns, 50 at once), then the time until the CRM has acknowledged every signed push.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio

CONTACT = json.dumps({"contact": {"id": "7", "name": "Ana Ruiz", "phones": ["+34911000001"],
                                  "emails": ["ana@example.com"], "tags": ["vip"],
                                  "fields": {"plan": "gold", "balance": 12.5}}}).encode()


async def serve() -> None:
    """The child: answer every GET with CONTACT and every POST with 204, keeping connections alive."""
    pushes = 0

    async def handle(stream: trio.SocketStream) -> None:
        nonlocal pushes
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += await stream.receive_some(65536)
                buffer = buffer[length:]
                if head.startswith(b"POST"):
                    pushes += 1
                    await stream.send_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                else:
                    await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                          + str(len(CONTACT)).encode() + b"\r\n\r\n" + CONTACT)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        print(listeners[0].socket.getsockname()[1], flush=True)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def bench(port: int, lookups: int, concurrency: int, records: int) -> dict[str, Any]:
    from engine import Direction, Interaction, InteractionKind
    from engine.store import open_store
    from plugins.crm_webhook import WebhookCrm, WebhookCrmSettings
    from plugins.crm_webhook._outbox import MIGRATIONS

    url = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with open_store(Path(tmp) / "bench.db", MIGRATIONS) as store:
            settings = WebhookCrmSettings(lookup_url=f"{url}/lookup", push_url=f"{url}/push", secret="bench",
                                          timeout=5.0, cache_ttl=0)
            crm = WebhookCrm(store, settings)
            async with trio.open_nursery() as nursery:
                await nursery.start(crm.run)
                latencies = []
                start = time.perf_counter()
                for i in range(lookups):
                    t0 = time.perf_counter()
                    assert await crm.lookup(phone=f"+3460{i:07d}") is not None
                    latencies.append(time.perf_counter() - t0)
                elapsed = time.perf_counter() - start
                result["uncached_sequential"] = {"lookups": lookups, "per_second": round(lookups / elapsed, 1),
                                                 "p50_ms": round(percentile(latencies, 50) * 1000, 2),
                                                 "p99_ms": round(percentile(latencies, 99) * 1000, 2)}

                async def worker(offset: int) -> None:
                    for i in range(offset, lookups, concurrency):
                        assert await crm.lookup(phone=f"+3461{i:07d}") is not None

                start = time.perf_counter()
                async with trio.open_nursery() as workers:
                    for offset in range(concurrency):
                        workers.start_soon(worker, offset)
                elapsed = time.perf_counter() - start
                result["uncached_concurrent"] = {"lookups": lookups, "concurrency": concurrency,
                                                 "per_second": round(lookups / elapsed, 1)}
                if crm.statistics()["lookup_errors"] or crm.statistics()["lookup_timeouts"]:
                    result["lookup_problems"] = dict(crm.statistics())

                crm._cache.ttl = 3600.0  # the cached path: one customer asked again and again
                await crm.lookup(phone="+34911000001")
                hits = lookups * 20
                start = time.perf_counter()
                for _ in range(hits):
                    await crm.lookup(phone="+34911000001")
                result["cached"] = {"lookups": hits, "per_second": round(hits / (time.perf_counter() - start), 1)}

                interactions = [Interaction(InteractionKind.VOICE, Direction.INBOUND, from_=f"+3462{i:07d}", to="100",
                                            channel="sip") for i in range(records)]
                start = time.perf_counter()

                async def queue(offset: int) -> None:
                    for item in interactions[offset::50]:
                        await crm.record_interaction(item)

                async with trio.open_nursery() as writers:
                    for offset in range(50):
                        writers.start_soon(queue, offset)
                queued = time.perf_counter() - start
                while crm.statistics()["delivered"] < records:
                    await trio.sleep(0.01)
                elapsed = time.perf_counter() - start
                result["outbox"] = {"records": records, "queued_per_second": round(records / queued, 1),
                                    "delivered_per_second": round(records / elapsed, 1),
                                    "failures": crm.statistics()["delivery_failures"]}
                nursery.cancel_scope.cancel()
            await crm.aclose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve)
        return
    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        result = trio.run(bench, port, args.lookups, args.concurrency, args.records)
    finally:
        child.terminate()
        child.wait(timeout=10)
    result["machine"] = {"cores": 2, "python": platform.python_version()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
