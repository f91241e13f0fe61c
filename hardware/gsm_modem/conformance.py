"""GSM-modem conformance checks: what the gsm-modem driver needs (3GPP TS 27.005/27.007)."""

from __future__ import annotations

import trio

from .._conformance import Check, CheckContext, CheckFailed, check
from ._device import REGISTRATION_TEXT, parse_creg
from ._pdu import PduError, decode_pdu

__all__ = ["CHECKS", "TWO_LINE_URCS", "URC_PREFIXES"]

URC_PREFIXES = ("RING", "+CMTI:", "+CMT:", "+CDS:", "+CLIP:", "+CREG:", "^", "+CUSD:")
TWO_LINE_URCS = ("+CMT:", "+CDS:")


@check("at", "answers AT with OK")
async def _at(ctx: CheckContext) -> str:
    assert ctx.at is not None
    if not await ctx.at.resync(timeout=ctx.timeout):
        raise CheckFailed("no OK to AT (wrong port or baud rate?)")
    await ctx.command("ATE0")
    return "OK"


@check("error-codes", "reports numeric +CME ERROR codes (AT+CMEE=1)")
async def _cmee(ctx: CheckContext) -> str:
    await ctx.command("AT+CMEE=1")
    return "numeric errors on"


@check("identity", "reports its model (AT+CGMM)")
async def _identity(ctx: CheckContext) -> str:
    result = await ctx.command("AT+CGMM", check_ok=False)
    return " ".join(result.lines) or f"(no text, {result.final})"


@check("sim", "SIM is present and unlocked (AT+CPIN?)")
async def _sim(ctx: CheckContext) -> str:
    for _ in range(10):
        result = await ctx.command("AT+CPIN?", check_ok=False)
        if result.ok:
            state = (result.info("+CPIN") or ["?"])[0].strip()
            if state.upper() == "READY":
                return "READY"
            raise CheckFailed(f"SIM state {state}: unlock it (pin option) before using the modem")
        if result.error_code in (10, 14):
            await trio.sleep(1.0)  # not ready yet: the driver waits too
            continue
        raise CheckFailed(f"AT+CPIN? answered {result.final}")
    raise CheckFailed("the SIM never became ready")


@check("pdu-mode", "accepts SMS PDU mode (AT+CMGF=0)")
async def _cmgf(ctx: CheckContext) -> str:
    await ctx.command("AT+CMGF=0")
    return "PDU mode"


@check("storage", "uses SIM storage for SMS (AT+CPMS)")
async def _cpms(ctx: CheckContext) -> str:
    result = await ctx.command('AT+CPMS="SM","SM","SM"')
    return (result.info("+CPMS") or ["ok"])[0]


@check("indications", "notifies new messages with +CMTI and status reports with +CDS (AT+CNMI=2,1,0,1,0)")
async def _cnmi(ctx: CheckContext) -> str:
    await ctx.command("AT+CNMI=2,1,0,1,0")
    return "indications on"


@check("registration", "reports network registration (AT+CREG?)")
async def _creg(ctx: CheckContext) -> str:
    result = await ctx.command("AT+CREG?")
    values = result.info("+CREG")
    stat = parse_creg(values[0]) if values else None
    if stat is None:
        raise CheckFailed(f"unreadable +CREG answer: {' | '.join(result.lines) or '(none)'}")
    text = REGISTRATION_TEXT.get(stat, f"status {stat}")
    if stat not in (1, 5):
        raise CheckFailed(f"not registered: {text}")
    return text


@check("signal", "reports signal quality (AT+CSQ)")
async def _csq(ctx: CheckContext) -> str:
    result = await ctx.command("AT+CSQ")
    values = result.info("+CSQ")
    rssi = values[0].split(",")[0].strip() if values else ""
    if not rssi.isdigit() or not (int(rssi) <= 31 or int(rssi) == 99):
        raise CheckFailed(f"unreadable +CSQ answer: {' | '.join(result.lines) or '(none)'}")
    return "unknown (99)" if rssi == "99" else f"rssi {rssi} ({-113 + 2 * int(rssi)} dBm)"


@check("list-messages", "lists stored messages in PDU mode, each decodable (AT+CMGL=4)")
async def _cmgl(ctx: CheckContext) -> str:
    result = await ctx.command("AT+CMGL=4", timeout=ctx.timeout * 3)
    pdus = [line for line in result.lines if not line.upper().startswith("+CMGL:")]
    bad = []
    for pdu in pdus:
        try:
            decode_pdu(pdu)
        except PduError as exc:
            bad.append(str(exc))
    if bad:
        raise CheckFailed(f"{len(bad)} of {len(pdus)} stored PDUs do not decode: {bad[0]}")
    return f"{len(pdus)} stored message(s)"


@check("receive-sms", "an SMS sent to the SIM is announced with +CMTI and readable", interactive=True)
async def _receive(ctx: CheckContext) -> str:
    assert ctx.at is not None
    await ctx.stimulus("Send an SMS to the modem's number now.")
    with trio.move_on_after(ctx.interactive_wait):
        async for urc in ctx.at.urcs:
            if urc.line.upper().startswith("+CMTI:"):
                index = urc.line.split(",")[1].strip() if "," in urc.line else ""
                result = await ctx.command(f"AT+CMGR={index}")
                pdus = [line for line in result.lines if not line.upper().startswith("+CMGR:")]
                try:
                    message = decode_pdu(pdus[0]) if pdus else None
                except PduError as exc:
                    raise CheckFailed(f"+CMGR={index} PDU does not decode: {exc}") from None
                return (
                    f"received from {getattr(message, 'sender', '?')}: {getattr(message, 'text', '')[:40]!r}"
                )
    raise CheckFailed("no +CMTI arrived")


CHECKS: list[Check] = [_at, _cmee, _identity, _sim, _cmgf, _cpms, _cnmi, _creg, _csq, _cmgl, _receive]
