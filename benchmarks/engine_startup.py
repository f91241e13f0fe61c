"""Time from `centralita run` to `/readyz` = 200, and idle resident memory.

Starts the installed engine (all discovered plugins, embedded defaults except ports: console and SIP on
port 0 so runs never collide) in a fresh data directory, polls /readyz, then reads VmRSS after it has
idled for a second. Repeats and reports the median.

    .venv/bin/python benchmarks/engine_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

CONSOLE = '[console]\nlisten = "127.0.0.1:0"\n'
SIP = '[sip]\nlisten = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]\n'


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def one_run(config: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "centralita.toml"
        path.write_text(config)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "--log-format", "human", "run", "--config", str(path)],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp,
        )
        port_found = threading.Event()
        port: list[int] = []

        def reader() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                match = re.search(r"console listening on https?://[\d.]+:(\d+)", line)
                if match and not port:
                    port.append(int(match.group(1)))
                    port_found.set()

        threading.Thread(target=reader, daemon=True).start()
        try:
            if not port_found.wait(30):
                raise RuntimeError("engine did not log its console port")
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port[0]}/readyz", timeout=5) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                time.sleep(0.005)
            ready = time.perf_counter() - started
            time.sleep(1.0)
            memory = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {"seconds_to_ready": ready, "idle_rss_mb": memory}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    import engine._plugins as plugins_module

    manager = plugins_module.PluginManager()
    manager.load_entry_points()
    config = CONSOLE + (SIP if "sip" in manager.infos else "")
    runs = [one_run(config) for _ in range(args.runs)]
    print(json.dumps({
        "benchmark": "engine_startup",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "plugins": sorted(n for n, i in manager.infos.items() if i.loaded),
        "runs": args.runs,
        "median_seconds_to_ready": round(statistics.median(r["seconds_to_ready"] for r in runs), 3),
        "max_seconds_to_ready": round(max(r["seconds_to_ready"] for r in runs), 3),
        "median_idle_rss_mb": round(statistics.median(r["idle_rss_mb"] for r in runs), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
