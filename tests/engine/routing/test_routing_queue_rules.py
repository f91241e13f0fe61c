"""The caller side: join rules, priorities, relaxation, overflow, estimated wait, announcements."""

from __future__ import annotations

import datetime as dt

from engine.routing import Announce, JoinRefused, Offer, Overflow, QueueCallerJoin, QueueCallerLeave


def offered_to(events):
    return [(e.interaction, e.agent) for e in events if isinstance(e, Offer)]


def test_join_rules_full_empty_and_closed(rt):
    r = rt.make([
        {"name": "small", "members": ["a1"], "max_length": 2},
        {"name": "strict", "members": ["a1"], "join_empty": False, "overflow": {"voicemail": "strict-box"}},
        {"name": "office", "members": ["a1"], "hours": {"tz": "Europe/Madrid", "mon-fri": "09:00-18:00"}},
    ], [{"id": "a1", "auto_login": False}])
    r.enqueue("c1", "small", now=0)
    r.enqueue("c2", "small", now=0)
    assert rt.of(r.enqueue("c3", "small", now=0), JoinRefused)[0].reason == "full"
    refused = rt.of(r.enqueue("c4", "strict", now=0), JoinRefused)[0]
    assert (refused.reason, refused.destination) == ("no-agents", ("voicemail", "strict-box"))
    saturday = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.timezone.utc).timestamp()
    tuesday = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc).timestamp()
    assert rt.of(r.enqueue("c5", "office", now=saturday), JoinRefused)[0].reason == "closed"
    assert rt.of(r.enqueue("c6", "office", now=tuesday), QueueCallerJoin)
    assert rt.of(r.enqueue("c7", "nowhere", now=0), JoinRefused)[0].reason == "unknown-queue"


def test_priority_first_then_age(rt):
    r = rt.make([{"name": "q", "members": ["a1"], "wrapup": 0}], [{"id": "a1", "auto_login": False}])
    r.enqueue("old", "q", now=0)
    r.enqueue("vip", "q", now=5, priority=10)
    r.enqueue("new", "q", now=6)
    assert [c["interaction"] for c in r.queue_status("q", now=7)["callers"]] == ["vip", "old", "new"]
    served = []
    r.login("a1", now=10)
    for t in range(3):
        offer = rt.of(r.log, Offer)[-1]
        served.append(offer.interaction)
        r.accept(offer.interaction, "a1", now=20 + t)
        r.end(offer.interaction, now=30 + t)
    assert served == ["vip", "old", "new"]


def test_an_agent_in_several_queues_gets_the_longest_waiting_highest_priority_caller(rt):
    r = rt.make([
        {"name": "sales", "members": ["a1"], "wrapup": 0},
        {"name": "support", "members": ["a1"], "wrapup": 0, "priority": 5},
    ], [{"id": "a1", "auto_login": False}])
    r.enqueue("sales-old", "sales", now=0)
    r.enqueue("support-new", "support", now=50)   # the support queue's priority outranks age
    r.enqueue("sales-newer", "sales", now=60)
    r.enqueue("support-newer", "support", now=70)
    r.login("a1", now=100)
    order = []
    for t in range(4):
        offer = rt.of(r.log, Offer)[-1]
        order.append(offer.interaction)
        r.accept(offer.interaction, "a1", now=100 + t)
        r.end(offer.interaction, now=100 + t)
    assert order == ["support-new", "support-newer", "sales-old", "sales-newer"]


def test_an_agent_logging_in_takes_the_oldest_caller_across_its_queues(rt):
    r = rt.make([
        {"name": "a", "members": ["shared"]},
        {"name": "b", "members": ["shared", "b-only"]},
    ], [{"id": "shared", "auto_login": False}, {"id": "b-only", "auto_login": False}])
    r.enqueue("a-old", "a", now=0)
    r.login("b-only", now=1)
    r.enqueue("b-busy", "b", now=2)  # b-only takes it
    r.accept("b-busy", "b-only", now=2)
    r.enqueue("b-new", "b", now=3)
    events = r.login("shared", now=4)
    assert offered_to(events) == [("a-old", "shared")]


def test_skill_relaxation_lowers_thresholds_then_adds_an_overflow_team(rt):
    agents = [{"id": "junior", "skills": {"es": 40}}, {"id": "team-b", "skills": {}}]
    r = rt.make([{"name": "es", "strategy": "skills", "members": ["junior"], "target": "es >= 70",
                  "relax": [{"after": 30, "lower_by": 40}, {"after": 60, "add_members": ["team-b"],
                                                              "target": "es >= 0"}]}], agents)
    r.enqueue("c", "es", now=0)
    explained = r.explain("c", now=1)
    assert explained["junior"] == "skills: es=40 fails es >= 70"
    assert explained["team-b"] == "overflow pool not added yet"
    events = r.run_until(30)
    assert offered_to(events) == [("c", "junior")]
    r.reject("c", "junior", now=31)
    r.pause("junior", "coaching", now=31)
    events = r.run_until(61)
    assert offered_to(events) == [("c", "team-b")]


def test_max_wait_overflows_to_another_queue_keeping_age(rt):
    r = rt.make([
        {"name": "first", "members": [], "max_wait": 60, "overflow": {"queue": "backup"}},
        {"name": "backup", "members": ["a1"]},
    ], [{"id": "a1", "auto_login": False}])
    r.enqueue("older", "backup", now=10)
    r.enqueue("c", "first", now=0)
    events = r.run_until(60)
    assert rt.of(events, Overflow)[0].destination == ("queue", "backup")
    assert rt.of(events, QueueCallerLeave)[0].reason == "overflow"
    # arrived at 0, so it is ahead of the backup queue's caller who arrived at 10
    assert [c["interaction"] for c in r.queue_status("backup", now=61)["callers"]] == ["c", "older"]


def test_max_wait_to_voicemail_leaves_routing(rt):
    r = rt.make([{"name": "q", "members": [], "max_wait": 30, "overflow": {"voicemail": "general"}}], [])
    r.enqueue("c", "q", now=0)
    events = r.run_until(30)
    assert rt.of(events, Overflow)[0].destination == ("voicemail", "general")
    assert r.interaction_ids() == []


def test_leave_when_the_last_agent_logs_out(rt):
    r = rt.make([{"name": "q", "members": ["a1"], "leave_when_empty": True, "overflow": {"flow": "closed"}}],
                [{"id": "a1"}])
    r.pause("a1", "", now=0)
    r.enqueue("c", "q", now=1)
    events = r.logout("a1", now=2)
    assert rt.of(events, Overflow)[0].destination == ("flow", "closed")


def test_estimated_wait_is_a_range_that_grows_with_position_and_shrinks_with_agents(rt):
    agents = [{"id": f"a{i}", "auto_login": True} for i in range(4)]
    r = rt.make([{"name": "q", "members": [a["id"] for a in agents], "wrapup": 0}], agents)
    # teach the queue its handle time: 100 s calls
    for i in range(4):
        r.enqueue(f"warm{i}", "q", now=0)
        r.accept(f"warm{i}", f"a{i}", now=0)
    for i in range(4):
        r.end(f"warm{i}", now=100)
    for i in range(4):
        r.enqueue(f"busy{i}", "q", now=200)
        r.accept(f"busy{i}", f"a{i}", now=200)
    for i in range(8):
        r.enqueue(f"w{i}", "q", now=201 + i)
    pos1, low1, high1 = r.estimate_wait("w0", now=210)
    pos8, low8, high8 = r.estimate_wait("w7", now=210)
    assert (pos1, pos8) == (1, 8)
    assert low1 < 25 < high1          # 1 departure among 4 busy agents: ~100/4 s
    assert low8 < 200 < high8         # 8 departures: ~200 s
    assert high8 - low8 > high1 - low1
    r.pause("a0", "", now=210)
    r.pause("a1", "", now=210)
    _, low_fewer, high_fewer = r.estimate_wait("w7", now=210)
    assert low_fewer > low8 and high_fewer > high8
    for i in range(4):
        r.pause(f"a{i}", "", now=210)
    assert r.estimate_wait("w7", now=210) == (8, None, None)


def test_periodic_position_announcements(rt):
    r = rt.make([{"name": "q", "members": ["a1"], "announce_frequency": 30}], [{"id": "a1", "auto_login": False}])
    first = rt.of(r.enqueue("c1", "q", now=0), Announce)
    assert first and first[0].position == 1
    r.enqueue("c2", "q", now=10)
    events = r.run_until(70)
    positions = [(e.interaction, e.position) for e in rt.of(events, Announce)]
    assert positions == [("c1", 1), ("c2", 2), ("c1", 1), ("c2", 2)]
    r.end("c1", now=71)
    events = r.run_until(100)
    assert [(e.interaction, e.position) for e in rt.of(events, Announce)] == [("c2", 1)]


def test_transfer_between_queues_keeps_the_original_arrival(rt):
    r = rt.make([{"name": "a", "members": []}, {"name": "b", "members": []}], [])
    r.enqueue("b1", "b", now=5)
    r.enqueue("moved", "a", now=0)
    r.transfer("moved", "b", now=10)
    assert [c["interaction"] for c in r.queue_status("b", now=11)["callers"]] == ["moved", "b1"]


def test_queue_status_for_the_api(rt):
    import pytest

    from engine.routing import RoutingError

    r = rt.make([{"name": "q", "members": ["a1"]}], [{"id": "a1"}])
    r.enqueue("c1", "q", now=0)
    r.accept("c1", "a1", now=1)
    r.enqueue("c2", "q", now=2)
    status = r.queue_status("q", now=3, estimates=True)
    assert status["members"] == {"a1": "busy"}
    assert status["callers"][0]["interaction"] == "c2" and status["callers"][0]["estimate"][1] > 0
    assert (status["joined"], status["answered"]) == (2, 1)
    with pytest.raises(RoutingError):
        r.queue_status("nowhere", now=3)
