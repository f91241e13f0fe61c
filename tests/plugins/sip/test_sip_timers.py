"""The shell's timer heap: order, cancellation, and memory that follows the live timers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from plugins.sip._timers import Scheduler


@given(st.lists(st.tuples(st.floats(0, 100), st.booleans()), max_size=200))
def test_due_timers_run_in_time_order_and_cancelled_ones_never(entries: list[tuple[float, bool]]) -> None:
    scheduler = Scheduler()
    ran: list[float] = []
    handles = []
    for when, cancel in entries:
        handles.append((scheduler.call_at(when, lambda now, w=when: ran.append(w)), cancel, when))
    for handle, cancel, _ in handles:
        if cancel:
            handle.cancel()
    scheduler.handle_timer(50.0)
    expected_first = sorted(w for _, c, w in handles if not c and w <= 50.0)
    assert ran == expected_first
    scheduler.handle_timer(100.0)
    assert ran == sorted(w for _, c, w in handles if not c)
    assert scheduler.next_timer() is None


def test_cancelled_long_timers_do_not_pile_up() -> None:
    scheduler = Scheduler()
    for n in range(10000):
        scheduler.call_at(1000.0 + n, lambda now: None).cancel()
    assert len(scheduler._heap) < 2100
    assert len(scheduler) == 0
