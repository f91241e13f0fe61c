"""The voice-modem driver against the emulated modem on a pty: calls, audio, DTMF, faults."""

from __future__ import annotations

import numpy as np
import pytest
import trio

from engine import DeviceError
from engine.abc import Capability, DeviceHealth
from hardware.testing import next_event
from hardware.voice_modem import (
    CallEnded,
    IncomingCall,
    InvalidDialString,
    RingingStopped,
    VoiceModemTimings,
)

TONE = (np.sin(np.arange(1600) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)


async def test_initialisation_picks_an_8khz_format_and_arms_caller_id(
    nursery, voice_emulator, start_voice_modem
) -> None:
    modem = await start_voice_modem(voice_emulator)
    assert modem.voice_format is not None and modem.voice_format.fmt == "ulaw"
    assert voice_emulator.state.vcid == 1 and voice_emulator.state.fclass == 8
    assert voice_emulator.flow_control == "none"  # never XON/XOFF with binary audio
    assert Capability.VOICE_LINE in modem.capabilities and Capability.CALLER_ID in modem.capabilities
    assert modem.describe()["model"] == voice_emulator.model


async def test_a_ring_with_caller_id_answered_audio_both_ways_dtmf_and_remote_hangup(
    nursery, voice_emulator, start_voice_modem
) -> None:
    modem = await start_voice_modem(voice_emulator)
    nursery.start_soon(voice_emulator.ring, "5551234", "ANA LOPEZ")
    assert modem.describe()["last_caller_id"] is None
    offer = await next_event(modem, IncomingCall)
    assert (offer.caller_id.number, offer.caller_id.name) == ("5551234", "ANA LOPEZ")
    # what a technician sees for the line on the devices page
    assert {k: modem.describe()["last_caller_id"][k] for k in ("number", "name")} == {"number": "5551234", "name": "ANA LOPEZ"}
    call = await modem.answer()
    assert voice_emulator.state.off_hook and voice_emulator.state.voice

    await voice_emulator.send_audio(TONE)
    await voice_emulator.send_dtmf("4", repeat=5)  # a chipset repeating a held key
    await voice_emulator.send_dtmf("2#")
    frames = []
    with trio.fail_after(10):
        while sum(len(f) for f in frames) < 160 + len(TONE):  # 20 ms of silence at CONNECT, then the tone
            frames.append(await call.receive_frame())
    heard = np.concatenate(frames)[160 : 160 + len(TONE)].astype(np.int32)
    assert np.abs(heard - TONE).max() < 400  # µ-law step size, nothing shifted or lost
    with trio.fail_after(10):
        digits = [await call.digits.receive() for _ in range(3)]
    assert digits == ["4", "2", "#"]

    for start in range(0, len(TONE), 160):
        await call.send_frame(TONE[start : start + 160])
    await voice_emulator.wait_until(lambda e: len(e.received_audio()) >= len(TONE))
    assert np.abs(voice_emulator.received_audio()[: len(TONE)].astype(np.int32) - TONE).max() < 400

    await voice_emulator.remote_hangup("l")
    ended = await next_event(modem, CallEnded)
    assert ended.reason == "remote-loop-current-drop" and call.end_reason == ended.reason
    with trio.fail_after(10):
        await call.released.wait()
    assert not voice_emulator.state.off_hook and not voice_emulator.state.voice
    with pytest.raises(trio.EndOfChannel):
        while True:
            await call.receive_frame()
    assert modem.call is None and modem.health() is DeviceHealth.OK


async def test_unformatted_mdmf_caller_id(nursery, voice_emulator, start_voice_modem) -> None:
    modem = await start_voice_modem(voice_emulator)
    voice_emulator.state.vcid = 2  # as if configured for raw bursts
    nursery.start_soon(voice_emulator.ring, "600111222", "BOB")
    offer = await next_event(modem, IncomingCall)
    assert (offer.caller_id.number, offer.caller_id.name) == ("600111222", "BOB")


async def test_caller_who_gives_up_is_reported_as_ringing_stopped(
    nursery, voice_emulator, start_voice_modem
) -> None:
    modem = await start_voice_modem(voice_emulator)
    await voice_emulator.ring("5550000", rings=1)
    stopped = await next_event(modem, RingingStopped)
    assert stopped.caller_id.number == "5550000" and stopped.rings == 1
    assert not voice_emulator.state.off_hook


async def test_an_all_dle_audio_buffer_is_sent_shielded_and_arrives_whole(
    nursery, voice_emulator, start_voice_modem
) -> None:
    modem = await start_voice_modem(voice_emulator)
    nursery.start_soon(voice_emulator.ring, "1", "")
    await next_event(modem, IncomingCall)
    call = await modem.answer()
    # A sample that µ-law-encodes to 0x10 in every position: the wire must carry 0x10 0x10 for each.
    sample = int(np.flatnonzero(np.frombuffer(bytes(range(256)), np.uint8) == 0x10)[0])
    from hardware import _g711

    value = _g711.decode(bytes([sample]), "ulaw")[0]
    before = voice_emulator.pty.bytes_from_host
    await call.send_frame(np.full(160, value, dtype=np.int16))
    await voice_emulator.wait_until(lambda e: len(e._tx_audio) >= 160)
    assert bytes(voice_emulator._tx_audio[:160]) == b"\x10" * 160
    assert voice_emulator.pty.bytes_from_host - before == 320
    await call.hangup()
    assert call.end_reason == "local-hangup"
    await voice_emulator.wait_until(lambda e: not e.state.off_hook)


async def test_dial_out_with_a_checked_dial_string(nursery, voice_emulator, start_voice_modem) -> None:
    modem = await start_voice_modem(voice_emulator)
    with pytest.raises(InvalidDialString):
        await modem.dial("555;ATZ")
    assert not any("555;" in c for c in voice_emulator.commands)
    call = await modem.dial("9,5551234")
    assert voice_emulator.state.dialled == ["9,5551234"] and voice_emulator.state.voice
    assert call.direction == "out" and modem.line_capabilities.reports_answer is False
    await call.flash()
    assert any(c.upper().startswith("ATD!") for c in voice_emulator.commands)
    await call.hangup()
    await voice_emulator.wait_until(lambda e: not e.state.off_hook)


async def test_unplug_mid_call_ends_the_call_and_the_modem_comes_back(
    nursery, voice_emulator, start_voice_modem
) -> None:
    modem = await start_voice_modem(voice_emulator)
    nursery.start_soon(voice_emulator.ring, "5551234", "")
    await next_event(modem, IncomingCall)
    call = await modem.answer()
    voice_emulator.unplug()
    ended = await next_event(modem, CallEnded)
    assert ended.reason == "device-disconnected" and call.ended.is_set()
    with trio.fail_after(10):
        await modem.wait_health(DeviceHealth.DISCONNECTED)
    with pytest.raises(DeviceError):
        await modem.answer()
    voice_emulator.replug()  # a new /dev/pts node; the stable link follows it
    with trio.fail_after(10):
        await modem.wait_health(DeviceHealth.OK)
    assert voice_emulator.state.vcid == 1  # re-armed on the new connection
    assert modem.statistics()["connects"] == 2


async def test_a_modem_that_stops_answering_is_resynced_reset_then_reopened(
    nursery, voice_emulator, start_voice_modem
) -> None:
    timings = VoiceModemTimings(command_timeout=0.3, keepalive=0.2, ring_gone=1.0)
    modem = await start_voice_modem(voice_emulator, timings=timings)
    voice_emulator.stop_answering()
    with trio.fail_after(20):
        await modem.wait_health(DeviceHealth.DEGRADED)
        await modem.wait_health(DeviceHealth.UNHEALTHY)
    assert modem.counters["resyncs"] >= 1 and modem.counters["resets"] >= 1
    voice_emulator.resume_answering()
    with trio.fail_after(20):
        await modem.wait_health(DeviceHealth.OK)
    assert voice_emulator.state.vcid == 1


async def test_line_noise_while_idle_does_not_stop_the_next_call(
    nursery, voice_emulator, start_voice_modem
) -> None:
    modem = await start_voice_modem(voice_emulator)
    await voice_emulator.send_noise(2000)
    await voice_emulator.send_raw(b"\r\n")
    nursery.start_soon(voice_emulator.ring, "5557777", "")
    offer = await next_event(modem, IncomingCall)
    assert offer.caller_id.number == "5557777"
    assert (
        modem.port is not None
        and modem.port.machine.stats.unknown_lines + modem.port.machine.stats.noise_bytes > 0
    )


async def test_unknown_dle_codes_are_counted_and_the_call_goes_on(
    nursery, voice_emulator, start_voice_modem
) -> None:
    modem = await start_voice_modem(voice_emulator)
    nursery.start_soon(voice_emulator.ring, "1", "")
    await next_event(modem, IncomingCall)
    call = await modem.answer()
    await voice_emulator.send_raw(b"\x10Z\x10\xfe")
    await voice_emulator.send_dtmf("7")
    with trio.fail_after(10):
        assert await call.digits.receive() == "7"
    assert modem.counters["unknown_dle_codes"] == 2
    await call.hangup()


async def test_second_open_of_the_same_port_fails_clearly(nursery, voice_emulator, start_voice_modem) -> None:
    first = await start_voice_modem(voice_emulator)
    second = await start_voice_modem(voice_emulator, wait=False)
    with trio.fail_after(10):
        await second.wait_health(DeviceHealth.UNHEALTHY)
    assert "already open" in second.health_reason
    assert first.health() is DeviceHealth.OK


async def test_the_call_is_a_media_source_and_sink_that_never_blocks(
    nursery, voice_emulator, start_voice_modem
) -> None:
    from engine.media import Sink, Source

    modem = await start_voice_modem(voice_emulator)
    nursery.start_soon(voice_emulator.ring, "5551234", "")
    await next_event(modem, IncomingCall)
    call = await modem.answer()
    assert isinstance(call, Source) and isinstance(call, Sink)
    for start in range(0, len(TONE), 160):  # what the media clock does every 20 ms
        call.write_frame(TONE[start : start + 160])
    await voice_emulator.wait_until(lambda e: len(e.received_audio()) >= len(TONE))
    assert np.abs(voice_emulator.received_audio()[: len(TONE)].astype(np.int32) - TONE).max() < 400
    for _ in range(100):  # far more than the queue holds, without awaiting: dropped and counted
        call.write_frame(TONE[:160])
    assert call.stats["transmit_dropped"] > 0
    first = call.read_frame()
    assert first is not None and len(first) == 160
    await voice_emulator.remote_hangup("b")
    with trio.fail_after(10):
        await call.ended.wait()
    while (frame := call.read_frame()) is not None:
        assert len(frame) == 160
    assert call.end_reason == "remote-busy"


async def test_hardware_flow_control_when_the_cable_has_it(
    nursery, voice_emulator, start_voice_modem
) -> None:
    await start_voice_modem(voice_emulator, rtscts=True)
    assert voice_emulator.flow_control == "rts/cts"
