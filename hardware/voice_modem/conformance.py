"""Voice-modem conformance checks: what the voice-modem driver needs from a modem (ITU-T V.253)."""

from __future__ import annotations

import trio

from .._conformance import Check, CheckContext, CheckFailed, check
from ._callerid import CallerIdCollector
from ._dle import DLE, ETX, HOST_ABORT_RECEIVE, HOST_END_TRANSMIT
from ._profiles import PROFILES, choose_voice_format, parse_vsm_list

__all__ = ["CHECKS", "URC_PREFIXES"]

URC_PREFIXES = ("RING", "DATE", "TIME", "NMBR", "NAME", "MESG", "DDN_NMBR")


@check("at", "answers AT with OK")
async def _at(ctx: CheckContext) -> str:
    assert ctx.at is not None
    if not await ctx.at.resync(timeout=ctx.timeout):
        raise CheckFailed("no OK to AT (wrong port or baud rate?)")
    return "OK"


@check("echo-off", "ATE0 turns command echo off")
async def _echo(ctx: CheckContext) -> str:
    assert ctx.at is not None
    await ctx.command("ATE0")
    before = ctx.at.machine.stats.echoes
    await ctx.command("AT")
    if ctx.at.machine.stats.echoes != before:
        raise CheckFailed("still echoes commands after ATE0")
    return "echo off"


@check("identity", "reports its model (ATI3)")
async def _identity(ctx: CheckContext) -> str:
    result = await ctx.command("ATI3", check_ok=False)
    return " ".join(result.lines) or f"(no text, {result.final})"


@check("voice-class", "enters voice mode class (AT+FCLASS=8)")
async def _fclass(ctx: CheckContext) -> str:
    await ctx.command(PROFILES.get(ctx.profile, PROFILES["generic"]).voice_class)
    return "class 8"


@check("voice-format", "offers an 8 kHz format the driver can use (AT+VSM=?)")
async def _vsm(ctx: CheckContext) -> str:
    profile = PROFILES.get(ctx.profile, PROFILES["generic"])
    result = await ctx.command(profile.vsm_query)
    formats = parse_vsm_list(list(result.lines))
    chosen = choose_voice_format(formats, profile.preferred_formats)
    if chosen is None:
        raise CheckFailed(f"no usable 8 kHz format in: {' | '.join(result.lines) or '(empty list)'}")
    await ctx.command(f"AT+VSM={chosen.cml},8000")
    ctx.state["format"] = chosen
    return (
        f"{chosen.fmt} (+VSM={chosen.cml},8000, {chosen.name}); offered: {', '.join(f.fmt for f in formats)}"
    )


@check("caller-id", "enables formatted caller ID (AT+VCID=1)")
async def _vcid(ctx: CheckContext) -> str:
    await ctx.command(PROFILES.get(ctx.profile, PROFILES["generic"]).caller_id_on)
    return "caller ID on"


@check("caller-id-after-reset", "whether caller ID survives ATZ (the driver re-arms it either way)")
async def _vcid_reset(ctx: CheckContext) -> str:
    profile = PROFILES.get(ctx.profile, PROFILES["generic"])
    await ctx.command(profile.reset, timeout=ctx.timeout * 2)
    await ctx.command("ATE0")
    await ctx.command(profile.voice_class)
    result = await ctx.command("AT+VCID?", check_ok=False)
    value = (result.info("+VCID") or list(result.lines) or [""])[0].strip()
    await ctx.command(profile.caller_id_on)
    if format_chosen := ctx.state.get("format"):
        await ctx.command(f"AT+VSM={format_chosen.cml},8000")
    return (
        "kept after reset" if value == "1" else f"lost after reset (reads {value or result.final}); re-armed"
    )


@check("voice-stream", "starts and stops a DLE voice stream (AT+VLS=1, AT+VTR, <DLE><ETX>)")
async def _stream(ctx: CheckContext) -> str:
    assert ctx.at is not None
    profile = PROFILES.get(ctx.profile, PROFILES["generic"])
    received = bytearray()
    ended = trio.Event()

    def sink(data: bytes) -> bytes | None:
        received.extend(data)
        position = _end_of_stream(received)
        if position < 0:
            return None
        ended.set()
        rest = bytes(received[position + 2 :])
        del received[position:]
        return rest

    await ctx.command(profile.off_hook)
    start = profile.full_duplex_start if profile.line.full_duplex else profile.receive_start
    try:
        await ctx.command(start, divert=sink)
        await ctx.at.write_raw(bytes(160) + HOST_END_TRANSMIT + HOST_ABORT_RECEIVE)
        with trio.move_on_after(ctx.timeout):
            await ended.wait()
        if not ended.is_set():
            ctx.at.divert(None)
            raise CheckFailed(
                f"no <DLE><ETX> after the host ended the stream ({len(received)} bytes received)"
            )
    finally:
        await ctx.at.resync(timeout=ctx.timeout)
        await ctx.command(profile.on_hook, check_ok=False)
    return f"voice stream ok ({len(received)} audio bytes before <DLE><ETX>)"


def _end_of_stream(data: bytearray) -> int:
    index = 0
    while True:
        index = data.find(bytes([DLE]), index)
        if index < 0 or index + 1 >= len(data):
            return -1
        if data[index + 1] == ETX:
            return index
        index += 2


@check("ring-caller-id", "reports RING and the caller's number (needs a call to the line)", interactive=True)
async def _ring(ctx: CheckContext) -> str:
    assert ctx.at is not None
    collector = CallerIdCollector()
    rings = 0
    await ctx.stimulus("Call the line now and let it ring three times.")
    with trio.move_on_after(ctx.interactive_wait):
        async for urc in ctx.at.urcs:
            if urc.line.upper().startswith("RING"):
                rings += 1
                if rings >= 2:
                    break
            else:
                collector.feed(urc.line)
    cid = collector.take()
    if rings == 0:
        raise CheckFailed("no RING arrived")
    if cid is None:
        raise CheckFailed(f"{rings} RING(s) but no caller ID between them")
    return f"{rings} rings, caller {cid.number or cid.number_absent} {cid.name}".strip()


CHECKS: list[Check] = [_at, _echo, _identity, _fclass, _vsm, _vcid, _vcid_reset, _stream, _ring]
