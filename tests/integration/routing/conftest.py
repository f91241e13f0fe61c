"""Fixtures for the routing end-to-end tests: the real engine with the SIP plugin, SIPp callers and a
baresip agent on loopback. The SIP integration helpers are reused (their folder goes on sys.path)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "sip"))
sys.path.insert(0, str(HERE))

from sip_interop_helpers import FAST_TIMERS


@pytest.fixture
def routing_engine(tmp_path: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """``async with routing_engine(toml, sip=...) as (engine, channel)``, data in ``tmp_path/engine``."""
    import plugins.sip.plugin as sip_plugin
    from engine.testing import open_test_engine

    @contextlib.asynccontextmanager
    async def open_engine(extra: str = "", *, sip: str = "") -> AsyncIterator[Any]:
        text = (
            '[sip]\nlisten = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]\n'
            + sip
            + "\n[sip.security]\nrate = 100000\nburst = 100000\n"
            + FAST_TIMERS
            + extra
        )
        async with open_test_engine(text, plugins=[sip_plugin], data_dir=tmp_path / "engine") as engine:
            yield engine, engine.channels["sip"]

    return open_engine
