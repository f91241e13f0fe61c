"""firmware-tests: the conformance suite of each device family.

By default every family runs against the project's emulators on pseudo-terminals (CI). On a
technician's bench, point it at a real device::

    .venv/bin/pytest firmware-tests --family voice-modem --port /dev/serial/by-id/usb-... --profile conexant

(``centralita firmware-test`` runs the same checks with a progress display.) Checks that need
something to happen on the line (a call, an SMS, key presses) run only with ``--interactive`` on a
real device; against the emulators the emulator does it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from hardware._conformance import CheckResult
from hardware.firmware_test import FAMILIES, run_family


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("firmware-tests", "conformance checks against a real device")
    group.addoption("--port", default=None, help="run the --family suite against this serial port")
    group.addoption("--profile", default="generic", help="the device's profile (per-model quirks)")
    group.addoption("--family", default=None, choices=FAMILIES, help="the device family on --port")
    group.addoption(
        "--interactive",
        action="store_true",
        default=False,
        help="with --port: also run checks that need a call, an SMS or key presses",
    )


@dataclass
class Bench:
    port: str | None
    profile: str
    family: str | None
    interactive: bool

    def real(self, family: str) -> bool:
        if self.port is None:
            return False
        if self.family is None:
            raise pytest.UsageError("--port needs --family (voice-modem, gsm-modem or dtmf-board)")
        return self.family == family


@pytest.fixture
def bench(request: pytest.FixtureRequest) -> Bench:
    config = request.config
    return Bench(
        config.getoption("--port"),
        config.getoption("--profile"),
        config.getoption("--family"),
        config.getoption("--interactive"),
    )


@pytest.fixture
def emulator_only(bench: Bench) -> None:
    """For tests of the suite itself (does it catch a broken device?): they need the emulators."""
    if bench.port is not None:
        pytest.skip("checks the suite against deliberately broken emulators; not a bench test")


@pytest.fixture
def run_suite(bench: Bench) -> Callable[..., Awaitable[list[CheckResult]]]:
    """``await run_suite(family, emulator_port, stimulus)``: the family's checks on the bench device
    when ``--port`` names one of this family, else on the given emulator port."""

    async def run(
        family: str, emulator_port: str, stimulus: Callable[[str], Awaitable[None]], **kwargs: Any
    ) -> list[CheckResult]:
        if bench.port is not None and not bench.real(family):
            pytest.skip(f"this bench run checks a {bench.family}, not a {family}")
        if bench.real(family):

            async def ask(what: str) -> None:
                print(f"\n>>> {what}", flush=True)
                await trio.lowlevel.checkpoint()

            return await run_family(
                family, bench.port, profile=bench.profile, interactive=bench.interactive, stimulus=ask
            )
        # The emulators answer at once: short waits, so a check that should fail fails fast.
        return await run_family(
            family,
            emulator_port,
            profile=kwargs.pop("profile", "generic"),
            interactive=True,
            stimulus=stimulus,
            timeout=kwargs.pop("timeout", 2.0),
            interactive_wait=kwargs.pop("interactive_wait", 10.0),
            **kwargs,
        )

    return run
