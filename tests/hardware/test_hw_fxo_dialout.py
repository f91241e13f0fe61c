"""Dialling out on an analog line (``FxoChannel.dial``) against the emulated modem: strict dial strings,
the modem's result codes and a busy tone become dial outcomes, and a line that cannot report answer
keeps predictive campaigns off it."""

from __future__ import annotations

import trio

from engine import Direction, InteractionKind
from engine.abc import Capability, DeviceHealth
from engine.testing import open_test_engine
from hardware.voice_modem import plugin as voice_plugin


def config(link: str, answer_wait: float = 0.3) -> str:
    return f"""
[[devices]]
name = "line1"
driver = "voice-modem"
port = "{link}"
options = {{ command_timeout = 1.0, answer_wait = {answer_wait} }}

[[agents]]
id = "alice"
endpoint = "sip:1001"
"""


def outbound(engine, number: str):
    return engine.new_interaction(
        InteractionKind.VOICE, Direction.OUTBOUND, from_="campaign", to=number, channel="fxo"
    )


async def started(engine):
    with trio.fail_after(15):
        await engine.devices.get("line1").wait_health(DeviceHealth.OK)
    return engine.channels["fxo"]


async def test_an_answered_dial_stays_up_with_its_audio_until_hung_up(nursery, voice_emulator, tmp_path) -> None:
    async with open_test_engine(config(voice_emulator.link), plugins=[voice_plugin], data_dir=tmp_path) as engine:
        channel = await started(engine)
        call = outbound(engine, "5550001")
        result = await channel.dial(call, "5550001", caller_id="", ring_timeout=10)
        assert result.outcome == "answered"
        assert voice_emulator.state.dialled == ["5550001"]
        assert voice_emulator.state.off_hook and voice_emulator.state.voice
        assert call.attributes["answer_supervision"] is False  # the generic profile cannot tell
        assert channel.media_of(call) is not None
        await channel.hangup(call)
        await voice_emulator.wait_until(lambda e: not e.state.off_hook)


async def test_dial_strings_are_checked_before_any_at_command(nursery, voice_emulator, tmp_path) -> None:
    async with open_test_engine(config(voice_emulator.link), plugins=[voice_plugin], data_dir=tmp_path) as engine:
        channel = await started(engine)
        for number in ("+34600111222", "123;ATH", "12\r34", "", "1" * 41):
            result = await channel.dial(outbound(engine, "x"), number, caller_id="", ring_timeout=5)
            assert result.outcome == "invalid", number
        assert not any(command.upper().startswith("ATD") for command in voice_emulator.commands)
        assert not voice_emulator.state.off_hook


async def test_the_modems_result_codes_become_outcomes_and_the_line_goes_back_on_hook(
    nursery, voice_emulator, tmp_path
) -> None:
    async with open_test_engine(config(voice_emulator.link), plugins=[voice_plugin], data_dir=tmp_path) as engine:
        channel = await started(engine)
        for code, outcome in (("BUSY", "busy"), ("NO DIALTONE", "congestion"), ("NO ANSWER", "no-answer")):
            voice_emulator.dial_result = code
            result = await channel.dial(outbound(engine, "5550002"), "5550002", caller_id="", ring_timeout=5)
            assert result.outcome == outcome, code
            assert not voice_emulator.state.off_hook and not voice_emulator.state.voice
        # The line is free again: the next dial goes through.
        result = await channel.dial(outbound(engine, "5550003"), "5550003", caller_id="", ring_timeout=5)
        assert result.outcome == "answered"


async def test_a_busy_tone_right_after_dialling_is_busy_not_answered(nursery, voice_emulator, tmp_path) -> None:
    async with open_test_engine(
        config(voice_emulator.link, answer_wait=10), plugins=[voice_plugin], data_dir=tmp_path
    ) as engine:
        channel = await started(engine)

        async def far_end_busy() -> None:
            await voice_emulator.wait_until(lambda e: e.state.voice, timeout=15)
            await voice_emulator.send_line_event("b")

        nursery.start_soon(far_end_busy)
        with trio.fail_after(15):
            result = await channel.dial(outbound(engine, "5550004"), "5550004", caller_id="", ring_timeout=5)
        assert result.outcome == "busy"
        await voice_emulator.wait_until(lambda e: not e.state.off_hook)


async def test_a_line_without_answer_supervision_keeps_campaigns_off_predictive(
    nursery, voice_emulator, tmp_path
) -> None:
    text = config(voice_emulator.link) + """
[[campaigns]]
name = "renewals"
mode = "predictive"
agents = ["alice"]
"""
    async with open_test_engine(text, plugins=[voice_plugin], data_dir=tmp_path) as engine:
        await started(engine)
        line = engine.devices.get("line1")
        assert Capability.VOICE_LINE in line.capabilities
        assert Capability.ANSWER_SUPERVISION not in line.capabilities
        assert engine.dialer is not None
        assert engine.dialer.statistics()["renewals"]["mode"] == "progressive"
