"""Fixtures for the analog-line integration tests: an emulated voice modem on a pty, real peers."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

# this folder (analog_helpers) and the SIP tests' folder (baresip_agent, the shared baresip plumbing)
for _helpers in (str(Path(__file__).resolve().parents[1] / "sip"), str(Path(__file__).resolve().parent)):
    if _helpers not in sys.path:
        sys.path.insert(0, _helpers)

from hardware.emulators import VoiceModemEmulator


@pytest.fixture
async def voice_emulator(nursery: trio.Nursery, tmp_path: Any) -> AsyncIterator[VoiceModemEmulator]:
    emulator = VoiceModemEmulator(link_dir=str(tmp_path / "serial"))
    await nursery.start(emulator.run)
    yield emulator
    emulator.pty.close()
