"""Found by the end-to-end routing test: a caller offered to an agent (at once on joining, or later)
whose offer rang out went back to waiting and was never announced to again (no announcement was
scheduled for a caller offered on joining, and one that fell due during ringing was dropped)."""

from __future__ import annotations

from engine.routing import Announce


def _announce_times(r, until: float) -> list[tuple[float, str, int]]:
    said = []
    while (t := r.router.next_timer()) is not None and t <= until:
        said += [(t, e.interaction, e.position) for e in r.handle_timer(t) if isinstance(e, Announce)]
    return said


def test_a_caller_offered_on_joining_hears_announcements_once_the_ring_fails(rt):
    r = rt.make([{"name": "q", "members": ["a1"], "announce_frequency": 10, "timeout": 15, "retry": 100}],
                [{"id": "a1"}])
    assert not rt.of(r.enqueue("c1", "q", now=0), Announce)   # rings a1 at once: nothing said over it
    assert _announce_times(r, 60) == [(20, "c1", 1), (30, "c1", 1), (40, "c1", 1), (50, "c1", 1), (60, "c1", 1)]


def test_an_announcement_due_while_ringing_is_skipped_not_lost(rt):
    r = rt.make([{"name": "q", "members": ["a1"], "announce_frequency": 10, "timeout": 15, "retry": 100}],
                [{"id": "a1", "auto_login": False}])
    assert [e.position for e in rt.of(r.enqueue("c1", "q", now=0), Announce)] == [1]
    r.login("a1", now=5)                     # rings 5..20: the one due at 10 is skipped, 20 is said
    assert _announce_times(r, 45) == [(20, "c1", 1), (30, "c1", 1), (40, "c1", 1)]


def test_announcements_stop_once_the_caller_is_connected(rt):
    r = rt.make([{"name": "q", "members": ["a1"], "announce_frequency": 10, "timeout": 15}], [{"id": "a1"}])
    r.enqueue("c1", "q", now=0)
    r.run_until(12)
    r.accept("c1", "a1", now=12)
    assert _announce_times(r, 200) == []
    assert r.router.next_timer() is None or r.router.next_timer() > 200
