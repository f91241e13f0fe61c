"""DTMF-board conformance checks: the board's framing decodes every key, and the line is clean."""

from __future__ import annotations

import trio

from .._conformance import Check, CheckContext, CheckFailed, check
from ._device import PROFILES
from ._frames import FrameParser

__all__ = ["CHECKS", "SEQUENCE"]

SEQUENCE = "1234567890*#"


@check("quiet-line", "sends nothing but frames while idle (no noise for 1 s)")
async def _quiet(ctx: CheckContext) -> str:
    framing = PROFILES.get(ctx.profile, PROFILES["generic"])[0]
    parser = FrameParser(framing)
    with trio.move_on_after(1.0):
        while True:
            parser.feed(await ctx.stream.receive_some(1024))
    if parser.noise:
        raise CheckFailed(f"{parser.noise} noise bytes while idle (wrong baud rate or framing?)")
    return "clean"


@check("all-keys", f"decodes every key, in order: {SEQUENCE}", interactive=True)
async def _keys(ctx: CheckContext) -> str:
    framing = PROFILES.get(ctx.profile, PROFILES["generic"])[0]
    parser = FrameParser(framing)
    got = ""
    await ctx.stimulus(f"Press {' '.join(SEQUENCE)} on a phone on the watched line.")
    with trio.move_on_after(ctx.interactive_wait):
        while len(got) < len(SEQUENCE):
            for item in parser.feed(await ctx.stream.receive_some(1024)):
                got += item.digit
    if got[: len(SEQUENCE)] != SEQUENCE:
        raise CheckFailed(f"decoded {got!r}, expected {SEQUENCE!r} ({parser.noise} noise bytes)")
    return f"all {len(SEQUENCE)} keys, {parser.noise} noise bytes"


CHECKS: list[Check] = [_quiet, _keys]
