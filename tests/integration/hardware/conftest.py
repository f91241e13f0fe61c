"""Fixtures for the analog-line integration tests: an emulated voice modem on a pty, real peers."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hardware.emulators import VoiceModemEmulator


@pytest.fixture
async def voice_emulator(nursery: trio.Nursery, tmp_path: Any) -> AsyncIterator[VoiceModemEmulator]:
    emulator = VoiceModemEmulator(link_dir=str(tmp_path / "serial"))
    await nursery.start(emulator.run)
    yield emulator
    emulator.pty.close()
