"""Ringing before an answer (sans-IO, time as an argument): offers, cadence, callers who give up."""

from __future__ import annotations

import pytest

from engine import InvalidTransition
from hardware.voice_modem._callerid import CallerId
from hardware.voice_modem._ringing import Gone, Offer, RingState, RingTracker


def test_offer_after_the_second_ring_carries_the_caller_id_and_cadence() -> None:
    tracker = RingTracker(answer_after=2, ring_gone=8.0)
    assert tracker.ring(100.0) is None
    for line in ("DATE = 1125", "TIME = 0930", "NMBR = 600111222", "NAME = ANA"):
        tracker.caller_id_line(line)
    offer = tracker.ring(106.0)
    assert offer == Offer(CallerId(number="600111222", name="ANA", when="11250930"), 2, 6.0)
    assert tracker.ring(112.0) is None  # one offer per call
    assert tracker.state is RingState.OFFERED
    assert tracker.answered().number == "600111222"
    assert tracker.state is RingState.IDLE and tracker.next_timer() is None


def test_a_caller_who_hangs_up_before_the_answer() -> None:
    tracker = RingTracker(answer_after=3, ring_gone=8.0)
    tracker.ring(0.0)
    tracker.caller_id_line("NMBR = P")
    tracker.ring(6.0)
    assert tracker.next_timer() == 14.0
    assert tracker.handle_timer(13.9) is None
    assert tracker.handle_timer(14.0) == Gone(CallerId(number_absent="private"), 2)
    assert tracker.state is RingState.IDLE
    assert tracker.ring(50.0) is None and tracker.rings == 1  # the next call starts afresh


def test_transitions_outside_the_table_are_refused() -> None:
    tracker = RingTracker()
    tracker.state = RingState.IDLE
    with pytest.raises(InvalidTransition):
        tracker._go("gone")
