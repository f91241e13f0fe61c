"""DTMF-board conformance: every key decodes; a noisy line (wrong baud rate) is caught."""

from __future__ import annotations

import trio

from hardware._conformance import format_report
from hardware.dtmf_board.conformance import SEQUENCE
from hardware.emulators import DtmfBoardEmulator


async def test_dtmf_board_conformance(nursery, tmp_path, run_suite) -> None:
    emulator = DtmfBoardEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)

    async def press_keys(_what: str) -> None:
        nursery.start_soon(emulator.press, SEQUENCE)
        await trio.lowlevel.checkpoint()

    results = await run_suite("dtmf-board", emulator.link, press_keys)
    assert all(r.passed for r in results), format_report(results)


async def test_a_noisy_board_and_missing_keys_fail(nursery, tmp_path, run_suite, emulator_only) -> None:
    emulator = DtmfBoardEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)

    async def press_some(_what: str) -> None:
        nursery.start_soon(emulator.press, "123")
        await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as noise:
        noise.start_soon(emulator.send_noise, 50)
        results = {
            r.name: r
            for r in await run_suite(
                "dtmf-board", emulator.link, press_some, timeout=0.3, interactive_wait=0.5
            )
        }
    assert not results["quiet-line"].passed and "noise" in results["quiet-line"].detail
    assert not results["all-keys"].passed and "'123'" in results["all-keys"].detail
