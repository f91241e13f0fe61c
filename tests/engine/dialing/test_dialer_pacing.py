"""The sans-IO dialer core, driven by hand on an explicit clock."""

from __future__ import annotations

import pytest

from engine._errors import InvalidTransition
from engine.dialing import (Abandon, Connect, Dial, Dialer, ModeChanged, OfferPreview, PacingSettings,
                            StopRinging)


def dials(actions):
    return [a for a in actions if isinstance(a, Dial)]


def test_progressive_dials_one_line_per_ready_agent_and_connects_the_answer():
    dialer = Dialer(PacingSettings(mode="progressive"), now=0.0)
    dialer.agent_ready("alice", 0.0)
    dialer.agent_ready("bob", 0.0)
    first = dials(dialer.poll(0.0))
    assert len(first) == 2
    assert dials(dialer.poll(0.5)) == []  # both lines still ringing: no more
    dialer.call_answered(first[0].call, 6.0)
    connects = [a for a in dialer.poll(6.0) if isinstance(a, Connect)]
    assert connects == [Connect(first[0].call, "alice", 0.0)]
    assert dialer.statistics().connected == 1


def test_a_person_nobody_takes_within_two_seconds_is_abandoned_with_the_message():
    dialer = Dialer(PacingSettings(mode="progressive", lines_per_agent=2.0), now=0.0)
    dialer.agent_ready("alice", 0.0)
    calls = dials(dialer.poll(0.0))
    assert len(calls) == 2
    dialer.call_answered(calls[0].call, 5.0)
    dialer.call_answered(calls[1].call, 5.5)
    dialer.poll(5.5)
    assert dialer.next_timer() <= 7.5
    assert dialer.poll(7.4) == [] or not any(isinstance(a, Abandon) for a in dialer.poll(7.4))
    actions = dialer.poll(7.5)
    assert Abandon(calls[1].call, True) in actions
    stats = dialer.statistics()
    assert (stats.live_answers, stats.abandoned, stats.connected) == (2, 1, 1)
    assert stats.abandon_rate == pytest.approx(0.5)


def test_an_agent_freed_within_the_two_seconds_takes_the_waiting_person():
    dialer = Dialer(PacingSettings(mode="progressive", lines_per_agent=2.0), now=0.0)
    dialer.agent_ready("alice", 0.0)
    calls = dials(dialer.poll(0.0))
    dialer.call_answered(calls[0].call, 5.0)
    dialer.call_answered(calls[1].call, 5.0)
    dialer.poll(5.0)
    dialer.agent_ready("bob", 6.5)
    connects = [a for a in dialer.poll(6.5) if isinstance(a, Connect)]
    assert connects == [Connect(calls[1].call, "bob", 1.5)]
    assert dialer.statistics().abandoned == 0


def test_ringing_stops_at_the_ring_timeout_and_never_before():
    dialer = Dialer(PacingSettings(mode="progressive", ring_timeout=20.0), now=0.0)
    dialer.agent_ready("alice", 0.0)
    (call,) = dials(dialer.poll(0.0))
    assert not any(isinstance(a, StopRinging) for a in dialer.poll(19.9))
    actions = dialer.poll(20.0)
    assert StopRinging(call.call) in actions
    assert len(dials(actions)) == 1  # the line is reused at once
    assert dialer.statistics().no_answer == 1


def test_predictive_on_lines_without_answer_supervision_downgrades_and_says_so():
    dialer = Dialer(PacingSettings(mode="predictive", answer_supervision=False), now=0.0)
    dialer.agent_ready("alice", 0.0)
    actions = dialer.poll(0.0)
    assert ModeChanged("predictive", "progressive", "lines cannot report answer (no answer supervision)") in actions
    assert dialer.mode == "progressive"
    assert len(dials(actions)) == 1


def test_losing_answer_supervision_at_run_time_downgrades_too():
    dialer = Dialer(PacingSettings(mode="predictive"), now=0.0)
    dialer.set_answer_supervision(False)
    assert any(isinstance(a, ModeChanged) for a in dialer.poll(0.0))
    assert dialer.mode == "progressive"


def test_preview_offers_the_lead_and_dials_only_when_the_agent_starts():
    dialer = Dialer(PacingSettings(mode="preview"), now=0.0)
    dialer.agent_ready("alice", 0.0)
    assert dialer.poll(0.0) == [OfferPreview("alice")]
    assert dialer.poll(1.0) == []  # offered once
    dialer.preview_skip("alice", 2.0)
    assert dialer.poll(2.0) == [OfferPreview("alice")]
    call = dialer.preview_start("alice", 3.0)
    assert dialer.poll(3.0) == [Dial(call, "alice")]
    dialer.call_answered(call, 8.0)
    assert [a for a in dialer.poll(8.0) if isinstance(a, Connect)] == [Connect(call, "alice", 0.0)]


def test_inbound_risk_holds_the_dialer_back_and_releases_it_after():
    dialer = Dialer(PacingSettings(mode="predictive"), now=0.0)
    dialer.agent_ready("alice", 0.0)
    dialer.set_inbound_at_risk(True)
    assert dials(dialer.poll(0.0)) == []
    dialer.set_inbound_at_risk(False)
    assert len(dials(dialer.poll(0.1))) >= 1


def test_predictive_overdials_for_ready_agents_but_not_for_agents_just_connected():
    dialer = Dialer(PacingSettings(mode="predictive", expected_answer_rate=0.3), now=0.0)
    for i in range(20):
        dialer.agent_ready(f"a{i}", 0.0)
    launched = dials(dialer.poll(0.0))
    assert 20 < len(launched) <= 120  # more lines than ready agents at a 30% answer rate, within the cap
    for call in launched[:20]:
        dialer.call_answered(call.call, 5.0)
    dialer.poll(5.0)
    # Every agent has just started a call of ~3 minutes: a fresh dial now would very likely be answered
    # with nobody free, so the pacer waits rather than risk it.
    assert dials(dialer.poll(30.0)) == []
    dialer.agent_ready("a0", 40.0)
    assert len(dials(dialer.poll(40.0))) >= 1


def test_nonsense_transitions_are_local_errors():
    dialer = Dialer(PacingSettings(mode="progressive"), now=0.0)
    with pytest.raises(InvalidTransition):
        dialer.call_answered("nope", 1.0)
    dialer.agent_ready("alice", 0.0)
    (call,) = dials(dialer.poll(0.0))
    dialer.call_failed(call.call, 2.0)
    with pytest.raises(InvalidTransition):
        dialer.call_answered(call.call, 3.0)


def test_settings_refuse_inconsistent_rates():
    with pytest.raises(ValueError):
        PacingSettings(target_abandon_rate=0.04, max_abandon_rate=0.03)
    with pytest.raises(ValueError):
        PacingSettings(mode="turbo")  # type: ignore[arg-type]


def test_a_call_picked_up_just_before_the_ring_timeout_is_not_cut_off_while_detection_listens():
    dialer = Dialer(PacingSettings(mode="progressive", ring_timeout=20.0), now=0.0)
    dialer.agent_ready("alice", 0.0)
    dialer.agent_ready("bob", 0.0)
    late, other = (d.call for d in dials(dialer.poll(0.0)))
    dialer.call_picked_up(late)  # answered at 19 s; AMD needs a couple of seconds
    assert dialer.next_timer() <= 20.0  # the other call still has its ring timeout
    actions = dialer.poll(22.0)
    assert StopRinging(other) in actions and StopRinging(late) not in actions
    assert dialer.next_timer() > 22.0  # nothing overdue: the campaign loop does not spin
    dialer.call_answered(late, 22.0)  # detection: a person
    connects = [a for a in dialer.poll(22.0) if isinstance(a, Connect)]
    assert [c.call for c in connects] == [late]
