"""Engine lifecycle: start order, supervision, broken plugins, graceful shutdown, clear start-up errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from engine import PluginError, hookimpl
from engine.abc import Service
from engine.testing import open_test_engine

REPO = Path(__file__).resolve().parents[3]


class Flaky(Service):
    """Crashes the first ``failures`` times it runs, then serves."""

    def __init__(self, failures: int, critical: bool = False) -> None:
        self.failures = failures
        self.runs = 0
        self.closed = 0
        type(self).critical = critical  # type: ignore[misc]

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        self.runs += 1
        task_status.started()
        if self.runs <= self.failures:
            raise RuntimeError(f"crash number {self.runs}")
        await trio.sleep_forever()

    async def aclose(self) -> None:
        self.closed += 1


def services_plugin(**services: Service) -> object:
    class Plugin:
        @hookimpl
        def centralita_register_services(self, registry: Any) -> None:
            for name, service in services.items():
                registry.add(name, lambda context, s=service: s)

    return Plugin()


async def test_crashing_service_is_restarted_with_backoff(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    flaky = Flaky(failures=3)
    async with open_test_engine(plugins=[services_plugin(flaky=flaky)], data_dir=tmp_path) as engine:
        with trio.fail_after(30):
            while flaky.runs < 4:
                await trio.sleep(0.05)
        state = next(s for s in engine.supervisor.states if s.name == "service:flaky")
        assert state.restarts == 3 and "crash number 3" in (state.last_error or "")
        assert flaky.closed == 3  # every crashed run was closed before the next
        assert engine.ready()[0]
    assert "service service:flaky" in caplog.text and "crash number 1" in caplog.text


async def test_backoff_doubles_on_a_virtual_clock(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    from engine._services import Supervisor

    flaky = Flaky(failures=5)
    supervisor = Supervisor(backoff=1.0, backoff_max=4.0)
    starts: list[float] = []
    original = flaky.run

    async def timed_run(**kwargs: Any) -> None:
        starts.append(trio.current_time())
        await original(**kwargs)

    flaky.run = timed_run  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await supervisor.start(nursery, flaky, name="flaky", plugin="test")
        while len(starts) < 6:
            await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    gaps = [round(b - a) for a, b in zip(starts, starts[1:])]
    assert gaps == [1, 2, 4, 4, 4]


async def test_critical_service_failure_stops_the_engine(tmp_path: Path) -> None:
    from engine._services import CriticalServiceFailed

    with pytest.RaisesGroup(pytest.RaisesExc(CriticalServiceFailed, match="critical service 'service:vital'"), flatten_subgroups=True):
        async with open_test_engine(plugins=[services_plugin(vital=Flaky(failures=1, critical=True))], data_dir=tmp_path):
            await trio.sleep_forever()


async def test_a_plugin_whose_hook_raises_is_reported_and_left_out(tmp_path: Path) -> None:
    class Broken:
        @hookimpl
        def centralita_register_services(self, registry: Any) -> None:
            raise ValueError("I am broken")

    healthy = Flaky(failures=0)
    async with open_test_engine(plugins=[Broken(), services_plugin(fine=healthy)], data_dir=tmp_path) as engine:
        status = engine.status()
        broken = [p for p in status["plugins"] if p["error"]]
        assert len(broken) == 1 and "I am broken" in broken[0]["error"]
        assert engine.ready()[0] and healthy.runs == 1


async def test_required_plugin_that_raises_stops_start_up(tmp_path: Path) -> None:
    class Broken:
        @hookimpl
        def centralita_register_services(self, registry: Any) -> None:
            raise ValueError("I am broken")

    broken = Broken()
    config = f'[plugins]\nrequired = ["{type(broken).__name__}"]\n'
    with pytest.RaisesGroup(PluginError, flatten_subgroups=True, allow_unwrapped=True):
        async with open_test_engine(config, plugins=[broken], data_dir=tmp_path):
            pass


async def test_shutdown_closes_services_in_reverse_order(tmp_path: Path) -> None:
    closed: list[str] = []

    class Recorder(Service):
        def __init__(self, name: str) -> None:
            self.name = name

        async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await trio.sleep_forever()

        async def aclose(self) -> None:
            closed.append(self.name)

    plugin = services_plugin(first=Recorder("first"), second=Recorder("second"))
    async with open_test_engine(plugins=[plugin], data_dir=tmp_path):
        pass
    assert closed == ["second", "first"]


def start_engine(tmp_path: Path, config: str, *extra: str) -> subprocess.Popen[str]:
    path = tmp_path / "centralita.toml"
    path.write_text(config)
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "--log-format", "human", "run", "--config", str(path), *extra],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def wait_for_line(proc: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"engine exited ({proc.wait()}) before logging {pattern!r}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully_with_exit_0(tmp_path: Path, signum: int) -> None:
    proc = start_engine(tmp_path, '[console]\nlisten = "127.0.0.1:0"\n[plugins]\ndisable = ["sip"]\n')
    try:
        port = int(wait_for_line(proc, r"console listening on http://127\.0\.0\.1:(\d+)").group(1))
        wait_for_line(proc, "engine ready")
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
        proc.send_signal(signum)
        wait_for_line(proc, "engine stopped")
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert (tmp_path / "var" / "centralita.db").exists()  # relative data_dir resolved against the file


def test_port_in_use_exits_2_naming_the_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = start_engine(tmp_path, f'[console]\nlisten = "127.0.0.1:{port}"\n[plugins]\ndisable = ["sip"]\n')
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert str(port) in err and "console.listen" in err or "[console] listen" in err


def test_unwritable_data_dir_exits_2(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("")
    proc = start_engine(tmp_path, '[console]\nlisten = "127.0.0.1:0"\n', "--data-dir", str(tmp_path / "blocker" / "data"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "not writable" in err and "--data-dir" in err


def test_newer_database_exits_2_and_is_untouched(tmp_path: Path) -> None:
    import sqlite3

    data = tmp_path / "var"
    data.mkdir()
    db = data / "centralita.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_versions VALUES ('engine', 99)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    proc = start_engine(tmp_path, '[console]\nlisten = "127.0.0.1:0"\n')
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "newer Centralita" in err
    assert db.read_bytes() == before


def test_missing_required_plugin_exits_2(tmp_path: Path) -> None:
    proc = start_engine(tmp_path, '[console]\nlisten = "127.0.0.1:0"\n[plugins]\nrequired = ["nonexistent"]\n')
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "'nonexistent'" in err and "not installed" in err


def test_systemd_notifications_ready_and_stopping(tmp_path: Path) -> None:
    """Under systemd (NOTIFY_SOCKET set) the engine says READY=1 once serving and STOPPING=1 on SIGTERM."""
    sock_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(sock_path))
        listener.settimeout(60)
        path = tmp_path / "centralita.toml"
        path.write_text('[console]\nlisten = "127.0.0.1:0"\n[plugins]\ndisable = ["sip"]\n')
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "run", "--config", str(path)],
            stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO), "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "2000000"},
        )
        try:
            messages = [listener.recv(256).decode()]
            while "READY=1" not in messages:
                messages.append(listener.recv(256).decode())
            proc.send_signal(signal.SIGTERM)
            while "STOPPING=1" not in messages:
                messages.append(listener.recv(256).decode())
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()
    assert messages.index("READY=1") < messages.index("STOPPING=1")
    assert "WATCHDOG=1" in messages



def test_sip_port_in_use_exits_2_naming_the_port(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        proc = start_engine(tmp_path, f'[console]\nlisten = "127.0.0.1:0"\n[sip]\nlisten = ["udp:127.0.0.1:{port}"]\n')
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err[-2000:]
    assert str(port) in err
