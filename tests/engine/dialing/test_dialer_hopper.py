"""The hopper: order, retries, callbacks, and never dialing anyone twice across a restart."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dialing import DEFAULT_RETRY, Hopper, InvalidDialString, Outcome, RetryRule

A, B, C = "+12125550101", "+12125550102", "+12125550103"


def test_order_is_due_time_then_priority_then_insertion():
    hopper = Hopper()
    hopper.add_lead("late", [A], due=100.0)
    hopper.add_lead("normal", [B])
    hopper.add_lead("vip", [C], priority=5)
    assert [hopper.take(0.0).lead, hopper.take(0.0).lead, hopper.take(0.0)] == ["vip", "normal", None]
    assert hopper.take(100.0).lead == "late"


def test_numbers_are_checked_dial_strings():
    hopper = Hopper()
    with pytest.raises(InvalidDialString):
        hopper.add_lead("x", ["2125550101;ATH"])


def test_retry_rules_reschedule_and_stop():
    rules = {Outcome.BUSY: RetryRule(600.0, 2)}
    hopper = Hopper(retry=lambda o: rules.get(o, DEFAULT_RETRY[o.value]))
    hopper.add_lead("l", [A])
    first = hopper.take(0.0)
    assert hopper.finish(first.attempt, Outcome.BUSY, 10.0) == 610.0
    assert hopper.take(600.0) is None
    second = hopper.take(610.0)
    assert hopper.finish(second.attempt, Outcome.BUSY, 620.0) is None  # the second busy was the last allowed
    assert hopper.status("l") == "done:busy"
    assert hopper.take(10**9) is None


def test_several_numbers_rotate_and_an_invalid_one_is_dropped():
    hopper = Hopper()
    hopper.add_lead("l", [A, B])
    first = hopper.take(0.0)
    assert first.number == A
    assert hopper.finish(first.attempt, Outcome.INVALID, 5.0) == 5.0
    second = hopper.take(5.0)
    assert second.number == B
    hopper.finish(second.attempt, Outcome.NO_ANSWER, 30.0)
    third = hopper.take(30.0 + 3600)
    assert third.number == B  # A is gone for good


def test_gate_vetoes_and_requeues_without_an_attempt():
    hopper = Hopper()
    hopper.add_lead("l", [A])
    assert hopper.take(0.0, lambda n, now: ("outside calling window", 5000.0)) is None
    assert [r["op"] for r in hopper.drain()] == ["lead"]  # no attempt was journaled
    assert hopper.take(4999.0) is None
    assert hopper.take(5000.0).number == A


def test_an_attempt_in_flight_at_a_crash_is_not_dialed_again_after_restart():
    hopper = Hopper()
    for i, number in enumerate([A, B, C]):
        hopper.add_lead(f"l{i}", [number])
    done = hopper.take(0.0)
    hopper.finish(done.attempt, Outcome.NO_ANSWER, 30.0)
    in_flight = hopper.take(40.0)  # journaled, then the process dies while it rings
    journal = json.loads(json.dumps(hopper.drain()))  # what the store kept
    restored, interrupted = Hopper.restore(journal, now=100.0)
    assert interrupted == [in_flight.attempt]
    assert restored.status(in_flight.lead) == "waiting"
    nxt = restored.take(100.0)
    assert nxt.lead not in (done.lead, in_flight.lead)  # the third lead, not a redial
    assert restored.take(100.0) is None
    assert [r["outcome"] for r in restored.drain() if r["op"] == "result"] == ["interrupted"]
    again = restored.take(100.0 + DEFAULT_RETRY["interrupted"].delay)
    assert again is not None and again.lead in (done.lead, in_flight.lead)


def test_callbacks_belong_to_their_agent_or_anyone_and_are_reminded_once():
    hopper = Hopper()
    hopper.add_lead("l1", [A])
    hopper.add_lead("l2", [B])
    for attempt in (hopper.take(0.0), hopper.take(0.0)):
        hopper.finish(attempt.attempt, Outcome.HUMAN, 60.0)
    mine = hopper.schedule_callback("l1", 1000.0, agent="alice")
    anyones = hopper.schedule_callback("l2", 1200.0)
    assert hopper.reminders(650.0) == []  # reminders come 5 minutes ahead
    assert hopper.reminders(700.0) == [mine]
    assert hopper.reminders(750.0) == []  # once
    assert hopper.take_callback(999.0, ready_agents=["alice"]) is None  # not yet
    assert hopper.take_callback(1300.0, ready_agents=["bob"]).callback == anyones.callback
    assert hopper.take_callback(1300.0, ready_agents=["bob"]) is None  # alice's waits for alice
    taken = hopper.take_callback(1300.0, ready_agents=["alice"])
    assert (taken.callback, taken.agent, taken.number) == (mine.callback, "alice", A)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["take", "busy", "no-answer", "human", "crash"]), max_size=40))
def test_no_lead_is_ever_in_flight_twice_whatever_happens(script):
    hopper = Hopper()
    for i in range(4):
        hopper.add_lead(f"l{i}", [f"+1212555{i:04d}"])
    journal: list = []
    in_flight: dict[str, str] = {}
    now = 0.0
    for step in script:
        now += 4000.0
        journal += hopper.drain()
        if step == "take":
            attempt = hopper.take(now)
            if attempt is not None:
                assert attempt.lead not in in_flight.values()
                in_flight[attempt.attempt] = attempt.lead
        elif step == "crash":
            journal += hopper.drain()
            hopper, interrupted = Hopper.restore(journal, now=now)
            assert sorted(interrupted) == sorted(in_flight)
            in_flight.clear()
        elif in_flight:
            attempt_id = next(iter(in_flight))
            hopper.finish(attempt_id, Outcome(step), now)
            del in_flight[attempt_id]
