"""Strategies, offers, ring timeouts, wrap-up, pause, capacity: the agent side of routing."""

from __future__ import annotations

from collections import Counter

import pytest

from engine.routing import (
    AgentComplete, AgentPauseChanged, AgentRingNoAnswer, CancelOffer, Connect, NoSuchOffer, Offer,
    QueueCallerAbandon,
)

AGENTS = [{"id": name} for name in ("a1", "a2", "a3")]


def offered_to(events):
    return [e.agent for e in events if isinstance(e, Offer)]


def cycle(r, iid, agent, now, talk=10):
    """Answer ``iid`` by ``agent`` at ``now`` and hang up after ``talk`` seconds."""
    r.accept(iid, agent, now=now)
    return r.end(iid, now=now + talk)


def test_longest_idle_picks_the_agent_free_the_longest(rt):
    r = rt.make([{"name": "q", "strategy": "longest-idle", "members": ["a1", "a2", "a3"], "wrapup": 0}], AGENTS)
    # a1 and a3 take calls, so a2 has been idle the longest
    assert offered_to(r.enqueue("c1", "q", now=1)) == ["a1"]
    cycle(r, "c1", "a1", 1)
    assert offered_to(r.enqueue("c2", "q", now=20)) == ["a2"]
    cycle(r, "c2", "a2", 20)
    assert offered_to(r.enqueue("c3", "q", now=40)) == ["a3"]
    cycle(r, "c3", "a3", 40)
    assert offered_to(r.enqueue("c4", "q", now=60)) == ["a1"]


def test_round_robin_remembers_where_it_stopped(rt):
    r = rt.make([{"name": "q", "strategy": "round-robin", "members": ["a1", "a2", "a3"], "wrapup": 0}], AGENTS)
    picks = []
    for i in range(6):
        agent = offered_to(r.enqueue(f"c{i}", "q", now=i * 100))[0]
        picks.append(agent)
        cycle(r, f"c{i}", agent, i * 100, talk=1)
    assert picks == ["a1", "a2", "a3", "a1", "a2", "a3"]


def test_linear_always_starts_at_the_first_member(rt):
    r = rt.make([{"name": "q", "strategy": "linear", "members": ["a3", "a1", "a2"], "wrapup": 0}], AGENTS)
    for i in range(3):
        assert offered_to(r.enqueue(f"c{i}", "q", now=i * 100)) == ["a3"]
        cycle(r, f"c{i}", "a3", i * 100, talk=1)
    r.enqueue("busy", "q", now=500)
    r.accept("busy", "a3", now=500)
    assert offered_to(r.enqueue("next", "q", now=501)) == ["a1"]


def test_fewest_calls_and_least_talk_time_balance_work(rt):
    r = rt.make([{"name": "q", "strategy": "fewest-calls", "members": ["a1", "a2"], "wrapup": 0}], AGENTS[:2])
    cycle(r, *("c0", offered_to(r.enqueue("c0", "q", now=0))[0]), 0, talk=5)
    second = offered_to(r.enqueue("c1", "q", now=10))[0]
    assert second == "a2"  # a1 already took one call

    r = rt.make([{"name": "q", "strategy": "least-talk-time", "members": ["a1", "a2"], "wrapup": 0}], AGENTS[:2])
    r.enqueue("long", "q", now=0)
    r.enqueue("short", "q", now=0)
    r.accept("long", "a1", now=0)
    r.accept("short", "a2", now=0)
    r.end("short", now=5)
    r.end("long", now=500)
    # both have one call; a1 talked 500 s, a2 5 s
    assert offered_to(r.enqueue("c", "q", now=600)) == ["a2"]


def test_random_strategies_spread_offers_and_respect_weights(rt):
    agents = [{"id": "heavy", "weight": 9}, {"id": "light", "weight": 1}]
    r = rt.make([{"name": "q", "strategy": "weighted-random", "members": ["heavy", "light"], "wrapup": 0}],
                agents, seed=7)
    counts: Counter[str] = Counter()
    for i in range(400):
        agent = offered_to(r.enqueue(f"c{i}", "q", now=i))[0]
        counts[agent] += 1
        cycle(r, f"c{i}", agent, i, talk=0)
    assert counts["heavy"] > 3 * counts["light"] > 0

    r = rt.make([{"name": "q", "strategy": "random", "members": ["a1", "a2", "a3"], "wrapup": 0}], AGENTS, seed=3)
    counts = Counter()
    for i in range(300):
        agent = offered_to(r.enqueue(f"c{i}", "q", now=i))[0]
        counts[agent] += 1
        cycle(r, f"c{i}", agent, i, talk=0)
    assert set(counts) == {"a1", "a2", "a3"} and min(counts.values()) > 50


def test_skills_strategy_prefers_the_best_match_and_explains_the_rest(rt):
    agents = [{"id": "novice", "skills": {"es": 40}}, {"id": "expert", "skills": {"es": 95}},
              {"id": "french", "skills": {"fr": 90}}, {"id": "resting", "skills": {"es": 99}}]
    r = rt.make([{"name": "q", "strategy": "skills", "members": ["novice", "expert", "french", "resting"],
                  "target": "es >= 30"}], agents)
    r.pause("resting", "lunch", now=0)
    offer = rt.of(r.enqueue("c", "q", now=1), Offer)[0]
    assert offer.agent == "expert"
    why = offer.explanation
    assert why.chosen == ("expert",) and "95" in why.why
    assert why.not_chosen["novice"].startswith("ranked #2")
    assert why.not_chosen["french"] == "skills: es=0 fails es >= 30"
    assert why.not_chosen["resting"] == "paused (lunch)"


def test_ring_all_rings_everyone_and_the_first_answer_wins(rt):
    r = rt.make([{"name": "q", "strategy": "ring-all", "members": ["a1", "a2", "a3"]}], AGENTS)
    events = r.enqueue("c", "q", now=0)
    assert sorted(offered_to(events)) == ["a1", "a2", "a3"]
    events = r.accept("c", "a2", now=3)
    assert sorted(e.agent for e in rt.of(events, CancelOffer)) == ["a1", "a3"]
    assert rt.of(events, Connect)[0].agent == "a2"
    with pytest.raises(NoSuchOffer):
        r.accept("c", "a1", now=3)


def test_no_answer_moves_on_to_the_next_agent_and_auto_pauses(rt):
    r = rt.make([{"name": "q", "strategy": "linear", "members": ["a1", "a2"], "timeout": 15,
                  "autopause_after": 2}], AGENTS[:2])
    assert offered_to(r.enqueue("c1", "q", now=0)) == ["a1"]
    events = r.run_until(15)
    assert rt.of(events, AgentRingNoAnswer)[0].agent == "a1"
    assert offered_to(events) == ["a2"]
    r.reject("c1", "a2", now=16, cause="busy")
    # both missed: after a short retry pause the caller is offered again, a1 first
    events = r.run_until(40)
    assert offered_to(events)[0] == "a1"
    events = r.run_until(80)
    pauses = rt.of(r.log, AgentPauseChanged)
    assert any(p.agent == "a1" and p.paused and "missed" in p.reason for p in pauses)
    assert r.agent_status("a1")["state"] == "paused"


def test_wrapup_per_queue_and_per_agent(rt):
    agents = [{"id": "quick", "wrapup": 2}, {"id": "slow"}]
    r = rt.make([{"name": "q", "strategy": "linear", "members": ["quick", "slow"], "wrapup": 30}], agents)
    r.enqueue("c1", "q", now=0)
    r.enqueue("c2", "q", now=0)
    r.accept("c1", "quick", now=1)
    r.accept("c2", "slow", now=1)
    complete = rt.of(r.end("c1", now=10), AgentComplete)[0]
    assert complete.wrapup_until == 12
    assert rt.of(r.end("c2", now=10), AgentComplete)[0].wrapup_until == 40
    r.enqueue("c3", "q", now=11)  # nobody free yet: both in wrap-up
    assert r.queue_status("q", now=11)["callers"][0]["state"] == "waiting"
    assert offered_to(r.run_until(12)) == ["quick"]
    # ending wrap-up early makes the agent available at once
    r.enqueue("c4", "q", now=13)
    assert offered_to(r.wrapup_done("slow", now=14)) == ["slow"]


def test_pause_logout_and_unpause(rt):
    r = rt.make([{"name": "q", "members": ["a1"]}], AGENTS[:1])
    r.pause("a1", "training", now=0)
    assert offered_to(r.enqueue("c1", "q", now=1)) == []
    assert r.explain("c1", now=1)["a1"] == "paused (training)"
    assert offered_to(r.unpause("a1", now=2)) == ["a1"]
    # logging out while ringing withdraws the offer; the caller keeps waiting
    events = r.logout("a1", now=3)
    assert rt.of(events, CancelOffer)[0].reason == "logged-out"
    assert r.queue_status("q", now=3)["callers"][0]["state"] == "waiting"
    assert offered_to(r.login("a1", now=4)) == ["a1"]


def test_agents_without_auto_login_start_logged_out(rt):
    r = rt.make([{"name": "q", "members": ["a1"]}], [{"id": "a1", "auto_login": False}])
    assert offered_to(r.enqueue("c", "q", now=0)) == []
    assert offered_to(r.login("a1", now=1)) == ["a1"]


def test_unreachable_endpoint_gets_no_voice_offers_but_still_chats(rt):
    r = rt.make([{"name": "q", "members": ["a1"]}], [{"id": "a1", "channels": {"voice": 1, "chat": 1}}])
    r.set_reachable("a1", False, now=0)
    assert offered_to(r.enqueue("v", "q", now=1)) == []
    assert offered_to(r.enqueue("m", "q", now=1, kind="chat")) == ["a1"]
    assert offered_to(r.set_reachable("a1", True, now=2)) == ["a1"]


def test_multichannel_capacity_and_voice_blocking(rt):
    agents = [{"id": "a1", "channels": {"voice": 1, "chat": 3}, "voice_blocks_others": True}]
    r = rt.make([{"name": "q", "members": ["a1"], "reservation_timeout": 30}], agents)
    for i in range(4):
        r.enqueue(f"chat{i}", "q", now=i, kind="chat")
    assert [e.interaction for e in rt.of(r.log, Offer)] == ["chat0", "chat1", "chat2"]
    for i in range(3):
        r.accept(f"chat{i}", "a1", now=5)
    assert r.agent_status("a1")["load"]["chat"] == 3
    r.end("chat0", now=6)
    r.wrapup_done("a1", now=7)
    assert rt.of(r.log, Offer)[-1].interaction == "chat3"
    r.accept("chat3", "a1", now=8)
    # a voice call on top of chats is allowed; while it lasts no new chat is offered
    assert offered_to(r.enqueue("call", "q", now=9)) == ["a1"]
    r.accept("call", "a1", now=9)
    r.end("chat1", now=10)
    r.wrapup_done("a1", now=10)
    assert offered_to(r.enqueue("chat4", "q", now=11, kind="chat")) == []
    assert r.explain("chat4", now=11)["a1"] == "on a voice call that blocks other channels"
    r.end("call", now=12)
    assert offered_to(r.wrapup_done("a1", now=13)) == ["a1"]


def test_messaging_reservation_times_out_and_goes_to_the_next_agent(rt):
    agents = [{"id": "a1", "channels": {"email": 2}}, {"id": "a2", "channels": {"email": 2}}]
    r = rt.make([{"name": "q", "strategy": "linear", "members": ["a1", "a2"], "reservation_timeout": 120,
                  "timeout": 5}], agents)
    offer = rt.of(r.enqueue("mail", "q", now=0, kind="email"), Offer)[0]
    assert offer.agent == "a1" and offer.expires == 120  # the messaging timeout, not the ring timeout
    events = r.run_until(120)
    assert offered_to(events) == ["a2"]


def test_abandon_while_ringing_releases_the_agent(rt):
    r = rt.make([{"name": "q", "members": ["a1"]}], AGENTS[:1])
    r.enqueue("c1", "q", now=0)
    r.enqueue("c2", "q", now=1)
    events = r.end("c1", now=5)
    assert rt.of(events, QueueCallerAbandon)[0].hold_time == 5
    assert rt.of(events, CancelOffer)[0].reason == "caller-gone"
    assert offered_to(events) == ["a1"]  # the next caller rings at once
    assert r.agent_status("a1")["offers"] == ["c2"]


def test_late_answers_and_double_ends_are_harmless(rt):
    r = rt.make([{"name": "q", "members": ["a1"]}], AGENTS[:1])
    r.enqueue("c", "q", now=0)
    r.end("c", now=1)
    with pytest.raises(NoSuchOffer):
        r.accept("c", "a1", now=2)
    assert r.end("c", now=3) == []


def test_decision_hook_can_override_the_strategy(rt):
    def chooser(interaction, queue, candidates):
        assert candidates[0] == "a1"
        return "a3"

    r = rt.make([{"name": "q", "strategy": "linear", "members": ["a1", "a2", "a3"]}], AGENTS, chooser=chooser)
    offer = rt.of(r.enqueue("c", "q", now=0), Offer)[0]
    assert offer.agent == "a3" and "decision hook" in offer.explanation.why


def test_an_agent_who_missed_a_caller_gets_it_again_after_a_pause(rt):
    r = rt.make([{"name": "q", "members": ["a1"], "timeout": 10, "retry": 5, "autopause_after": 1}],
                [{"id": "a1"}])
    r.enqueue("c", "q", now=0)
    r.run_until(10)  # missed: auto-paused
    assert r.agent_status("a1")["state"] == "paused"
    r.run_until(100)
    assert offered_to(r.unpause("a1", now=100)) == ["a1"]


def test_a_missed_caller_waits_out_the_retry_before_ringing_the_same_agent(rt):
    r = rt.make([{"name": "q", "members": ["a1"], "timeout": 10, "retry": 7}], [{"id": "a1"}])
    r.enqueue("c", "q", now=0)
    assert offered_to(r.run_until(16)) == []
    assert "already offered" in r.explain("c", now=16)["a1"]
    assert offered_to(r.run_until(17)) == ["a1"]
