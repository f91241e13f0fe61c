"""Hardware CLI commands (``centralita devices``, ``centralita firmware-test``) and the ``--demo`` devices."""

from __future__ import annotations

import argparse
from typing import Any

import trio

from engine import CliRegistry, ServiceRegistry, hookimpl
from engine.abc import DeviceSpec, Service


def _configure_devices(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--config", metavar="FILE", help="configuration whose devices' health to show")
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (overrides [engine] data_dir)")


def _run_devices(args: argparse.Namespace) -> int:
    from .discovery import run_devices_cli

    argv = ["--json"] if args.json else []
    if args.config:
        argv += ["--config", args.config]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    return run_devices_cli(argv)


def _configure_firmware_test(parser: argparse.ArgumentParser) -> None:
    from .firmware_test import FAMILIES

    parser.add_argument("--family", required=True, choices=FAMILIES)
    parser.add_argument("--port", required=True, help="device path, e.g. /dev/serial/by-id/usb-...")
    parser.add_argument("--profile", default="generic")
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--baudrate", type=int, default=None)
    parser.add_argument("--interactive", action="store_true")
    parser.add_argument("--json", action="store_true")


def _run_firmware_test(args: argparse.Namespace) -> int:
    from .firmware_test import run_cli

    argv = [
        "--family",
        args.family,
        "--port",
        args.port,
        "--profile",
        args.profile,
        "--timeout",
        str(args.timeout),
    ]
    if args.baudrate:
        argv += ["--baudrate", str(args.baudrate)]
    if args.interactive:
        argv.append("--interactive")
    if args.json:
        argv.append("--json")
    return run_cli(argv)


class _DemoHardware(Service):
    """``centralita run --demo``: emulated modems and a DTMF board on pseudo-terminals, attached as devices."""

    name = "demo-hardware"

    def __init__(self, engine: Any) -> None:
        from .emulators.demo import DemoDevices

        self.engine = engine
        self.demo = DemoDevices()
        self._ready = False

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.demo.run)
            for spec in self.demo.device_specs():
                await self.engine.attach_device(DeviceSpec(spec["name"], spec["driver"], spec["port"],
                                                           spec.get("profile", "generic"), spec.get("options", {})))
            self._ready = True
            task_status.started()

    def ready(self) -> bool:
        return self._ready

    async def aclose(self) -> None:
        self.demo.close()


def _demo_hardware(context: Any) -> Service | None:
    # None: not in demo mode, nothing to run
    return _DemoHardware(context.engine) if getattr(context.engine, "demo", False) else None


@hookimpl
def centralita_register_services(registry: ServiceRegistry) -> None:
    registry.add("demo-hardware", _demo_hardware)


@hookimpl
def centralita_register_cli_commands(registry: CliRegistry) -> None:
    registry.add(
        "devices",
        "list serial ports and audio devices with the driver that would claim them",
        _configure_devices,
        _run_devices,
    )
    registry.add(
        "firmware-test",
        "run a device family's conformance checks against a real port",
        _configure_firmware_test,
        _run_firmware_test,
    )
