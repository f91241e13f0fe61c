"""Fixtures for call-recording tests against real SIP peers: the SIP tests' helpers (baresip phones,
fast timers) and a recordings directory that really fills up."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

_SIP_TESTS = str(Path(__file__).resolve().parents[1] / "sip")
if _SIP_TESTS not in sys.path:
    sys.path.insert(0, _SIP_TESTS)

from sip_interop_helpers import FAST_TIMERS


@pytest.fixture
def recording_engine(tmp_path: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """``async with recording_engine(toml) as (engine, channel)``: the real engine with the SIP plugin."""
    import plugins.sip.plugin as sip_plugin
    from engine.testing import open_test_engine

    @contextlib.asynccontextmanager
    async def open_engine(extra: str = "", *, sip: str = "") -> AsyncIterator[Any]:
        text = (
            '[sip]\nlisten = ["udp:127.0.0.1:0"]\n' + sip
            + "\n[sip.security]\nrate = 100000\nburst = 100000\n" + FAST_TIMERS + extra
        )
        async with open_test_engine(text, plugins=[sip_plugin], data_dir=tmp_path) as engine:
            yield engine, engine.channels["sip"]

    return open_engine


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A real filesystem that fills up: a 96 KiB tmpfs (the tests run as root, like the appliance's CI)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount_point)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"mounting a small tmpfs for the full-disk test needs root: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
async def voice_emulator(nursery: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """An emulated voice modem on a pty: an analog line whose calls cross to SIP agents."""
    from hardware.emulators import VoiceModemEmulator

    emulator = VoiceModemEmulator(link_dir=str(tmp_path / "serial"))
    await nursery.start(emulator.run)
    yield emulator
    emulator.pty.close()
