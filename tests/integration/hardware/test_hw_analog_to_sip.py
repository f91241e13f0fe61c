"""Issue #7 end to end: a call arrives on the (emulated) voice modem with caller ID, the IVR answers and
plays its prompt through the modem, hears the caller's DTMF from DLE codes, queues the call, and a real
baresip agent answers over SIP; the caller and the agent hear each other."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import trio
from analog_helpers import (
    FAST_SIP,
    baresip_agent,
    baresip_command,
    complete_recording,
    dominant_frequency,
    loud_part,
    share_of_power_near,
    tone,
    write_wav,
)

from engine.abc import DeviceHealth
from engine.testing import open_test_engine, wait_until
from hardware.voice_modem import plugin as voice_plugin

pytestmark = pytest.mark.interop

PROMPT_HZ, CALLER_HZ, AGENT_HZ = 500, 700, 1300


IVR = """
[[flows]]
name = "main"
start = "welcome"

[flows.nodes.welcome]
type = "menu"
prompt = "welcome"
options = { "1" = "support" }
timeout = 10

[flows.nodes.support]
type = "queue"
queue = "support"
"""


def config(link: str, *, route: str = 'flow = "main"', ring_gone: float = 0.6) -> str:
    return FAST_SIP + f"""
[[sip.users]]
name = "1001"
password = "s3cret"

[[devices]]
name = "line1"
driver = "voice-modem"
port = "{link}"
options = {{ command_timeout = 1.0, ring_gone = {ring_gone} }}

[[agents]]
id = "alice"
endpoint = "sip:1001"

[[queues]]
name = "support"
members = ["alice"]
timeout = 15
wrapup = 0

[[routes]]
match = "line1"
{route}
""" + (IVR if "flow" in route else "")


async def caller_speaks(emulator, samples: np.ndarray, stop: trio.Event) -> None:
    """The caller talks at the pace of a real line: 100 ms of audio every 100 ms, until told to stop."""
    chunk = 800
    position = 0
    next_chunk = trio.current_time()
    while not stop.is_set():
        piece = samples[position : position + chunk]
        if len(piece) < chunk:
            position, piece = 0, samples[:chunk]
        position += chunk
        await emulator.send_audio(piece)
        next_chunk += 0.1
        await trio.sleep_until(next_chunk)


async def test_analog_caller_reaches_a_baresip_agent_through_ivr_and_both_hear_each_other(
    nursery, voice_emulator, tmp_path: Path
) -> None:
    import plugins.sip.plugin as sip_plugin

    write_wav(tmp_path / "prompts" / "en" / "welcome.wav", tone(PROMPT_HZ, 0.4))
    async with open_test_engine(
        config(voice_emulator.link), plugins=[voice_plugin, sip_plugin], data_dir=tmp_path
    ) as engine:
        sip = engine.channels["sip"]
        with trio.fail_after(15):
            await engine.devices.get("line1").wait_health(DeviceHealth.OK)
        phone_dir = tmp_path / "baresip"
        async with baresip_agent(
            phone_dir, user="1001", password="s3cret", registrar_port=sip.bound[0].port, says=tone(AGENT_HZ, 30)
        ) as phone:
            await wait_until(lambda: sip.endpoint_reachable("sip:1001"), timeout=20)
            async with engine.bus.subscribe("analog-e2e") as events:
                nursery.start_soon(partial(voice_emulator.ring, "600111222", "ANA LOPEZ", rings=4, interval=0.2))

                # The IVR answers and its prompt reaches the line.
                await voice_emulator.wait_until(lambda e: len(e.received_audio()) >= 2400, timeout=20)
                prompt = voice_emulator.received_audio()[:2400]
                assert share_of_power_near(prompt, PROMPT_HZ) > 0.8

                # The caller presses 1 (DLE code); the IVR queues the call and the agent's phone answers.
                await voice_emulator.send_dtmf("1")
                digits, bridged = [], None
                with trio.fail_after(30):
                    async for event in events:
                        if event.event == "DTMFEnd" and event.interaction:
                            digits.append(event.fields["Digit"])
                        if event.event == "BridgeEnter":
                            bridged = event
                            break
                assert digits == ["1"]
                mark = len(voice_emulator.received_audio())

                # Both talk: the caller's tone goes up the line, the agent's comes down to it.
                stop = trio.Event()
                nursery.start_soon(caller_speaks, voice_emulator, tone(CALLER_HZ, 1.0), stop)
                await voice_emulator.wait_until(
                    lambda e: len(e.received_audio()) - mark >= 2 * 8000, timeout=30
                )
                stop.set()
                heard_by_caller = voice_emulator.received_audio()[mark + 8000 : mark + 2 * 8000]
                assert share_of_power_near(heard_by_caller, AGENT_HZ) > 0.8, "the agent's voice never reached the line"

                await voice_emulator.remote_hangup("l")
                with trio.fail_after(20):
                    while not await engine.cdr():
                        await events.receive()
            # The engine hung up the agent's phone (BYE): baresip closes its recording.
            await wait_until(lambda: complete_recording(phone_dir) is not None, timeout=20)
            heard_by_agent = loud_part(complete_recording(phone_dir))
            assert len(heard_by_agent) >= 4000, phone.log_path.read_text(errors="replace")[-3000:]
            assert share_of_power_near(heard_by_agent, CALLER_HZ) > 0.8, "the caller's voice never reached the agent"

        (row,) = await engine.cdr()
        assert (row["src"], row["dst"], row["dstchannel"], row["disposition"]) == (
            "600111222", "line1", "alice", "ANSWERED"
        )
        assert row["clid"] == '"ANA LOPEZ" <600111222>'
        assert bridged.fields["Agent"] == "alice"
        await voice_emulator.wait_until(lambda e: not e.state.off_hook, timeout=10)


async def test_the_line_rings_until_the_sip_agent_answers_and_goes_on_hook_when_the_agent_hangs_up(
    nursery, voice_emulator, tmp_path: Path
) -> None:
    import plugins.sip.plugin as sip_plugin

    async with open_test_engine(
        config(voice_emulator.link, route='queue = "support"', ring_gone=2.0), plugins=[voice_plugin, sip_plugin], data_dir=tmp_path
    ) as engine:
        sip = engine.channels["sip"]
        with trio.fail_after(15):
            await engine.devices.get("line1").wait_health(DeviceHealth.OK)
        phone_dir = tmp_path / "baresip"
        async with baresip_agent(
            phone_dir, user="1001", password="s3cret", registrar_port=sip.bound[0].port, says=tone(AGENT_HZ, 30)
        ) as phone:
            await wait_until(lambda: sip.endpoint_reachable("sip:1001"), timeout=20)
            async with engine.bus.subscribe("analog-agent-hangup") as events:
                # The exchange keeps ringing until the line is answered, which is when the agent answers.
                nursery.start_soon(partial(voice_emulator.ring, "600333444", "", rings=300, interval=0.2))
                with trio.fail_after(30):
                    async for event in events:
                        if event.event == "BridgeEnter":
                            break
                assert voice_emulator.state.off_hook
                await voice_emulator.wait_until(lambda e: len(e.received_audio()) >= 8000, timeout=30)
                assert abs(dominant_frequency(voice_emulator.received_audio()[-4000:]) - AGENT_HZ) < 20
                await baresip_command(phone.ctrl_port, "hangup")
                # The agent's BYE ends the call: the line goes back on hook and the CDR is written.
                await voice_emulator.wait_until(lambda e: not e.state.off_hook, timeout=20)
                with trio.fail_after(20):
                    while not await engine.cdr():
                        await events.receive()
        (row,) = await engine.cdr()
        assert (row["src"], row["dstchannel"], row["disposition"]) == ("600333444", "alice", "ANSWERED")
        assert engine.crossconnect.statistics()["active"] == 0
