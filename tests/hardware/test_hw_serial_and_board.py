"""The serial stream (exclusive open, unplug, cancellation), discovery, and the DTMF-board driver."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio

from engine import DeviceBusyError, DeviceError
from engine.abc import DeviceHealth, DeviceSpec
from hardware import SerialDisconnected, open_serial_stream
from hardware.discovery import resolve_port, run_devices_cli
from hardware.dtmf_board import BoardDtmf, DtmfBoard
from hardware.emulators import DtmfBoardEmulator
from hardware.emulators._pty import PtyDevice
from hardware.testing import FAST_RECONNECT, next_event

REPO = Path(__file__).resolve().parents[2]


async def test_bytes_flow_both_ways_and_unplug_is_a_disconnect(tmp_path) -> None:
    device = PtyDevice(link_dir=str(tmp_path))
    stream = await open_serial_stream(device.link)
    await stream.send_all(b"AT\r")
    assert await device.read() == b"AT\r"
    await device.write(b"\r\nOK\r\n")
    assert await stream.receive_some() == b"\r\nOK\r\n"
    device.unplug()
    with pytest.raises(SerialDisconnected):
        await stream.receive_some()
    with pytest.raises(SerialDisconnected):
        await stream.send_all(b"AT\r")
    await stream.aclose()
    assert stream.statistics().bytes_received == 6


async def test_a_second_open_in_this_process_is_refused(tmp_path) -> None:
    device = PtyDevice(link_dir=str(tmp_path))
    async with await open_serial_stream(device.path):
        with pytest.raises(DeviceBusyError, match="already open"):
            await open_serial_stream(device.link)
    async with await open_serial_stream(device.path):  # released on close
        pass
    device.close()


async def test_a_second_process_gets_a_clear_error_naming_the_owner(tmp_path) -> None:
    device = PtyDevice(link_dir=str(tmp_path))
    async with await open_serial_stream(device.path):
        code = (
            "import sys, trio\nfrom hardware import open_serial_stream\nfrom engine import DeviceBusyError\n"
            f"try:\n    trio.run(open_serial_stream, {device.path!r})\n"
            "except DeviceBusyError as exc:\n    print(exc); sys.exit(3)\n"
        )
        result = await trio.run_process(
            [sys.executable, "-c", code],
            capture_stdout=True,
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            cwd=str(REPO),
        )
    assert result.returncode == 3, result
    message = result.stdout.decode()
    assert "already open by another process" in message and f"pid {os.getpid()}" in message
    device.close()


async def test_missing_port_and_not_a_tty(tmp_path) -> None:
    with pytest.raises(SerialDisconnected, match="does not exist"):
        await open_serial_stream(str(tmp_path / "ttyACM9"))
    plain = tmp_path / "file"
    plain.write_text("x")
    with pytest.raises(DeviceError, match="not a tty"):
        await open_serial_stream(str(plain))


async def test_a_blocked_read_is_cancelled_at_once(tmp_path) -> None:
    device = PtyDevice(link_dir=str(tmp_path))
    async with await open_serial_stream(device.path) as stream:
        with trio.move_on_after(0.05) as scope:
            await stream.receive_some()
        assert scope.cancelled_caught
        await device.write(b"x")
        assert await stream.receive_some() == b"x"  # still usable
    device.close()


def test_usb_ids_that_are_not_attached_or_malformed() -> None:
    with pytest.raises(DeviceError, match="no serial device usb:dead:beef attached"):
        resolve_port("usb:dead:beef")
    with pytest.raises(DeviceError, match="bad USB id"):
        resolve_port("usb:xyz")
    assert resolve_port("/dev/ttyACM0") == "/dev/ttyACM0"


def test_devices_cli_lists_ports_and_audio(capsys) -> None:
    assert run_devices_cli([]) == 0
    out = capsys.readouterr().out
    assert "Serial ports:" in out and "Audio devices:" in out


async def test_board_digits_become_dtmf_events_for_the_watched_line(nursery, tmp_path) -> None:
    emulator = DtmfBoardEmulator(framing="ascii-lines", link_dir=str(tmp_path))
    await nursery.start(emulator.run)
    board = DtmfBoard(
        DeviceSpec(
            "board",
            "dtmf-board",
            emulator.link,
            profile="ascii-lines",
            options={"lines": {"0": "line1", "1": "line2"}},
        ),
        reconnect=FAST_RECONNECT,
    )
    await nursery.start(board.run)
    with trio.fail_after(10):
        await board.wait_health(DeviceHealth.OK)
    await emulator.send_noise(40)
    await emulator.pty.write(b"\r\n")
    await emulator.press("12", channel=1)
    await emulator.press("#", channel=0)
    got = [await next_event(board, BoardDtmf) for _ in range(3)]
    assert [(e.line, e.digit) for e in got] == [("line2", "1"), ("line2", "2"), ("line1", "#")]
    assert board.statistics()["noise_bytes"] > 0
    emulator.unplug()
    with trio.fail_after(10):
        await board.wait_health(DeviceHealth.DISCONNECTED)
    emulator.replug()
    with trio.fail_after(10):
        await board.wait_health(DeviceHealth.OK)
    await emulator.press("9", channel=0)
    assert (await next_event(board, BoardDtmf)).digit == "9"


async def test_mt8870_nibble_board(nursery, tmp_path) -> None:
    emulator = DtmfBoardEmulator(framing="mt8870-nibble", link_dir=str(tmp_path))
    await nursery.start(emulator.run)
    board = DtmfBoard(
        DeviceSpec(
            "board", "dtmf-board", emulator.link, profile="mt8870-nibble", options={"line": "reception"}
        ),
        reconnect=FAST_RECONNECT,
    )
    await nursery.start(board.run)
    with trio.fail_after(10):
        await board.wait_health(DeviceHealth.OK)
    await emulator.press("0*D")
    got = [await next_event(board, BoardDtmf) for _ in range(3)]
    assert [(e.line, e.digit) for e in got] == [("reception", "0"), ("reception", "*"), ("reception", "D")]
