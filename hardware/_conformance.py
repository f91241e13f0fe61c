"""The conformance-check framework shared by the device families (``hardware/<family>/conformance.py``).

A check is an async function of a :class:`CheckContext` that returns a one-line finding or raises
:class:`CheckFailed`. The runner records, for every check, what the device actually answered (the AT
transcript), so a technician's report shows the device's words, not just "failed".

Interactive checks need something to happen on the line (a call, a key press): ``ctx.stimulus(what)``
asks for it. On a bench the CLI prints the request for the technician; under pytest against the
emulators a fixture makes the emulator do it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from engine import DeviceError

from ._at import AtMachine
from ._atport import AtPort
from ._serial import SerialSettings, SerialStream, open_serial_stream

__all__ = ["Check", "CheckContext", "CheckFailed", "CheckResult", "check", "format_report", "run_checks"]


class CheckFailed(Exception):
    """A conformance check found the device does not do what the driver needs."""


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    func: Callable[[CheckContext], Awaitable[str]]
    interactive: bool = False


def check(
    name: str, description: str, *, interactive: bool = False
) -> Callable[[Callable[[CheckContext], Awaitable[str]]], Check]:
    def wrap(func: Callable[[CheckContext], Awaitable[str]]) -> Check:
        return Check(name, description, func, interactive)

    return wrap


@dataclass
class CheckResult:
    name: str
    description: str
    passed: bool
    detail: str
    transcript: list[tuple[str, str]] = field(default_factory=list)
    skipped: bool = False


@dataclass
class CheckContext:
    stream: SerialStream
    profile: str
    timeout: float
    stimulus: Callable[[str], Awaitable[None]]
    at: AtPort | None = None
    #: How long an interactive check waits for the call, SMS or key presses it asked for.
    interactive_wait: float = 60.0
    state: dict[str, Any] = field(default_factory=dict)

    async def command(
        self, command: str, *, timeout: float | None = None, check_ok: bool = True, **kwargs: Any
    ) -> Any:
        """Send an AT command and return its result; a failing one fails the check with its answer."""
        assert self.at is not None
        from ._at import AtCommandError
        from ._atport import AtCommandTimeout

        try:
            return await self.at.command(command, timeout=timeout or self.timeout, check=check_ok, **kwargs)
        except AtCommandError as exc:
            raise CheckFailed(f"{command} answered {exc.result.final}") from None
        except AtCommandTimeout as exc:
            raise CheckFailed(str(exc)) from None


async def run_checks(
    checks: Sequence[Check],
    port: str,
    *,
    profile: str = "generic",
    baudrate: int = 115200,
    timeout: float = 3.0,
    interactive: bool = False,
    stimulus: Callable[[str], Awaitable[None]] | None = None,
    progress: Callable[[int, int, CheckResult | Check], None] | None = None,
    at_urc_prefixes: Sequence[str] = ("RING",),
    two_line_urcs: Sequence[str] = (),
    use_at: bool = True,
    interactive_wait: float = 60.0,
) -> list[CheckResult]:
    """Open ``port`` and run ``checks`` in order; a check that fails does not stop the rest."""

    async def no_stimulus(_what: str) -> None:
        await trio.lowlevel.checkpoint()

    stream = await open_serial_stream(port, SerialSettings(baudrate))
    results: list[CheckResult] = []
    async with stream, trio.open_nursery() as nursery:
        ctx = CheckContext(
            stream, profile, timeout, stimulus or no_stimulus, interactive_wait=interactive_wait
        )
        if use_at:
            ctx.at = AtPort(stream, AtMachine(urc_prefixes=at_urc_prefixes, two_line_urcs=two_line_urcs))
            nursery.start_soon(ctx.at.run_reader)
        for number, item in enumerate(checks, 1):
            if progress:
                progress(number, len(checks), item)
            mark = len(ctx.at.transcript) if ctx.at else 0
            if item.interactive and not interactive:
                result = CheckResult(
                    item.name, item.description, True, "skipped (needs --interactive)", skipped=True
                )
            else:
                try:
                    with trio.fail_after(timeout * 10 + (interactive_wait if item.interactive else 0)):
                        detail = await item.func(ctx)
                    result = CheckResult(item.name, item.description, True, detail)
                except CheckFailed as exc:
                    result = CheckResult(item.name, item.description, False, str(exc))
                except trio.TooSlowError:
                    result = CheckResult(
                        item.name, item.description, False, "the device did not finish in time"
                    )
                except DeviceError as exc:
                    result = CheckResult(item.name, item.description, False, f"device error: {exc}")
            if ctx.at is not None:
                result.transcript = list(ctx.at.transcript[mark:])
            results.append(result)
            if progress:
                progress(number, len(checks), result)
        nursery.cancel_scope.cancel()
    return results


def format_report(results: Sequence[CheckResult]) -> str:
    """One line per check; failed checks quote the last things host and device said."""
    lines = []
    for result in results:
        verdict = "skipped" if result.skipped else ("PASS" if result.passed else "FAIL")
        lines.append(f"{verdict:7} {result.name}: {result.detail}")
        if not result.passed:
            lines += [
                f"          {'host  >' if d == '>' else 'device<'} {t}" for d, t in result.transcript[-8:]
            ]
    return "\n".join(lines)
