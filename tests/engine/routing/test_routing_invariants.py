"""Random sequences of everything that can happen to the router; invariants hold after every step,
and when everyone hangs up and time passes, no agent is left reserved."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine.routing import (
    AgentComplete, CallbackRequest, Connect, DialCallback, NoSuchOffer, QueueCallerAbandon, Router, build_agents,
    build_queues,
)

RAW = {
    "queues": [
        {"name": "all", "strategy": "ring-all", "members": ["a", "b", "c"], "timeout": 10, "wrapup": 3,
         "max_wait": 200, "overflow": {"queue": "skill"}},
        {"name": "skill", "strategy": "skills", "members": ["b", "c", "d"], "target": "es >= 60",
         "relax": [{"after": 20, "lower_by": 30}, {"after": 40, "add_members": ["a"]}], "timeout": 8,
         "reservation_timeout": 15, "autopause_after": 3, "callback_attempts": 2, "callback_retry_delay": 30},
        {"name": "idle", "strategy": "longest-idle", "members": ["a", "d"], "max_length": 6, "wrapup": 0,
         "announce_frequency": 25},
    ],
    "agents": [
        {"id": "a", "skills": {"es": 10}, "channels": {"voice": 1, "chat": 2}},
        {"id": "b", "skills": {"es": 70}, "channels": {"voice": 1, "email": 1}, "voice_blocks_others": True},
        {"id": "c", "skills": {"es": 40}, "wrapup": 1},
        {"id": "d", "skills": {"es": 90}, "channels": {"chat": 3, "email": 2}},
    ],
}
AGENT_IDS = ["a", "b", "c", "d"]
# a reload that changes strategies, members, targets and timers (capacities stay: live work keeps its slots)
RESHUFFLED = {
    "queues": [
        {**RAW["queues"][0], "strategy": "round-robin", "members": ["c", "d", "a"], "timeout": 4},
        {**RAW["queues"][1], "strategy": "fewest-calls", "target": "es >= 20", "relax": []},
        {**RAW["queues"][2], "strategy": "random", "members": ["b", "c"], "wrapup": 2},
    ],
    "agents": RAW["agents"],
}


class RouterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.router = Router(build_queues(RAW), build_agents(RAW), now=0.0, seed=1)
        self.now = 0.0
        self.counter = 0
        self.ended: dict[str, str] = {}   # interaction -> how it ended (abandon / complete)
        self.connected: set[str] = set()
        self.dials: list[DialCallback] = []
        self.requests: set[str] = set()

    def feed(self, events: list) -> None:
        for event in events:
            if isinstance(event, Connect):
                assert event.interaction not in self.connected, "connected twice"
                self.connected.add(event.interaction)
            elif isinstance(event, QueueCallerAbandon):
                assert event.interaction not in self.ended, "ended twice"
                assert event.interaction not in self.connected, "an answered call counted as abandoned"
                self.ended[event.interaction] = "abandon"
            elif isinstance(event, AgentComplete):
                assert event.interaction not in self.ended, "ended twice"
                assert event.interaction in self.connected, "completed without being answered"
                self.ended[event.interaction] = "complete"
            elif isinstance(event, DialCallback):
                self.dials.append(event)
        self.router.check_invariants()

    def offers(self) -> list[tuple[str, str]]:
        return [(iid, agent) for agent in AGENT_IDS for iid in self.router.agent_status(agent)["offers"]]

    @rule(queue=st.sampled_from(["all", "skill", "idle"]), kind=st.sampled_from(["voice", "voice", "chat", "email"]),
          priority=st.integers(0, 2), callback=st.booleans())
    def arrive(self, queue, kind, priority, callback):
        self.counter += 1
        request = CallbackRequest(f"r{self.counter}", "+1") if callback and kind == "voice" else None
        self.feed(self.router.enqueue(f"i{self.counter}", queue, now=self.now, kind=kind, priority=priority,
                                      callback=request))

    @rule(data=st.data())
    def accept(self, data):
        offers = self.offers()
        if offers:
            iid, agent = data.draw(st.sampled_from(offers))
            self.feed(self.router.accept(iid, agent, now=self.now))

    @rule(data=st.data(), cause=st.sampled_from(["rejected", "busy"]))
    def reject(self, data, cause):
        offers = self.offers()
        if offers:
            iid, agent = data.draw(st.sampled_from(offers))
            self.feed(self.router.reject(iid, agent, now=self.now, cause=cause))

    @rule(data=st.data(), reason=st.sampled_from(["caller", "agent", "cancel"]))
    def hang_up(self, data, reason):
        ids = self.router.interaction_ids()
        if ids:
            self.feed(self.router.end(data.draw(st.sampled_from(ids)), now=self.now, reason=reason))

    @rule(data=st.data())
    def ask_callback(self, data):
        waiting = [c["interaction"] for q in ("all", "skill", "idle")
                   for c in self.router.queue_status(q, now=self.now)["callers"]
                   if c["state"] in ("waiting", "offered") and c["callback"] is None]
        if waiting:
            iid = data.draw(st.sampled_from(waiting))
            self.counter += 1
            self.feed(self.router.request_callback(iid, CallbackRequest(f"r{self.counter}", "+2"), now=self.now))

    @rule(data=st.data(), answered=st.booleans())
    def callback_outcome(self, data, answered):
        if self.dials:
            dial = data.draw(st.sampled_from(self.dials))
            self.feed(self.router.callback_result(dial.request_id, answered, now=self.now))

    @rule(agent=st.sampled_from(AGENT_IDS), action=st.sampled_from(["login", "logout", "pause", "unpause", "wrapup"]))
    def agent_action(self, agent, action):
        if action == "pause":
            if self.router.agent_status(agent)["state"] == "logged_out":
                return
            events = self.router.pause(agent, "break", now=self.now)
        elif action == "wrapup":
            events = self.router.wrapup_done(agent, now=self.now)
        else:
            events = getattr(self.router, action)(agent, now=self.now)
        self.feed(events)

    @rule(agent=st.sampled_from(AGENT_IDS), reachable=st.booleans())
    def endpoint(self, agent, reachable):
        self.feed(self.router.set_reachable(agent, reachable, now=self.now))

    @rule(data=st.data())
    def cancel_callback(self, data):
        if self.dials:
            self.feed(self.router.cancel_callback(data.draw(st.sampled_from(self.dials)).request_id, now=self.now))

    @rule(dt=st.floats(0.5, 60))
    def time_passes(self, dt):
        self.now += dt
        while (t := self.router.next_timer()) is not None and t <= self.now:
            self.feed(self.router.handle_timer(t))

    @rule(data=st.data(), destination=st.sampled_from(["all", "skill", "idle"]))
    def transfer(self, data, destination):
        waiting = [c["interaction"] for q in ("all", "skill", "idle")
                   for c in self.router.queue_status(q, now=self.now)["callers"] if c["state"] in ("waiting", "offered")]
        if waiting:
            self.feed(self.router.transfer(data.draw(st.sampled_from(waiting)), destination, now=self.now))

    @rule(variant=st.sampled_from(["original", "reshuffled"]))
    def reload(self, variant):
        raw = RAW if variant == "original" else RESHUFFLED
        self.feed(self.router.configure(build_queues(raw), build_agents(raw), now=self.now))

    @precondition(lambda self: self.counter > 0)
    @rule()
    def restart(self):
        data = self.router.snapshot()
        fresh = Router(build_queues(RAW), build_agents(RAW), now=self.now, seed=2)
        events = fresh.restore(data, now=self.now, keep_live_voice=True)
        self.router = fresh
        self.dials = []
        self.feed(events)

    @invariant()
    def positions_are_dense(self):
        for queue in ("all", "skill", "idle"):
            callers = self.router.queue_status(queue, now=self.now)["callers"]
            assert [c["position"] for c in callers] == list(range(1, len(callers) + 1))

    def teardown(self):
        # everyone hangs up, time passes: nothing may stay reserved
        for agent in AGENT_IDS:
            if self.router.agent_status(agent)["state"] == "logged_out":
                self.feed(self.router.login(agent, now=self.now))
        for _ in range(3):
            for iid in self.router.interaction_ids():
                self.feed(self.router.end(iid, now=self.now, reason="cancel"))
            self.now += 1000
            while (t := self.router.next_timer()) is not None and t <= self.now:
                self.feed(self.router.handle_timer(t))
        assert self.router.interaction_ids() == []
        for agent in AGENT_IDS:
            status = self.router.agent_status(agent)
            assert not status["offers"] and not status["active"] and not status["wrapup"]
            assert all(v == 0 for v in status["load"].values()), status


RouterMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
TestRouterInvariants = RouterMachine.TestCase


def test_no_such_offer_is_the_only_complaint_about_stale_accepts():
    router = Router(build_queues(RAW), build_agents(RAW), now=0.0)
    router.enqueue("x", "idle", now=0)
    router.end("x", now=1)
    try:
        router.accept("x", "a", now=2)
    except NoSuchOffer:
        pass
    else:
        raise AssertionError("a stale accept must raise NoSuchOffer")
