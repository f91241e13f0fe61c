"""Voice-modem conformance: the suite passes on a good modem and catches one the driver cannot use."""

from __future__ import annotations

import trio

from hardware._conformance import format_report
from hardware.emulators import VoiceModemEmulator


async def test_voice_modem_conformance(nursery, tmp_path, run_suite) -> None:
    emulator = VoiceModemEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)

    async def call_the_line(_what: str) -> None:
        nursery.start_soon(emulator.ring, "5551234", "BENCH TEST")
        await trio.lowlevel.checkpoint()

    results = await run_suite("voice-modem", emulator.link, call_the_line)
    assert all(r.passed for r in results), format_report(results)
    assert {r.name for r in results} >= {"at", "voice-format", "caller-id", "voice-stream", "ring-caller-id"}


async def test_a_modem_without_an_8khz_format_or_full_duplex_fails_with_its_answer(
    nursery, tmp_path, run_suite, emulator_only
) -> None:
    emulator = VoiceModemEmulator(link_dir=str(tmp_path), formats=(), full_duplex=False)
    await nursery.start(emulator.run)

    async def nothing(_what: str) -> None:
        await trio.lowlevel.checkpoint()

    results = {
        r.name: r
        for r in await run_suite("voice-modem", emulator.link, nothing, timeout=0.5, interactive_wait=0.5)
    }
    assert not results["voice-format"].passed and "no usable 8 kHz format" in results["voice-format"].detail
    assert not results["voice-stream"].passed and "ERROR" in results["voice-stream"].detail
    assert ("<", "ERROR") in results["voice-stream"].transcript  # what the device actually said
    assert not results["ring-caller-id"].passed  # nobody called
    assert results["at"].passed and results["caller-id"].passed
