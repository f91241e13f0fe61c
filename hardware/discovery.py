"""Finding devices: serial ports by USB vendor:product and ``/dev/serial/by-id``; audio devices.

``usb:VID:PID`` (hex, optionally ``usb:VID:PID:SERIAL``) in ``[[devices]] port`` survives replugging,
which renumbers ``ttyUSBn``/``ttyACMn`` (gammu#687, python-gammu#8). ``centralita devices`` prints
what is attached and which driver would claim it.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from engine import DeviceError

__all__ = ["KNOWN_USB_IDS", "SerialPortInfo", "list_serial_ports", "resolve_port", "run_devices_cli"]

BY_ID = Path("/dev/serial/by-id")

#: USB ids of devices we know, and the driver that claims them (a hint: config decides).
KNOWN_USB_IDS: dict[tuple[int, int], tuple[str, str]] = {
    (0x0572, 0x1329): ("voice-modem", "conexant"),  # Conexant CX93010 (Zoom 3095 and relabels)
    (0x0572, 0x1340): ("voice-modem", "conexant"),
    (0x0BAF, 0x0303): ("voice-modem", "usrobotics"),  # U.S. Robotics USR5637
    (0x12D1, 0x1001): ("gsm-modem", "generic"),  # Huawei E1xx/E173 modem mode
    (0x12D1, 0x1506): ("gsm-modem", "generic"),
    (0x19D2, 0x0031): ("gsm-modem", "generic"),  # ZTE MF-series
    (0x2C7C, 0x0125): ("gsm-modem", "generic"),  # Quectel EC25
    (0x1E0E, 0x9001): ("gsm-modem", "generic"),  # SIMCom SIM7600
    (0x0403, 0x6001): ("dtmf-board", "ascii"),  # FTDI FT232 (most serial DTMF boards)
}


@dataclass(frozen=True)
class SerialPortInfo:
    device: str
    by_id: str
    vid: int | None
    pid: int | None
    serial_number: str
    description: str
    driver_hint: str
    profile_hint: str

    @property
    def usb_id(self) -> str:
        return f"usb:{self.vid:04x}:{self.pid:04x}" if self.vid is not None and self.pid is not None else ""


def _by_id_links() -> dict[str, str]:
    links: dict[str, str] = {}
    try:
        for link in BY_ID.iterdir():
            links[os.path.realpath(link)] = str(link)
    except OSError:
        pass
    return links


def list_serial_ports() -> list[SerialPortInfo]:
    from serial.tools import list_ports  # pyserial; imported here so the engine starts without it

    links = _by_id_links()
    ports = []
    for port in list_ports.comports():
        driver, profile = (
            KNOWN_USB_IDS.get((port.vid, port.pid), ("", "")) if port.vid is not None else ("", "")
        )
        ports.append(
            SerialPortInfo(
                device=port.device,
                by_id=links.get(os.path.realpath(port.device), ""),
                vid=port.vid,
                pid=port.pid,
                serial_number=port.serial_number or "",
                description=port.description or "",
                driver_hint=driver,
                profile_hint=profile,
            )
        )
    return ports


def resolve_port(port: str) -> str:
    """A configured ``port`` -> a path to open. Raises :class:`engine.DeviceError` if not attached."""
    if not port:
        raise DeviceError("no port configured")
    if not port.lower().startswith("usb:"):
        return port
    parts = port.split(":")
    try:
        vid, pid = int(parts[1], 16), int(parts[2], 16)
    except (IndexError, ValueError):
        raise DeviceError(f"bad USB id {port!r} (expected usb:VID:PID in hex, e.g. usb:0572:1329)") from None
    serial_number = parts[3] if len(parts) > 3 else ""
    matches = [
        info
        for info in list_serial_ports()
        if info.vid == vid and info.pid == pid and (not serial_number or info.serial_number == serial_number)
    ]
    if not matches:
        raise DeviceError(f"no serial device {port} attached")
    matches.sort(key=lambda info: info.device)
    return matches[0].by_id or matches[0].device


def _audio_devices() -> tuple[list[dict[str, object]], str]:
    from .headset import audio_backend

    backend = audio_backend()
    if backend.error:
        return [], backend.error
    return backend.list_devices(), ""


def _health_snapshots(config: str | None, data_dir: str | None) -> tuple[list[dict[str, object]], str]:
    """The configured devices' health as the running engine last wrote it (see ``_health_file``)."""
    from ._health_file import read_health_snapshots

    if not config and not data_dir:
        return [], ""
    if config:
        from engine._cli import _disabled_from, discover_plugins, load_with_plugins
        from engine._errors import ConfigError

        path = Path(config)
        try:
            loaded = load_with_plugins(path, discover_plugins(_disabled_from(path)), Path(data_dir) if data_dir else None)
        except (ConfigError, OSError) as exc:
            return [], f"cannot read {config}: {exc}"
        folder, configured = loaded.data_dir, [d.name for d in loaded.devices]
    else:
        folder, configured = Path(data_dir or "."), []
    found = {str(s["name"]): s for s in read_health_snapshots(folder)}
    names = configured or sorted(found)
    return [found.get(name, {"name": name, "health": "unknown", "running": False}) for name in names], ""


def _health_line(snapshot: dict[str, object]) -> list[str]:
    name, health = snapshot.get("name"), snapshot.get("health")
    if not snapshot.get("running"):
        health = "engine not running" if snapshot.get("pid") else "no report (engine not running?)"
    lines = [f"  {name}: {health}  [{snapshot.get('driver') or '-'} {snapshot.get('port') or snapshot.get('device') or ''}]"]
    facts = []
    if snapshot.get("model"):
        facts.append(f"model {snapshot['model']}")
    if snapshot.get("signal") is not None and snapshot.get("driver") == "gsm-modem":
        facts.append(f"signal {snapshot['signal']}/31")
    if snapshot.get("registration"):
        facts.append(f"network {snapshot['registration']}")
    if "caller_id" in snapshot:
        facts.append("caller ID " + ("on" if snapshot["caller_id"] else "off"))
    if facts:
        lines.append("      " + ", ".join(facts))
    if snapshot.get("reason"):
        lines.append(f"      last error: {snapshot['reason']}")
    return lines


def run_devices_cli(argv: list[str] | None = None) -> int:
    """``centralita devices [--json] [--config FILE] [--data-dir DIR]``: serial ports and audio devices
    with the driver that fits; with a config (or data directory), each configured device's health as
    the running engine reports it."""
    parser = argparse.ArgumentParser(prog="centralita devices", description=run_devices_cli.__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--config", metavar="FILE", help="configuration whose devices' health to show")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (overrides [engine] data_dir)")
    args = parser.parse_args(argv)
    ports = list_serial_ports()
    audio, audio_error = _audio_devices()
    health, health_error = _health_snapshots(args.config, args.data_dir)
    if args.json:
        print(
            json.dumps(
                {
                    "serial": [{**asdict(p), "usb_id": p.usb_id} for p in ports],
                    "audio": audio,
                    "audio_error": audio_error,
                    "configured": health,
                    "configured_error": health_error,
                }
            )
        )
        return 0 if not health_error else 2
    if args.config or args.data_dir:
        print("Configured devices:")
        if health_error:
            print(f"  {health_error}")
        elif not health:
            print("  (none)")
        for snapshot in health:
            print("\n".join(_health_line(snapshot)))
    print("Serial ports:")
    if not ports:
        print("  (none)")
    for p in ports:
        claim = f"driver {p.driver_hint} (profile {p.profile_hint})" if p.driver_hint else "no known driver"
        print(f"  {p.by_id or p.device}")
        print(f"      {p.description or '-'}  {p.usb_id or ''}  -> {claim}")
    print("Audio devices:")
    if audio_error:
        print(f"  unavailable: {audio_error}")
    elif not audio:
        print("  (none)")
    for dev in audio:
        print(
            f"  {dev['name']!s}  in={dev['inputs']} out={dev['outputs']} rate={dev['rate']:.0f}  -> driver headset"
        )
    return 0 if not health_error else 2
