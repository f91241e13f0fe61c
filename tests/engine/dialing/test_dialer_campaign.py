"""A campaign end to end on the sans-IO runner: commands, outcomes, audit and the abandonment figure agree."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.dialing import (AuditLog, CampaignDialer, ConnectAgent, Hangup, Hopper, Outcome, PacingChanged,
                            PlaceCall, PlayMessage, Remind, ShowPreview, UsFccPolicy, outcome_from_sip,
                            outcome_from_sit, recompute_abandonment, validate_campaigns)

T0 = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC).timestamp()  # 10:00 in New York, a Wednesday
NUMBERS = [f"+1212555{n:04d}" for n in range(101, 111)]


def campaign(**overrides):
    raw = {"name": "spring", "mode": "progressive", "agents": ["alice", "bob"], "caller_id": "+12125550000",
           "script": "Hi {name}", "abandon_message": "abandon.wav", "machine_message": "promo.wav",
           "schedule": {"start": "09:00", "end": "21:00"}}
    raw.update(overrides)
    campaigns, problems = validate_campaigns([raw], agents={"alice", "bob"}, policies={"us-fcc", "uk-ofcom"})
    assert problems == []
    return campaigns[0]


def loaded(settings, leads=5, **kwargs):
    runner = CampaignDialer(settings, now=T0, **kwargs)
    for i in range(leads):
        runner.hopper.add_lead(f"lead{i}", [NUMBERS[i]], {"name": f"N{i}"})
    return runner


def of(kind, commands):
    return [c for c in commands if isinstance(c, kind)]


def test_config_problems_name_the_key():
    _, problems = validate_campaigns([
        {"name": "a", "mode": "turbo", "agents": ["zed"], "ring_timeout": 10, "retry": {"busyy": {"delay": 5}}},
        {"name": "b", "queues": ["q"], "schedule": {"start": "9am"}},
        {"name": "d", "queues": ["q"], "target_abandon_rate": 0.05},
        {"name": "b", "agents": ["alice"], "compliance": "mars"},
    ], agents={"alice"}, queues={"q"}, policies={"us-fcc"})
    text = {p.path: p.message for p in problems}
    assert "one of 'preview' | 'progressive' | 'predictive'" in text["campaigns[0].mode"]
    assert "unknown outcome(s) 'busyy'" in text["campaigns[0].retry"]
    assert "expected HH:MM" in text["campaigns[1].schedule.start"]
    assert "expected at most max_abandon_rate (0.03)" in text["campaigns[2].target_abandon_rate"]
    assert "defined twice" in text["campaigns[3].name"]
    assert "expected one of us-fcc" in text["campaigns[3].compliance"]
    _, problems = validate_campaigns([{"name": "c", "agents": ["zed"], "ring_timeout": 10}], agents={"alice"})
    text = {p.path: p.message for p in problems}
    assert "no such agent 'zed'" in text["campaigns[0].agents[0]"]
    assert "expected at least 15" in text["campaigns[0].ring_timeout"]


def test_sip_and_sit_outcomes():
    assert outcome_from_sip(486) is Outcome.BUSY
    assert outcome_from_sip(404) is outcome_from_sip(484) is Outcome.INVALID
    assert outcome_from_sip(503) is Outcome.CONGESTION
    assert outcome_from_sip(480) is Outcome.NO_ANSWER
    assert outcome_from_sit("vacant-code") is Outcome.INVALID
    assert outcome_from_sit("reorder") is Outcome.CONGESTION


def test_a_progressive_day_answer_busy_machine_no_answer_callback():
    runner = loaded(campaign())
    runner.agent_ready("alice", T0)
    runner.agent_ready("bob", T0)
    journal, audit = runner.drain_records()
    placed = of(PlaceCall, runner.poll(T0))
    assert [p.number for p in placed] == NUMBERS[:2]
    assert all(p.caller_id == "+12125550000" for p in placed)
    journal, audit = runner.drain_records()
    assert [r["op"] for r in journal].count("attempt") == 2  # journaled before the calls are placed
    first, second = placed

    runner.answered(first.call, T0 + 8)
    (connect,) = of(ConnectAgent, runner.poll(T0 + 8))
    assert (connect.agent, connect.fields["name"], connect.script) == ("alice", "N0", "Hi {name}")

    runner.failed(second.call, T0 + 3, outcome_from_sip(486))
    (third,) = of(PlaceCall, runner.poll(T0 + 3.5))
    runner.answered(third.call, T0 + 10, machine=True)
    commands = runner.poll(T0 + 10)
    assert Hangup(third.call, "machine") in commands
    (fourth,) = of(PlaceCall, commands)  # the freed line is used at once
    assert Hangup(fourth.call, "no-answer") not in runner.poll(T0 + 10 + 24.9)
    commands = runner.poll(T0 + 10 + 25)
    assert Hangup(fourth.call, "no-answer") in commands

    runner.ended(first.call, T0 + 200)
    assert runner.hopper.status("lead0") == "done:human"
    runner.disposition(first.call, "callback", T0 + 210, callback_at=T0 + 3600)
    assert runner.hopper.status("lead0") == "waiting"  # for its callback
    runner.agent_ready("alice", T0 + 215)
    reminders = of(Remind, runner.poll(T0 + 3600 - 200))
    assert [r.callback.lead for r in reminders] == ["lead0"]
    # at the time, the callback goes to alice (its owner) even though bob is ready too
    runner.agent_away("bob", T0 + 3599)
    calls = of(PlaceCall, runner.poll(T0 + 3600))
    assert any(c.lead == "lead0" and c.agent == "alice" for c in calls)

    kinds = [r.kind for r in runner.audit.records]
    for kind in ("dial", "answer-live", "connect", "busy", "answer-machine", "no-answer", "disposition"):
        assert kind in kinds
    assert AuditLog.verify(runner.audit.records) is None


def test_abandoned_person_hears_the_message_is_locked_out_and_the_rate_agrees_with_the_audit():
    runner = loaded(campaign(lines_per_agent=2.0, agents=["alice"]), leads=6)
    runner.agent_ready("alice", T0)
    first, second = of(PlaceCall, runner.poll(T0))
    runner.answered(first.call, T0 + 5)
    runner.answered(second.call, T0 + 6)
    runner.poll(T0 + 6)
    commands = runner.poll(T0 + 8)
    assert commands[:2] == [PlayMessage(second.call, "abandon.wav", "abandoned"), Hangup(second.call, "abandoned")]
    assert runner.abandon_rate(T0 + 8) == pytest.approx(0.5)
    rate, tally = recompute_abandonment(runner.audit.records, "spring", UsFccPolicy(), now=T0 + 9)
    assert rate == runner.abandon_rate(T0 + 9) and (tally.live_answers, tally.abandoned) == (2, 1)
    assert "re-contact lockout" in runner.compliance.refusal(second.number, T0 + 3600)
    runner.ended(first.call, T0 + 100)
    runner.disposition(first.call, "sale", T0 + 101)
    assert runner.hopper.status("lead0") == "sale"
    # above the cap even a 2-lines-per-agent campaign only places calls that cannot abandon
    runner.agent_ready("alice", T0 + 102)
    assert len(of(PlaceCall, runner.poll(T0 + 102))) == 1


def test_do_not_call_disposition_blocks_the_number_everywhere():
    runner = loaded(campaign(agents=["alice"]), leads=1)
    runner.agent_ready("alice", T0)
    (call,) = of(PlaceCall, runner.poll(T0))
    runner.answered(call.call, T0 + 5)
    runner.poll(T0 + 5)
    runner.ended(call.call, T0 + 60)
    runner.disposition(call.call, "do-not-call", T0 + 61)
    assert runner.compliance.dnc.match(call.number).source == "opt-out:voice"
    runner.hopper.add_lead("again", [call.number])
    runner.agent_ready("alice", T0 + 62)
    placed = [p.number for p in of(PlaceCall, runner.poll(T0 + 62))]
    assert call.number not in placed
    assert runner.hopper.status("again") == "refused:do-not-call (opt-out:voice)"


def test_outside_the_window_nothing_is_dialed_and_the_refusal_is_audited():
    runner = loaded(campaign(), leads=1)
    runner.agent_ready("alice", T0 - 3 * 3600)  # 07:00 in New York
    assert of(PlaceCall, runner.poll(T0 - 3 * 3600)) == []
    assert [r.kind for r in runner.audit.records] == ["refused"]
    assert of(PlaceCall, runner.poll(T0 + 1))  # 10:00: due again and allowed


def test_preview_shows_the_lead_then_dials_on_start():
    runner = loaded(campaign(mode="preview"), leads=2)
    runner.agent_ready("alice", T0)
    (preview,) = of(ShowPreview, runner.poll(T0))
    assert (preview.agent, preview.number) == ("alice", NUMBERS[0])
    runner.preview_start("alice", T0 + 4)
    (placed,) = of(PlaceCall, runner.poll(T0 + 4))
    assert (placed.number, placed.agent) == (NUMBERS[0], "alice")


def test_predictive_on_lines_without_answer_supervision_says_it_downgraded():
    runner = loaded(campaign(mode="predictive"), answer_supervision=False)
    runner.agent_ready("alice", T0)
    commands = runner.poll(T0)
    assert of(PacingChanged, commands)[0].new == "progressive"
    assert len(of(PlaceCall, commands)) == 1
    assert any(r.kind == "mode-changed" for r in runner.audit.records)


def test_restart_mid_call_does_not_redial():
    runner = loaded(campaign(agents=["alice"]), leads=2)
    runner.agent_ready("alice", T0)
    (call,) = of(PlaceCall, runner.poll(T0))
    journal, _ = runner.drain_records()
    hopper, interrupted = Hopper.restore(journal, now=T0 + 30, retry=runner.settings.retry_rule)
    assert len(interrupted) == 1
    again = CampaignDialer(runner.settings, now=T0 + 30, hopper=hopper)
    again.agent_ready("alice", T0 + 30)
    (placed,) = of(PlaceCall, again.poll(T0 + 30))
    assert placed.number != call.number and placed.number == NUMBERS[1]
