"""Fixtures for SIP integration tests against real peers (SIPp, baresip) on loopback."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sip_interop_helpers import FAST_TIMERS  # noqa: E402


@pytest.fixture
def sip_engine(tmp_path: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """``async with sip_engine(toml) as (engine, channel)``: the real engine with the SIP plugin."""
    from engine.testing import open_test_engine

    import plugins.sip.plugin as sip_plugin

    @contextlib.asynccontextmanager
    async def open_engine(
        extra: str = "", *, sip: str = "", data_dir: Path | None = None, timers: str = FAST_TIMERS
    ) -> AsyncIterator[Any]:
        text = (
            '[sip]\nlisten = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]\n'
            + sip
            + "\n[sip.security]\nrate = 100000\nburst = 100000\n"
            + timers
            + extra
        )
        async with open_test_engine(text, plugins=[sip_plugin], data_dir=data_dir or tmp_path) as engine:
            yield engine, engine.channels["sip"]

    return open_engine
