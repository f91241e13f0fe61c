"""Voicemail on a real SIP call: a baresip caller reaches a flow's ``voicemail`` node (and, in the second
test, a queue's ``overflow = { voicemail = ... }``), hears the greeting and the beep, says a 700 Hz tone
for two seconds and then nothing: the silence cut-off ends the message, the engine hangs up, the WAV in
the box holds the tone (about two seconds of it, the trailing silence cut), a ``MessageWaiting`` event
is published and a supervisor lists and fetches the message through ``/api/v1/voicemail``."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
from baresip_agent import baresip_agent, dominant_frequency
from sip_interop_helpers import describe, free_udp_port, run_sipp
from voice_helpers import (
    PHONES,
    cdr_row,
    count_frames_at,
    dial,
    frame_tones,
    heard,
    loud_mask,
    set_caller_audio,
    silence,
    tone,
    wait_for_interaction,
    write_prompt,
)

from engine import InteractionState
from engine.console import add_token
from engine.testing import wait_until

pytestmark = pytest.mark.interop

MESSAGE_HZ, GREETING_HZ, BEEP_HZ = 700.0, 450.0, 1000.0
SCENARIOS = Path(__file__).resolve().parent / "scenarios"

FLOW = """
[[flows]]
name = "after-hours"
start = "start"

[flows.nodes.start]
type = "voicemail"
box = "sales"
greeting = "closed-greeting"

[[routes]]
match = "300"
flow = "after-hours"
"""

OVERFLOW = """
[[agents]]
id = "alice"
endpoint = "sip:1001"

[[queues]]
name = "support"
members = ["alice"]
max_wait = 1
overflow = { voicemail = "support-box" }

[[routes]]
match = "100"
queue = "support"
"""


def read_message(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


def caller_says_a_message() -> np.ndarray:
    # Quiet through the greeting and the beep, two seconds of tone, then silence (digital zeros) far
    # longer than the cut-off: only the silence cut-off can end this message.
    return np.concatenate([silence(2.5), tone(MESSAGE_HZ, 2.0), silence(40)])


def check_message(path: Path) -> None:
    audio = read_message(path)
    spoken = audio[: len(audio) // 160 * 160].reshape(-1, 160)[loud_mask(audio)].reshape(-1)
    assert abs(dominant_frequency(spoken, 8000) - MESSAGE_HZ) < 15
    assert 1.6 <= len(spoken) / 8000 <= 2.4  # the two seconds the caller said
    # The cut-off ended it and the silence after the last word is not kept (5 s of it came before the end).
    assert len(audio) / 8000 <= 2.5 + 2.0 + 0.8


async def test_a_flow_voicemail_node_takes_a_message_on_sip(voice_engine, tmp_path):
    write_prompt(tmp_path, "closed-greeting", tone(GREETING_HZ, 0.6))
    write_prompt(tmp_path, "beep", tone(BEEP_HZ, 0.25))
    async with voice_engine(FLOW, sip=PHONES) as (engine, channel):
        events: list = []
        engine.bus.add_listener(events.append)
        async with baresip_agent(channel, tmp_path, user="2001") as caller:
            set_caller_audio(caller, caller_says_a_message())
            await dial(caller, channel, "300")
            interaction = await wait_for_interaction(engine, InteractionState.IVR)
            # The engine hangs up once the silence cut-off ends the message.
            row = await cdr_row(engine, interaction.id)
            await wait_until(lambda: interaction.id not in channel.calls.calls, timeout=10)
            assert row["disposition"] == "ANSWERED"
        # What the caller heard: the greeting, then the beep.
        tones = frame_tones(heard(caller))
        assert count_frames_at(tones, GREETING_HZ) >= 20 and count_frames_at(tones, BEEP_HZ) >= 3
        first_beep = int(np.argmax(np.abs(tones - BEEP_HZ) <= 50))
        assert count_frames_at(tones[:first_beep], GREETING_HZ) >= 20  # greeting first, then the beep

        (waiting,) = [e for e in events if e.event == "MessageWaiting"]
        assert waiting.fields["Mailbox"] == "sales" and waiting.fields["New"] == 1
        assert waiting.interaction == interaction.id
        (message,) = await engine.voicemail.list("sales")
        assert message["caller"] == "2001" and 1.6 <= message["seconds"] <= 4.8
        path = tmp_path / message["file"]
        assert path.parent == tmp_path / "voicemail" / "sales"
        check_message(path)

        token = await add_token(engine.store, "sup", "supervisor")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30,
                                     headers={"authorization": f"Bearer {token}"}) as client:
            listed = (await client.get("/api/v1/voicemail", params={"box": "sales"})).json()
            assert [m["id"] for m in listed] == [message["id"]]
            fetched = await client.get(f"/api/v1/voicemail/{message['id']}/audio")
            assert fetched.status_code == 200 and fetched.content == path.read_bytes()
            with wave.open(io.BytesIO(fetched.content)) as w:
                assert w.getframerate() == 8000


async def test_a_queue_overflow_to_voicemail_takes_a_message_on_sip(voice_engine, tmp_path):
    """Nobody answers the queue within ``max_wait``: the caller, still ringing, is answered by voicemail
    (no greeting prompt of the box's own: the spoken default, then the beep)."""
    write_prompt(tmp_path, "beep", tone(BEEP_HZ, 0.25))
    async with voice_engine(OVERFLOW, sip=PHONES) as (engine, channel):
        async with baresip_agent(channel, tmp_path, user="2001") as caller:
            set_caller_audio(caller, np.concatenate([silence(4.5), tone(MESSAGE_HZ, 2.0), silence(40)]))
            await dial(caller, channel, "100")
            interaction = await wait_for_interaction(engine, InteractionState.QUEUED)
            row = await cdr_row(engine, interaction.id)
            assert row["disposition"] == "ANSWERED"
        (message,) = await engine.voicemail.list("support-box")
        audio = read_message(tmp_path / message["file"])
        spoken = audio[: len(audio) // 160 * 160].reshape(-1, 160)[loud_mask(audio)].reshape(-1)
        assert abs(dominant_frequency(spoken, 8000) - MESSAGE_HZ) < 15
        assert 1.6 <= len(spoken) / 8000 <= 2.4


async def test_the_caller_ends_the_message_with_the_hash_key(voice_engine, tmp_path):
    """A SIPp caller on a trunk speaks (SIPp's g711a capture), presses # (RFC 4733) after about three
    seconds and speaks on: the message ends at the #, so what follows is not kept, and the engine hangs
    up (SIPp waits for its BYE)."""
    write_prompt(tmp_path, "closed-greeting", tone(GREETING_HZ, 0.5))
    write_prompt(tmp_path, "beep", tone(BEEP_HZ, 0.2))
    sipp_port = free_udp_port()
    trunk = f'\n[[sip.trunks]]\nname = "callers"\nserver = "sip:127.0.0.1:{sipp_port}"\n'
    async with voice_engine(FLOW, sip=PHONES + trunk) as (engine, channel):
        result = await run_sipp([
            f"127.0.0.1:{channel.bound[0].port}", "-sf", str(SCENARIOS / "caller_leaves_message_with_stop_key.xml"),
            "-s", "300", "-i", "127.0.0.1", "-p", str(sipp_port), "-mp", str(free_udp_port()), "-m", "1",
        ])
        assert result.returncode == 0, describe(result)  # it got the engine's BYE
        await wait_until(lambda: not channel.calls.calls, timeout=10)
        (message,) = await engine.voicemail.list("sales")
    assert message["caller"] == "3005"
    # About three seconds were said before the #; the seven seconds after it are not in the message.
    assert 1.5 <= message["seconds"] <= 5.0
    audio = read_message(tmp_path / message["file"])
    assert len(audio) / 8000 <= 5.0
    assert loud_mask(audio).sum() >= 50  # a second and more of speech


async def test_a_caller_hanging_up_mid_message_leaves_what_they_said(voice_engine, tmp_path):
    """The caller says two seconds of tone and hangs up before the silence cut-off: the message is
    kept up to the hang-up, announced, and nothing is left open (no call, no RTP endpoint)."""
    write_prompt(tmp_path, "closed-greeting", tone(GREETING_HZ, 0.5))
    async with voice_engine(FLOW, sip=PHONES) as (engine, channel):
        events: list = []
        engine.bus.add_listener(events.append)
        async with baresip_agent(channel, tmp_path, user="2001") as caller:
            set_caller_audio(caller, np.concatenate([silence(1.5), tone(MESSAGE_HZ, 2.0), silence(40)]))
            await dial(caller, channel, "300")
            interaction = await wait_for_interaction(engine, InteractionState.IVR)
            # the call is answered (anchored on the engine's media) just after it enters its state
            await wait_until(lambda: channel.calls.calls[interaction.id].anchor is not None, timeout=10)
            anchor = channel.calls.calls[interaction.id].anchor.endpoint
            await wait_until(lambda: anchor.packets_in >= 200, timeout=20)  # 4 s said: the tone is over
            await caller.command("hangup")
            await wait_until(lambda: [e for e in events if e.event == "MessageWaiting"], timeout=20)
        await wait_until(lambda: not channel.calls.calls and engine.media.statistics()["endpoints"] == 0, timeout=10)
        (message,) = await engine.voicemail.list("sales")
        row = await cdr_row(engine, interaction.id)
    assert row["disposition"] == "ANSWERED"
    audio = read_message(tmp_path / message["file"])
    spoken = audio[: len(audio) // 160 * 160].reshape(-1, 160)[loud_mask(audio)].reshape(-1)
    assert abs(dominant_frequency(spoken, 8000) - MESSAGE_HZ) < 15 and 1.6 <= len(spoken) / 8000 <= 2.4
