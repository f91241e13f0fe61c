"""Callbacks that keep their place, snapshot/restore across a restart, and config reload."""

from __future__ import annotations

import json

from engine.routing import (
    CallbackFailed, CallbackRequest, Connect, DialCallback, Offer, QueueCallerAbandon, Router, build_agents,
    build_queues,
)

QUEUES = [{"name": "q", "strategy": "linear", "members": ["a1"], "wrapup": 0, "callback_attempts": 2,
           "callback_retry_delay": 120}]
AGENTS = [{"id": "a1", "auto_login": False}]


def serve_next(r, rt, now):
    """The agent answers whatever is offered last and the call ends at once; returns the interaction."""
    offer = rt.of(r.log, Offer)[-1]
    r.accept(offer.interaction, offer.agent, now=now)
    dial = [e for e in r.log if isinstance(e, DialCallback) and e.interaction == offer.interaction]
    if dial:
        r.callback_result(dial[-1].request_id, True, now=now)
    r.end(offer.interaction, now=now)
    return offer.interaction


def test_callback_keeps_its_place_and_reserves_the_agent_before_dialing(rt):
    r = rt.make(QUEUES, AGENTS)
    r.enqueue("first", "q", now=0)
    r.enqueue("cb", "q", now=1)
    r.enqueue("third", "q", now=2)
    assert r.request_callback("cb", CallbackRequest("req-1", "+34600111222"), now=3) == []
    assert r.end("cb", now=4) == []  # the caller hangs up after asking: not an abandon
    assert [c["interaction"] for c in r.queue_status("q", now=5)["callers"]] == ["first", "cb", "third"]
    r.login("a1", now=10)
    assert serve_next(r, rt, 11) == "first"
    offer = rt.of(r.log, Offer)[-1]
    assert (offer.interaction, offer.callback) == ("cb", "req-1")
    assert not rt.of(r.log, DialCallback)  # nothing is dialed before an agent is reserved
    events = r.accept("cb", "a1", now=12)
    dial = rt.of(events, DialCallback)
    assert [(d.number, d.agent, d.attempt_id) for d in dial] == [("+34600111222", "a1", "req-1#1")]
    assert rt.of(r.callback_result("req-1", True, now=20), Connect)[0].hold_time == 19
    r.end("cb", now=30)
    assert serve_next(r, rt, 31) == "third"
    assert not rt.of(r.log, QueueCallerAbandon)


def test_the_same_request_twice_is_one_callback(rt):
    r = rt.make(QUEUES, AGENTS)
    r.enqueue("cb", "q", now=0)
    r.request_callback("cb", CallbackRequest("req-1", "+1"), now=1)
    r.request_callback("cb", CallbackRequest("req-1", "+1"), now=2)
    # the IVR replays its request as a new interaction (after a restart): still one
    r.enqueue("cb-again", "q", now=3, callback=CallbackRequest("req-1", "+1"))
    r.login("a1", now=4)
    serve_next(r, rt, 5)
    r.run_until(1000)
    assert len(rt.of(r.log, DialCallback)) == 1
    r.enqueue("cb-late", "q", now=1001, callback=CallbackRequest("req-1", "+1"))
    assert r.interaction_ids() == []


def test_failed_attempts_retry_in_place_then_give_up(rt):
    r = rt.make(QUEUES, AGENTS)
    r.enqueue("cb", "q", now=0, callback=CallbackRequest("req", "+1"))
    r.enqueue("later", "q", now=1)
    r.login("a1", now=2)
    r.accept("cb", "a1", now=3)
    r.callback_result("req", False, now=30)
    # the agent is free again and takes the next caller while the callback waits for its retry
    assert rt.of(r.log, Offer)[-1].interaction == "later"
    serve_next(r, rt, 31)
    events = r.run_until(150)
    assert rt.of(events, Offer)[0].interaction == "cb"
    events = r.accept("cb", "a1", now=151)
    assert rt.of(events, DialCallback)[0].attempt == 2
    events = r.callback_result("req", False, now=160)
    failed = rt.of(events, CallbackFailed)
    assert failed and failed[0].reason == "attempts-exhausted" and failed[0].attempts == 2
    assert r.interaction_ids() == []


def test_calling_window_holds_the_callback_until_it_opens_and_drops_it_when_it_closes(rt):
    r = rt.make(QUEUES, [{"id": "a1"}])
    events = r.enqueue("cb", "q", now=0, callback=CallbackRequest("req", "+1", window=(100, 200)))
    assert not rt.of(events, Offer)
    assert rt.of(r.run_until(100), Offer)[0].interaction == "cb"
    r.reject("cb", "a1", now=101)
    r.pause("a1", "", now=101)
    events = r.run_until(200)
    assert rt.of(events, CallbackFailed)[0].reason == "window-closed"


def test_snapshot_survives_a_restart_with_callbacks_and_messages_in_order(rt):
    queues = [{"name": "q", "members": ["a1"], "wrapup": 0}]
    agents = [{"id": "a1", "channels": {"voice": 1, "email": 1}, "auto_login": False}]
    r = rt.make(queues, agents)
    r.enqueue("voice-live", "q", now=0)
    r.enqueue("cb", "q", now=1, callback=CallbackRequest("req", "+1"))
    r.enqueue("mail", "q", now=2, kind="email")
    r.enqueue("mail2", "q", now=3, kind="email")
    r.login("a1", now=4)
    r.accept("mail", "a1", now=5)  # an email in progress with the agent
    data = json.loads(json.dumps(r.snapshot()))  # JSON-able

    raw = {"queues": queues, "agents": agents}
    fresh = rt.CheckedRouter(Router(build_queues(raw), build_agents(raw), now=100))
    fresh.restore(data, now=100)
    status = fresh.queue_status("q", now=100)
    assert [c["interaction"] for c in status["callers"]] == ["cb", "mail2"]  # the live voice leg is gone
    assert fresh.agent_status("a1")["active"] == ["mail"]
    # the agent's state came back too (logged in), so the callback is offered again
    offers = rt.of(fresh.log, Offer)
    assert [o.interaction for o in offers] == ["cb"]
    fresh.accept("cb", "a1", now=101)
    assert [d.attempt_id for d in rt.of(fresh.log, DialCallback)] == ["req#1"]


def test_restore_of_an_in_flight_dial_reuses_the_attempt_id(rt):
    r = rt.make(QUEUES, [{"id": "a1"}])
    r.enqueue("cb", "q", now=0, callback=CallbackRequest("req", "+1"))
    r.accept("cb", "a1", now=1)
    data = r.snapshot()
    raw = {"queues": QUEUES, "agents": [{"id": "a1"}]}
    fresh = rt.CheckedRouter(Router(build_queues(raw), build_agents(raw), now=50))
    fresh.restore(data, now=50)
    fresh.accept("cb", "a1", now=51)
    ids = [d.attempt_id for d in rt.of(r.log + fresh.log, DialCallback)]
    assert ids == ["req#1", "req#1"]  # the dialer dedupes on it: one call at most


def test_config_reload_keeps_live_interactions(rt):
    r = rt.make([{"name": "q", "strategy": "linear", "members": ["a1"]}], [{"id": "a1"}])
    r.enqueue("talking", "q", now=0)
    r.accept("talking", "a1", now=1)
    r.enqueue("waiting", "q", now=2)
    raw = {"queues": [{"name": "q", "strategy": "longest-idle", "members": ["a1", "a2"], "wrapup": 0},
                      {"name": "new", "members": ["a2"]}],
           "agents": [{"id": "a1"}, {"id": "a2"}]}
    events = r.configure(build_queues(raw), build_agents(raw), now=3)
    assert [(e.interaction, e.agent) for e in rt.of(events, Offer)] == [("waiting", "a2")]
    assert r.agent_status("a1")["active"] == ["talking"]
    r.end("talking", now=4)
    assert r.agent_status("a1")["wrapup"] == []  # the new wrap-up of 0 s applies
    # removing a queue keeps serving who is already in it but takes nobody new
    raw2 = {"queues": [{"name": "new", "members": ["a2"]}], "agents": raw["agents"]}
    r.configure(build_queues(raw2), build_agents(raw2), now=5)
    assert r.queue_status("q", now=5)["callers"][0]["interaction"] == "waiting"
    assert r.enqueue("x", "q", now=6)[0].reason == "unknown-queue"


def test_a_damaged_snapshot_is_a_routing_error(rt):
    from engine.routing import RoutingError

    raw = {"queues": QUEUES, "agents": AGENTS}
    for damaged in ([], {"version": 2}, {"version": 1, "entries": [{"id": "x"}]},
                    {"version": 1, "agents": {"a1": {"idle_since": "soon"}}}):
        fresh = Router(build_queues(raw), build_agents(raw), now=0)
        try:
            fresh.restore(damaged, now=0)
        except RoutingError:
            continue
        raise AssertionError(f"{damaged!r} was accepted")
