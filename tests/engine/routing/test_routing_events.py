"""Router events map onto the bus names of CONTRACT.md and serialise to JSON with AMI field names."""

from __future__ import annotations

import json

import pytest

from engine.routing import (
    AgentComplete, AgentPauseChanged, AgentRingNoAnswer, AgentStatusChanged, Connect, Offer, QueueCallerAbandon,
    QueueCallerJoin, QueueCallerLeave, RoutingError,
)

CONTRACT_NAMES = {"QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled", "AgentRingNoAnswer",
                  "AgentConnect", "AgentComplete", "QueueMemberStatus", "QueueMemberPause"}


def test_a_call_through_the_queue_produces_every_contract_event(rt):
    r = rt.make([{"name": "q", "strategy": "linear", "members": ["a1", "a2"], "timeout": 10, "wrapup": 0}],
                [{"id": "a1"}, {"id": "a2"}])
    r.enqueue("c1", "q", now=0)
    r.run_until(10)                       # a1 does not answer
    r.accept("c1", "a2", now=12)
    r.end("c1", now=40)
    r.enqueue("c2", "q", now=50)
    r.end("c2", now=52)                   # hangs up while ringing
    r.pause("a2", "lunch", now=60)
    names = {e.ami for e in r.log if e.ami}
    assert CONTRACT_NAMES <= names
    for event in r.log:
        json.dumps(event.to_fields())     # every event serialises
    join = rt.of(r.log, QueueCallerJoin)[0].to_fields()
    assert join["interaction"] == "c1" and join["Queue"] == "q" and join["Position"] == 1
    connect = rt.of(r.log, Connect)[0].to_fields()
    assert (connect["Agent"], connect["HoldTime"]) == ("a2", 12)
    offer = rt.of(r.log, Offer)[0].to_fields()
    assert list(offer["explanation"]["chosen"]) == ["a1"]
    assert rt.of(r.log, AgentRingNoAnswer)[0].to_fields()["RingTime"] == 10
    assert rt.of(r.log, AgentComplete)[0].to_fields()["TalkTime"] == 28
    assert rt.of(r.log, QueueCallerAbandon)[0].to_fields()["HoldTime"] == 2
    assert rt.of(r.log, QueueCallerLeave)[0].to_fields()["Reason"] == "answered"
    assert rt.of(r.log, AgentPauseChanged)[0].to_fields() == {"Agent": "a2", "Paused": True, "Reason": "lunch"}
    statuses = [(e.agent, e.status) for e in rt.of(r.log, AgentStatusChanged)]
    assert ("a1", "ringing") in statuses and ("a2", "busy") in statuses and ("a2", "paused") in statuses


def test_local_misuse_raises_routing_error(rt):
    r = rt.make([{"name": "q", "members": ["a1"]}], [{"id": "a1"}])
    with pytest.raises(RoutingError):
        r.enqueue("c", "q", now=0, kind="fax")
    with pytest.raises(RoutingError):
        r.enqueue("c", "q", now=0, priority="high")
    r.enqueue("c", "q", now=0)
    with pytest.raises(RoutingError):
        r.enqueue("c", "q", now=1)
    with pytest.raises(RoutingError):
        r.login("nobody", now=1)
    r.logout("a1", now=2)
    with pytest.raises(RoutingError):
        r.pause("a1", "x", now=3)
