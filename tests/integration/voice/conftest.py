"""Fixtures for what a caller on a real SIP call hears and does (voicemail, text-to-speech, music on
hold, transfers out through a trunk): the SIP tests' helpers (baresip phones, SIPp, fast timers) and
an engine with the SIP plugin whose prompt library the test fills first."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

for _helpers in (str(Path(__file__).resolve().parents[1] / "sip"), str(Path(__file__).resolve().parent)):
    if _helpers not in sys.path:
        sys.path.insert(0, _helpers)

from sip_interop_helpers import FAST_TIMERS


@pytest.fixture
def voice_engine(tmp_path: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """``async with voice_engine(toml) as (engine, channel)``: the real engine with the SIP plugin and
    ``tmp_path`` as its data directory (prompts go in ``tmp_path / "prompts"`` before it starts)."""
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
