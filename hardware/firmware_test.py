"""``centralita firmware-test --family FAMILY --port PORT [--profile NAME]``: a device on the bench.

Runs the same conformance checks as ``firmware-tests/`` (which runs them against the emulators), with
a progress display and a pass/fail report that quotes what the device answered.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

import trio

from engine import DeviceError

from ._conformance import Check, CheckResult, run_checks

__all__ = ["FAMILIES", "run_cli", "run_family"]


def _family(name: str) -> tuple[list[Check], dict[str, Any]]:
    if name == "voice-modem":
        from .voice_modem import conformance as vm

        return vm.CHECKS, {"at_urc_prefixes": vm.URC_PREFIXES}
    if name == "gsm-modem":
        from .gsm_modem import conformance as gsm

        return gsm.CHECKS, {"at_urc_prefixes": gsm.URC_PREFIXES, "two_line_urcs": gsm.TWO_LINE_URCS}
    if name == "dtmf-board":
        from .dtmf_board import conformance as board

        return board.CHECKS, {"use_at": False, "baudrate": 9600}
    raise ValueError(f"unknown family {name!r}")


FAMILIES = ("voice-modem", "gsm-modem", "dtmf-board")


async def run_family(
    family: str,
    port: str,
    *,
    profile: str = "generic",
    timeout: float = 3.0,
    interactive: bool = False,
    baudrate: int | None = None,
    stimulus: Callable[[str], Awaitable[None]] | None = None,
    progress: Callable[[int, int, Any], None] | None = None,
    interactive_wait: float = 60.0,
) -> list[CheckResult]:
    checks, options = _family(family)
    if baudrate is not None:
        options["baudrate"] = baudrate
    return await run_checks(
        checks,
        port,
        profile=profile,
        timeout=timeout,
        interactive=interactive,
        stimulus=stimulus,
        progress=progress,
        interactive_wait=interactive_wait,
        **options,
    )


def _printer(out: TextIO) -> Callable[[int, int, Any], None]:
    def progress(number: int, total: int, item: Any) -> None:
        if isinstance(item, Check):
            out.write(f"[{number}/{total}] {item.name}: {item.description} ... ")
            out.flush()
        else:
            verdict = "skipped" if item.skipped else ("PASS" if item.passed else "FAIL")
            out.write(f"{verdict}\n      {item.detail}\n")
            if not item.passed:
                out.writelines(
                    f"      {'host  >' if direction == '>' else 'device<'} {text}\n"
                    for direction, text in item.transcript[-8:]
                )
            out.flush()

    return progress


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when every check passed, 1 when one failed, 2 when the port could not be used."""
    parser = argparse.ArgumentParser(prog="centralita firmware-test", description=__doc__.splitlines()[0])
    parser.add_argument("--family", required=True, choices=FAMILIES)
    parser.add_argument("--port", required=True, help="device path, e.g. /dev/serial/by-id/usb-...")
    parser.add_argument("--profile", default="generic", help="per-model profile (default: generic)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per command (default 3)")
    parser.add_argument("--baudrate", type=int, default=None)
    parser.add_argument(
        "--interactive",
        action="store_true",
        help="also run checks that need you to call the line, send an SMS or press keys",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="seconds an interactive check waits for the call, SMS or keys (default 60)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args(argv)
    out = sys.stderr if args.json else sys.stdout

    async def ask(what: str) -> None:
        out.write(f"\n  >>> {what}\n      ")
        out.flush()
        await trio.lowlevel.checkpoint()

    try:
        results = trio.run(
            lambda: run_family(
                args.family,
                args.port,
                profile=args.profile,
                timeout=args.timeout,
                interactive=args.interactive,
                baudrate=args.baudrate,
                stimulus=ask,
                progress=_printer(out),
                interactive_wait=args.wait,
            )
        )
    except DeviceError as exc:
        print(f"centralita firmware-test: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in results if not r.passed]
    if args.json:
        print(
            json.dumps(
                {
                    "family": args.family,
                    "port": args.port,
                    "profile": args.profile,
                    "passed": not failed,
                    "checks": [
                        {
                            "name": r.name,
                            "passed": r.passed,
                            "skipped": r.skipped,
                            "detail": r.detail,
                            "transcript": r.transcript,
                        }
                        for r in results
                    ],
                }
            )
        )
    else:
        passed = sum(1 for r in results if r.passed and not r.skipped)
        skipped = sum(1 for r in results if r.skipped)
        print(
            f"\n{args.family} on {args.port} (profile {args.profile}): "
            f"{passed} passed, {len(failed)} failed, {skipped} skipped -> {'PASS' if not failed else 'FAIL'}"
        )
    return 1 if failed else 0
