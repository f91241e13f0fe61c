"""Text-to-speech on a real SIP call: a flow's ``play`` node with ``text`` is spoken (espeak-ng, cached
as an 8 kHz WAV under the data directory) to a baresip caller, who hears speech (energy over many
frames, not one tone) before the flow's next prompt, a 600 Hz tone; without espeak-ng the engine says
so once in the log and the flow goes on to the tone and the hang-up."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from baresip_agent import baresip_agent
from voice_helpers import (
    PHONES,
    cdr_row,
    count_frames_at,
    dial,
    frame_tones,
    heard,
    set_caller_audio,
    silence,
    tone,
    wait_for_interaction,
    write_prompt,
)

from engine import InteractionState
from engine.media import TextToSpeech
from engine.testing import wait_until

pytestmark = pytest.mark.interop

NEXT_HZ = 600.0

CONFIG = """
[[flows]]
name = "welcome"
start = "hello"

[flows.nodes.hello]
type = "play"
text = "Thank you for calling the support line. All calls are recorded."
next = "after"

[flows.nodes.after]
type = "play"
prompt = "after-tone"
next = "bye"

[flows.nodes.bye]
type = "hangup"

[[routes]]
match = "100"
flow = "welcome"
"""


def trailing_run(tones: np.ndarray, hz: float) -> int:
    """How many frames at the end are the ``hz`` tone (the flow's last prompt)."""
    at = np.abs(tones - hz) <= 50
    return len(at) - int(np.flatnonzero(~at)[-1]) - 1 if (~at).any() else len(at)


async def call_the_flow(engine, channel, tmp_path) -> np.ndarray:
    async with baresip_agent(channel, tmp_path, user="2001") as caller:
        set_caller_audio(caller, silence(60))
        await dial(caller, channel, "100")
        interaction = await wait_for_interaction(engine, InteractionState.IVR)
        row = await cdr_row(engine, interaction.id)  # the flow's hang-up node ends the call
        assert row["disposition"] == "ANSWERED"
        await wait_until(lambda: interaction.id not in channel.calls.calls, timeout=10)
    return frame_tones(heard(caller))


async def test_a_play_node_with_text_is_spoken_to_a_sip_caller(voice_engine, tmp_path):
    write_prompt(tmp_path, "after-tone", tone(NEXT_HZ, 0.5))
    async with voice_engine(CONFIG, sip=PHONES) as (engine, channel):
        tones = await call_the_flow(engine, channel, tmp_path)
        cached = list((tmp_path / "cache" / "tts").glob("tts-*.wav"))
    assert len(cached) == 1
    run = trailing_run(tones, NEXT_HZ)
    assert run >= 15  # the next prompt came last
    speech = tones[: len(tones) - run]
    assert len(speech) >= 50  # a second and more of sound before the next prompt
    assert len(set(speech.tolist())) >= 8  # a voice moves across the spectrum; a tone would not


async def test_without_espeak_the_text_is_skipped_with_a_log_line_and_the_flow_goes_on(voice_engine, tmp_path, caplog):
    write_prompt(tmp_path, "after-tone", tone(NEXT_HZ, 0.5))
    async with voice_engine(CONFIG, sip=PHONES) as (engine, channel):
        channel._tts = TextToSpeech(tmp_path / "cache" / "tts", executable="espeak-ng-not-installed")
        with caplog.at_level(logging.WARNING, logger="centralita.sip"):
            tones = await call_the_flow(engine, channel, tmp_path)
    assert trailing_run(tones, NEXT_HZ) >= 15
    assert len(tones) - count_frames_at(tones, NEXT_HZ) <= 3  # no speech: only the next prompt
    (line,) = [r.getMessage() for r in caplog.records if "text is not spoken" in r.getMessage()]
    assert "apt-get install -y espeak-ng" in line
