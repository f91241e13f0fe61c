"""Music on hold on a real SIP call: a baresip caller goes through a flow into a queue with nobody free;
it hears the queue's ``music_on_hold`` (a 350 Hz prompt, looped), paused for the periodic position
announcement (1800 Hz) and going on after it; when the agent's baresip phone (saying 1300 Hz) registers
and answers, the music stops and the caller hears the agent."""

from __future__ import annotations

import numpy as np
import pytest
from baresip_agent import baresip_agent
from voice_helpers import (
    PHONES,
    count_frames_at,
    dial,
    frame_tones,
    hang_up_and_wait_for_cdr,
    heard,
    set_caller_audio,
    silence,
    tone,
    wait_for_interaction,
    write_prompt,
)

from engine import InteractionState
from engine.testing import wait_until

pytestmark = pytest.mark.interop

MOH_HZ, ANNOUNCE_HZ, AGENT_HZ = 350.0, 1800.0, 1300.0

CONFIG = """
[[agents]]
id = "alice"
endpoint = "sip:1001"

[[queues]]
name = "support"
members = ["alice"]
wrapup = 0
announce_frequency = 2
music_on_hold = "hold-tune"

[[flows]]
name = "main"
start = "support"

[flows.nodes.support]
type = "queue"
queue = "support"

[[routes]]
match = "100"
flow = "main"
"""


async def test_a_queued_caller_hears_music_paused_for_announcements_until_an_agent_answers(voice_engine, tmp_path):
    write_prompt(tmp_path, "hold-tune", tone(MOH_HZ, 1.0))
    write_prompt(tmp_path, "queue-you-are-next", tone(ANNOUNCE_HZ, 0.4))
    async with voice_engine(CONFIG, sip=PHONES) as (engine, channel), \
            baresip_agent(channel, tmp_path, user="2001") as caller:
        # The caller says nothing: everything loud it hears comes from the engine or the agent.
        set_caller_audio(caller, silence(60))
        await dial(caller, channel, "100")
        interaction = await wait_for_interaction(engine, InteractionState.QUEUED)
        # the call is answered (anchored on the engine's media) just after it enters its state
        await wait_until(lambda: channel.calls.calls[interaction.id].anchor is not None, timeout=10)
        anchor = channel.calls.calls[interaction.id].anchor.endpoint
        # Long enough for the music, an announcement and the music again (5 s of packets sent).
        await wait_until(lambda: anchor.packets_out >= 250, timeout=30)
        assert engine.acd.statistics()["music_on_hold"] == 1
        async with baresip_agent(channel, tmp_path, user="1001", frequency=AGENT_HZ):
            await wait_until(lambda: interaction.state is InteractionState.ACTIVE, timeout=30)
            assert engine.acd.statistics()["music_on_hold"] == 0
            agent_leg = channel.calls.calls[interaction.id].connected_agent.media_leg.endpoint
            received = agent_leg.packets_in
            await wait_until(lambda: agent_leg.packets_in >= received + 100, timeout=20)
            await hang_up_and_wait_for_cdr(caller, engine, interaction.id)

    tones = frame_tones(heard(caller))
    moh = np.abs(tones - MOH_HZ) <= 50
    announcement = np.abs(tones - ANNOUNCE_HZ) <= 50
    agent = np.abs(tones - AGENT_HZ) <= 50
    assert moh.sum() >= 100 and announcement.sum() >= 10 and agent.sum() >= 50
    first_announcement = int(np.argmax(announcement))
    assert count_frames_at(tones[first_announcement:], MOH_HZ) >= 25  # the music went on after it
    first_agent = int(np.argmax(agent))
    assert count_frames_at(tones[:first_agent], MOH_HZ) >= 100
    assert count_frames_at(tones[first_agent:], MOH_HZ) <= 3  # stopped once the agent answered
    assert count_frames_at(tones[first_agent:], ANNOUNCE_HZ) <= 3


DEFAULTS = """
[[agents]]
id = "alice"
endpoint = "sip:1001"

[[queues]]
name = "sales"
members = ["alice"]

[[queues]]
name = "billing"
members = ["alice"]
music_on_hold = "moh/billing.wav"

[[queues]]
name = "broken"
members = ["alice"]
music_on_hold = "moh/missing.wav"

[[flows]]
name = "sales"
start = "q"

[flows.nodes.q]
type = "queue"
queue = "sales"

[[flows]]
name = "billing"
start = "q"

[flows.nodes.q]
type = "queue"
queue = "billing"

[[flows]]
name = "broken"
start = "q"

[flows.nodes.q]
type = "queue"
queue = "broken"

[[routes]]
match = "200"
flow = "sales"

[[routes]]
match = "300"
flow = "billing"

[[routes]]
match = "400"
flow = "broken"
"""

DEFAULT_HZ, FILE_HZ = 250.0, 650.0


@pytest.mark.parametrize(("number", "expected"), [("200", DEFAULT_HZ), ("300", FILE_HZ), ("400", None)])
async def test_the_library_default_a_file_path_and_a_missing_file(voice_engine, tmp_path, caplog, number, expected):
    """No ``music_on_hold``: the library's ``music-on-hold`` prompt; a path: that file (relative to the
    data directory); a missing file: one error in the log and the caller waits in silence, still queued."""
    write_prompt(tmp_path, "music-on-hold", tone(DEFAULT_HZ, 0.8))
    (tmp_path / "moh").mkdir()
    from baresip_agent import write_wav

    write_wav(tmp_path / "moh" / "billing.wav", tone(FILE_HZ, 0.8))
    async with voice_engine(DEFAULTS, sip=PHONES) as (engine, channel), \
            baresip_agent(channel, tmp_path, user="2001") as caller:
        set_caller_audio(caller, silence(60))
        await dial(caller, channel, number)
        interaction = await wait_for_interaction(engine, InteractionState.QUEUED)
        # the call is answered (anchored on the engine's media) just after it enters its state
        await wait_until(lambda: channel.calls.calls[interaction.id].anchor is not None, timeout=10)
        anchor = channel.calls.calls[interaction.id].anchor.endpoint
        answered_at = anchor.packets_in
        await wait_until(lambda: anchor.packets_in >= answered_at + 100, timeout=30)  # 2 s in the queue
        assert interaction.state is InteractionState.QUEUED
        await hang_up_and_wait_for_cdr(caller, engine, interaction.id)
    if expected is None:
        assert any("music on hold" in r.getMessage() and "missing.wav" in r.getMessage() for r in caplog.records)
        if caller.recordings("dec"):
            assert len(frame_tones(heard(caller))) == 0  # nothing loud reached the phone
        return
    tones = frame_tones(heard(caller))
    assert count_frames_at(tones, expected) >= 50 and count_frames_at(tones, expected) >= len(tones) - 3
