"""How long until a supervisor's dashboard shows a call that entered a queue, and what the dashboard's
live refreshes cost the server.

The real engine (``engine.testing.open_test_engine``) with a fake voice channel; headless Chromium
(Debian's, through Playwright) logged in as a supervisor on ``/``. Each call is placed from the engine's
trio thread; a MutationObserver in the page stamps ``Date.now()`` when the caller's number appears in
the interactions table (same machine, same clock). Between the two: the bus event, the WebSocket, the
script's 150 ms debounce, and the four API reads of a dashboard refresh (queues, interactions, agents,
alarms).

Prints JSON: latency percentiles from the call to the bus event and to the browser showing it, and
the engine process's CPU time per call (engine, console and their HTTP/WS work; the browser is
another process), next to its idle CPU over the same wall time.

    .venv/bin/python benchmarks/console_dashboard.py --calls 20 --gap 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import trio

from engine import hookimpl
from engine.console import add_user
from engine.testing import FakeVoiceChannel, open_test_engine

CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"

[[queues]]
name = "support"
members = ["alice"]

[[routes]]
match = "100"
queue = "support"
"""

PASSWORD = "benchmark supervisor"


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)


def _browser(url: str, calls: int, gap: float, place: Any) -> list[tuple[str, float, float]]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(base_url=url).new_page()
            page.goto("/login")
            page.fill('input[name="user"]', "sue")
            page.fill('input[name="password"]', PASSWORD)
            page.click('button[type="submit"]')
            page.wait_for_selector("#live-status:text('live')", timeout=30_000)
            page.evaluate("""() => {
                window.__seen = {};
                const table = document.getElementById("interactions");
                new MutationObserver(() => {
                    for (const td of table.querySelectorAll("td")) {
                        const t = td.textContent;
                        if (t.startsWith("+3460") && !(t in window.__seen)) window.__seen[t] = Date.now();
                    }
                }).observe(table, {childList: true, subtree: true, characterData: true});
            }""")
            for n in range(calls):
                number = f"+3460{n:07d}"
                sent = place(number)
                page.wait_for_function(f"() => window.__seen[{json.dumps(number)}]", timeout=30_000)
                out.append((number, sent, page.evaluate(f"() => window.__seen[{json.dumps(number)}]") / 1000))
                time.sleep(gap)
        finally:
            browser.close()
    return out


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50_ms": round(1000 * statistics.median(ordered), 1), "p90_ms": round(1000 * pick(0.9), 1),
            "max_ms": round(1000 * ordered[-1], 1)}


async def main(calls: int, gap: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=Path(tmp)) as engine:
            voice = engine.channels["fake"]
            one_time = await add_user(engine.store, "sue", "supervisor")
            async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:  # the forced change
                r = await client.post("/api/v1/login", json={"user": "sue", "password": one_time})
                r = await client.post("/api/v1/password", json={"current": one_time, "new": PASSWORD},
                                      headers={"x-csrf-token": r.json()["csrf"]})
                assert r.status_code == 200, r.text
            joined: dict[str, float] = {}
            engine.bus.add_listener(lambda e: joined.setdefault(e.interaction or "", e.timestamp)
                                    if e.event == "QueueCallerJoin" else None)
            ids: dict[str, str] = {}

            def place(number: str) -> float:
                def call() -> float:
                    sent = time.time()
                    ids[number] = voice.call(number, "100").id
                    return sent
                return trio.from_thread.run_sync(call)

            idle_cpu, idle_wall = time.process_time(), time.perf_counter()
            await trio.sleep(2)
            idle = (time.process_time() - idle_cpu) / (time.perf_counter() - idle_wall)
            cpu, wall = time.process_time(), time.perf_counter()
            seen = await trio.to_thread.run_sync(_browser, engine.console.url, calls, gap, place)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    to_bus = [joined[ids[n]] - sent for n, sent, _ in seen if ids.get(n) in joined]
    to_screen = [shown - sent for _, sent, shown in seen]
    return {
        "calls": calls, "gap_s": gap,
        "call_to_bus": _percentiles(to_bus),
        "call_to_dashboard": _percentiles(to_screen),
        "engine_cpu_ms_per_call": round(1000 * (cpu - idle * wall) / calls, 2),
        "engine_idle_cpu_share": round(idle, 4),
        "load_average": os.getloadavg(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between one call showing and the next")
    args = parser.parse_args()
    print(json.dumps(trio.run(main, args.calls, args.gap), indent=2))
