"""The event bus never stalls the core; the interaction state table refuses what it forbids."""

from __future__ import annotations

import json

import pytest
import trio

from engine import Direction, Event, EventBus, Interaction, InteractionKind, InteractionState, InvalidTransition
from engine._dialplan import PatternError, matches, specificity


async def test_slow_subscriber_loses_events_but_fast_one_gets_all() -> None:
    bus = EventBus()
    got: list[str] = []
    async with bus.subscribe("slow", buffer=5) as slow, bus.subscribe("fast", buffer=1000) as fast:
        for n in range(100):
            bus.publish("QueueCallerJoin", Position=n)
        async with trio.open_nursery():
            while len(got) < 100:
                got.append(str((await fast.receive()).fields["Position"]))
        first_five = [slow.receive_nowait().fields["Position"] for _ in range(5)]
        with pytest.raises(trio.WouldBlock):
            slow.receive_nowait()
    assert got == [str(n) for n in range(100)]
    assert first_five == [0, 1, 2, 3, 4]
    stats = bus.statistics()
    assert stats.published == 100 and stats.dropped == 95


def test_listener_failure_does_not_stop_other_listeners() -> None:
    bus = EventBus()
    seen: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.add_listener(broken)
    bus.add_listener(lambda e: seen.append(e.event))
    bus.publish("Hangup", interaction="x", Cause="normal")
    assert seen == ["Hangup"]


def test_event_json_has_timestamp_interaction_and_escapes_hostile_text() -> None:
    event = Event("Newchannel", {"CallerIDName": '<script>"\x00'}, interaction="abc", timestamp=0.0)
    wire = json.dumps(event.to_json())
    assert '"timestamp": "1970-01-01T00:00:00.000Z"' in wire
    assert '"interaction": "abc"' in wire
    assert "\\u0000" in wire and json.loads(wire)["CallerIDName"] == '<script>"\x00'
    with pytest.raises(ValueError):
        Event("x", {"event": "spoof"})


def test_interaction_state_table() -> None:
    i = Interaction(InteractionKind.VOICE, Direction.INBOUND, "+34911", "100", "sip")
    for state in (InteractionState.QUEUED, InteractionState.OFFERED, InteractionState.QUEUED, InteractionState.OFFERED,
                  InteractionState.ACTIVE, InteractionState.WRAPUP, InteractionState.ENDED):
        i.transition(state, now=1.0)
    assert i.answered == 1.0 and i.ended == 1.0
    with pytest.raises(InvalidTransition):
        i.transition(InteractionState.ACTIVE)
    fresh = Interaction(InteractionKind.SMS, Direction.INBOUND, "a", "b", "sms")
    with pytest.raises(InvalidTransition):
        fresh.transition(InteractionState.WRAPUP)
    assert fresh.to_json()["kind"] == "sms" and fresh.to_json()["from"] == "a"


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("100", "100", True),
        ("100", "1000", False),
        ("_1XX", "123", True),
        ("_1XX", "12", False),
        ("_NXX", "199", False),
        ("_NXX", "299", True),
        ("_Z.", "10", True),
        ("_Z.", "1", False),
        ("_[1-3]5", "25", True),
        ("_[1-3]5", "45", False),
        ("_9!", "9", True),
        ("line1", "LINE1", True),
        ("support@example.com", "support@example.com", True),
    ],
)
def test_dialplan_patterns(pattern: str, value: str, expected: bool) -> None:
    assert matches(pattern, value) is expected


def test_dialplan_specificity_and_errors() -> None:
    assert sorted(["_X.", "_1XX", "123"], key=specificity) == ["123", "_1XX", "_X."]
    with pytest.raises(PatternError):
        matches("_[1-", "1")
