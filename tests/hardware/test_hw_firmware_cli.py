"""``centralita firmware-test`` and the firmware-tests bench mode, as a technician runs them, against
emulated devices (the emulator runs here; the command runs in its own process, like on a bench)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import trio

from hardware.emulators import GsmModemEmulator, VoiceModemEmulator

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


async def firmware_test(*args: str, stdout_only: bool = False) -> tuple[int, str]:
    code = "import sys\nfrom hardware.firmware_test import run_cli\nsys.exit(run_cli(sys.argv[1:]))\n"
    result = await trio.run_process(
        [sys.executable, "-c", code, *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=ENV,
        cwd=str(REPO),
    )
    return result.returncode, result.stdout.decode() + ("" if stdout_only else result.stderr.decode())


async def test_a_good_voice_modem_passes_with_progress_and_a_summary(nursery, tmp_path) -> None:
    emulator = VoiceModemEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)
    code, output = await firmware_test("--family", "voice-modem", "--port", emulator.link, "--timeout", "2")
    assert code == 0, output
    assert "[1/9] at: answers AT with OK ... PASS" in output
    assert "ring-caller-id" in output and "skipped (needs --interactive)" in output
    assert "-> PASS" in output


async def test_a_bad_modem_fails_and_the_report_quotes_the_device(nursery, tmp_path) -> None:
    emulator = VoiceModemEmulator(link_dir=str(tmp_path), formats=())
    await nursery.start(emulator.run)
    code, output = await firmware_test(
        "--family", "voice-modem", "--port", emulator.link, "--timeout", "1", "--json", stdout_only=True
    )
    assert code == 1
    report = json.loads(output)
    checks = {c["name"]: c for c in report["checks"]}
    assert not report["passed"] and not checks["voice-format"]["passed"]
    assert ["<", "OK"] in checks["voice-format"]["transcript"]  # the empty +VSM list it answered


async def test_a_port_that_is_not_there_exits_2(tmp_path) -> None:
    code, output = await firmware_test("--family", "gsm-modem", "--port", str(tmp_path / "ttyUSB7"))
    assert code == 2 and "does not exist" in output


async def test_firmware_tests_bench_mode_runs_the_suite_against_the_given_port(nursery, tmp_path) -> None:
    emulator = GsmModemEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)
    result = await trio.run_process(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            str(REPO / "firmware-tests" / "test_fw_gsm_modem.py"),
            str(REPO / "firmware-tests" / "test_fw_dtmf_board.py"),
            "--family",
            "gsm-modem",
            "--port",
            emulator.link,
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=ENV,
        cwd=str(REPO),
    )
    output = result.stdout.decode()
    assert result.returncode == 0, output[-3000:]
    assert "1 passed" in output and "3 skipped" in output  # the GSM suite; the rest is not this bench's
    assert any(c.startswith("AT+CNMI") for c in emulator.commands)  # it really talked to this port
