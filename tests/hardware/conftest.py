"""Fixtures for the hardware tests: emulated devices on ptys, drivers with short timers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio

from engine.abc import DeviceHealth, DeviceSpec
from hardware.emulators import DtmfBoardEmulator, GsmModemEmulator, VoiceModemEmulator
from hardware.gsm_modem import GsmModem
from hardware.testing import FAST_GSM_TIMINGS, FAST_RECONNECT, FAST_VOICE_TIMINGS
from hardware.voice_modem import VoiceModem


@pytest.fixture
async def voice_emulator(nursery: trio.Nursery, tmp_path: Any) -> AsyncIterator[VoiceModemEmulator]:
    emulator = VoiceModemEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)
    yield emulator
    emulator.pty.close()


@pytest.fixture
async def gsm_emulator(nursery: trio.Nursery, tmp_path: Any) -> AsyncIterator[GsmModemEmulator]:
    emulator = GsmModemEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)
    yield emulator
    emulator.pty.close()


@pytest.fixture
async def board_emulator(nursery: trio.Nursery, tmp_path: Any) -> AsyncIterator[DtmfBoardEmulator]:
    emulator = DtmfBoardEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)
    yield emulator
    emulator.pty.close()


@pytest.fixture
def start_voice_modem(nursery: trio.Nursery) -> Callable[..., Any]:
    """``await start_voice_modem(emulator, timings=..., **options)``: a running driver, healthy."""

    async def start(
        emulator: VoiceModemEmulator, *, timings: Any = FAST_VOICE_TIMINGS, wait: bool = True, **options: Any
    ) -> VoiceModem:
        modem = VoiceModem(
            DeviceSpec("line1", "voice-modem", emulator.link, options=options),
            timings=timings,
            reconnect=FAST_RECONNECT,
        )
        await nursery.start(modem.run)
        if wait:
            with trio.fail_after(10):
                await modem.wait_health(DeviceHealth.OK)
        return modem

    return start


@pytest.fixture
def start_gsm_modem(nursery: trio.Nursery) -> Callable[..., Any]:
    """``await start_gsm_modem(emulator, handler=..., wait=DeviceHealth.OK, **options)``."""

    async def start(
        emulator: GsmModemEmulator,
        *,
        timings: Any = FAST_GSM_TIMINGS,
        handler: Any = None,
        wait: DeviceHealth | None = DeviceHealth.OK,
        **options: Any,
    ) -> GsmModem:
        modem = GsmModem(
            DeviceSpec("gsm1", "gsm-modem", emulator.link, options=options),
            on_message=handler,
            timings=timings,
            reconnect=FAST_RECONNECT,
        )
        await nursery.start(modem.run)
        if wait is not None:
            with trio.fail_after(10):
                await modem.wait_health(wait)
        return modem

    return start
