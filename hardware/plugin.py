"""Hardware CLI commands: ``centralita devices`` and ``centralita firmware-test``."""

from __future__ import annotations

import argparse

from engine import CliRegistry, hookimpl


def _configure_devices(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _run_devices(args: argparse.Namespace) -> int:
    from .discovery import run_devices_cli

    return run_devices_cli(["--json"] if args.json else [])


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
