"""The trio shell fires the router's timers on time (on trio's virtual clock here)."""

from __future__ import annotations

import trio

from engine.routing import AgentRingNoAnswer, Connect, Offer, Router, build_agents, build_queues
from engine.routing.service import RoutingService

RAW = {"queues": [{"name": "q", "strategy": "linear", "members": ["a1", "a2"], "timeout": 15, "wrapup": 30}],
       "agents": [{"id": "a1"}, {"id": "a2"}]}


async def test_ring_timeouts_and_wrapups_fire_without_anyone_calling(autojump_clock, nursery):
    published: list = []
    router = Router(build_queues(RAW), build_agents(RAW), now=trio.current_time())
    service = RoutingService(router, published.extend, clock=trio.current_time)
    await nursery.start(service.run)
    service.enqueue("c1", "q")
    assert [e.agent for e in published if isinstance(e, Offer)] == ["a1"]
    with trio.fail_after(60):
        while not any(isinstance(e, AgentRingNoAnswer) for e in published):
            await trio.sleep(1)
    assert [e.agent for e in published if isinstance(e, Offer)] == ["a1", "a2"]
    service.accept("c1", "a2")
    assert any(isinstance(e, Connect) for e in published)
    service.end("c1")
    service.enqueue("c2", "q")   # a1 is free again (its retry for c1 is over; c2 is new)
    service.reject("c2", "a1")   # a1 declines; a2 is in wrap-up for 30 s
    with trio.fail_after(120):
        while not any(isinstance(e, Offer) and e.interaction == "c2" and e.agent == "a2" for e in published):
            await trio.sleep(1)
    assert service.statistics()["timer_runs"] >= 2
    await service.aclose()
