"""Fixtures for the SIP shell tests: a real engine with the SIP plugin on loopback, and raw SIP peers."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sip_shell_helpers import FAST_TIMERS, UdpPeer  # noqa: E402

@pytest.fixture
def sip_engine(tmp_path: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """``async with sip_engine(extra_toml) as (engine, channel)``: the real engine with the SIP plugin."""
    from engine.testing import open_test_engine

    import plugins.sip.plugin as sip_plugin

    @contextlib.asynccontextmanager
    async def open_engine(
        extra: str = "",
        *,
        sip: str = "",
        security: str = "rate = 10000\nburst = 10000\n",
        timers: str = FAST_TIMERS,
        data_dir: Path | None = None,
        plugins: tuple = (),
    ) -> AsyncIterator[Any]:
        text = (
            '[sip]\nlisten = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]\n'
            + sip
            + "\n[sip.security]\n"
            + security
            + timers
            + extra
        )
        async with open_test_engine(text, plugins=[sip_plugin, *plugins], data_dir=data_dir or tmp_path) as engine:
            yield engine, engine.channels["sip"]

    return open_engine


@pytest.fixture
async def udp_peer() -> AsyncIterator[UdpPeer]:
    peer = await UdpPeer().bind()
    try:
        yield peer
    finally:
        peer.close()
