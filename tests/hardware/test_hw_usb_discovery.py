"""``usb:VID:PID[:SERIAL]`` resolves to the port's ``/dev/serial/by-id`` link, not ``ttyUSBn``.

pyserial's ``list_ports.comports`` is replaced by entries describing temporary device nodes (or an
emulator's pty), and ``/dev/serial/by-id`` by a temporary folder of symlinks, as udev would make them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from engine import DeviceError
from engine.abc import DeviceHealth, DeviceSpec
from hardware import discovery
from hardware.discovery import list_serial_ports, resolve_port, run_devices_cli
from hardware.emulators import VoiceModemEmulator
from hardware.testing import FAST_RECONNECT, FAST_VOICE_TIMINGS
from hardware.voice_modem import VoiceModem


def _port(device: str, vid: int, pid: int, serial_number: str, description: str) -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number, info.description = vid, pid, serial_number, description
    return info


@pytest.fixture
def usb_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Two Conexant modems (same VID:PID, serials A1 and B2) and an FTDI board with no by-id link."""
    dev = tmp_path / "dev"
    by_id = tmp_path / "by-id"
    dev.mkdir()
    by_id.mkdir()
    for name in ("ttyACM0", "ttyACM1", "ttyUSB0"):
        (dev / name).touch()
    os.symlink("../dev/ttyACM1", by_id / "usb-Conexant_USB_Modem_A1-if00")
    os.symlink("../dev/ttyACM0", by_id / "usb-Conexant_USB_Modem_B2-if00")
    ports = [
        _port(str(dev / "ttyACM0"), 0x0572, 0x1329, "B2", "USB Modem"),
        _port(str(dev / "ttyACM1"), 0x0572, 0x1329, "A1", "USB Modem"),
        _port(str(dev / "ttyUSB0"), 0x0403, 0x6001, "FT1", "FT232R USB UART"),
    ]
    monkeypatch.setattr(list_ports, "comports", lambda *a, **k: list(ports))
    monkeypatch.setattr(discovery, "BY_ID", by_id)
    return dev, by_id, ports


def test_a_usb_id_resolves_to_its_by_id_link_not_the_tty_number(usb_bus) -> None:
    dev, by_id, _ = usb_bus
    # two modems with the same VID:PID: the lowest tty wins, but by its stable by-id name
    assert resolve_port("usb:0572:1329") == str(by_id / "usb-Conexant_USB_Modem_B2-if00")
    # the serial number picks one modem whichever ttyACMn it got this time
    assert resolve_port("usb:0572:1329:A1") == str(by_id / "usb-Conexant_USB_Modem_A1-if00")
    assert resolve_port("USB:0572:1329:B2") == str(by_id / "usb-Conexant_USB_Modem_B2-if00")
    # no by-id link (udev rules missing): the device node is the only name there is
    assert resolve_port("usb:0403:6001") == str(dev / "ttyUSB0")
    with pytest.raises(DeviceError, match="no serial device usb:0572:1329:C3 attached"):
        resolve_port("usb:0572:1329:C3")


def test_listing_prefers_by_id_and_names_the_driver_that_would_claim_it(usb_bus, capsys) -> None:
    _, by_id, _ = usb_bus
    infos = {info.serial_number: info for info in list_serial_ports()}
    assert infos["A1"].by_id == str(by_id / "usb-Conexant_USB_Modem_A1-if00")
    assert (infos["A1"].driver_hint, infos["A1"].profile_hint) == ("voice-modem", "conexant")
    assert infos["FT1"].driver_hint == "dtmf-board" and infos["FT1"].usb_id == "usb:0403:6001"
    assert run_devices_cli([]) == 0
    out = capsys.readouterr().out
    assert str(by_id / "usb-Conexant_USB_Modem_A1-if00") in out
    assert "usb:0572:1329  -> driver voice-modem (profile conexant)" in out
    assert "ttyACM1" not in out  # shown by its stable name only


async def test_a_modem_configured_by_usb_id_opens_through_its_by_id_link(
    nursery, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = VoiceModemEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    link = by_id / "usb-Zoom_3095_Modem_0001-if00"
    os.symlink(emulator.pty.path, link)
    monkeypatch.setattr(discovery, "BY_ID", by_id)
    monkeypatch.setattr(
        list_ports,
        "comports",
        lambda *a, **k: [_port(emulator.pty.path, 0x0572, 0x1329, "0001", "USB Modem")],
    )
    modem = VoiceModem(
        DeviceSpec("line1", "voice-modem", "usb:0572:1329"),
        timings=FAST_VOICE_TIMINGS,
        reconnect=FAST_RECONNECT,
    )
    await nursery.start(modem.run)
    with trio.fail_after(10):
        await modem.wait_health(DeviceHealth.OK)
    assert modem.port_path == str(link)
    assert modem.describe()["model"]  # it really talked to the emulated modem
    emulator.pty.close()
