"""GSM-modem conformance: the suite passes on a good modem and catches an unusable one."""

from __future__ import annotations

import trio

from hardware._conformance import format_report
from hardware.emulators import GsmModemEmulator


async def test_gsm_modem_conformance(nursery, tmp_path, run_suite, bench) -> None:
    emulator = GsmModemEmulator(link_dir=str(tmp_path), sim_not_ready_polls=1)
    await nursery.start(emulator.run)
    await emulator.deliver_sms("+34600111222", "stored already", notify=False)

    async def send_an_sms(_what: str) -> None:
        nursery.start_soon(emulator.deliver_sms, "+34600999888", "bench test")
        await trio.lowlevel.checkpoint()

    results = await run_suite("gsm-modem", emulator.link, send_an_sms)
    assert all(r.passed for r in results), format_report(results)
    if bench.port is not None:
        return  # what follows is about the emulator's scripted contents
    by_name = {r.name: r for r in results}
    assert by_name["list-messages"].detail == "1 stored message(s)"
    assert "bench test" in by_name["receive-sms"].detail


async def test_a_locked_unregistered_modem_fails_the_right_checks(
    nursery, tmp_path, run_suite, emulator_only
) -> None:
    emulator = GsmModemEmulator(link_dir=str(tmp_path), pin="1234", registration=3, signal=99)
    await nursery.start(emulator.run)
    emulator.store_raw_pdu("00FF")

    async def nothing(_what: str) -> None:
        await trio.lowlevel.checkpoint()

    results = {
        r.name: r
        for r in await run_suite("gsm-modem", emulator.link, nothing, timeout=0.5, interactive_wait=0.5)
    }
    assert not results["sim"].passed and "SIM PIN" in results["sim"].detail
    assert not results["registration"].passed and "registration denied" in results["registration"].detail
    assert results["signal"].passed and "unknown" in results["signal"].detail
    assert not results["list-messages"].passed  # SIM locked: +CME ERROR: 11
