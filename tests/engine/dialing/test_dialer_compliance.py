"""Compliance policies and the audit log, on explicit clocks."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from engine.dialing import (AbandonTally, AttemptLimiter, AuditLog, CallingWindow, CompliancePolicy, DncEntry,
                            DoNotCallList, RecontactLockout, UkOfcomPolicy, UsFccPolicy, recompute_abandonment)


def utc(*args) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


NEW_YORK = "+12125550142"
CHICAGO = "+13125550142"
LONDON = "+442079460958"
TOLL_FREE = "+18005550199"


def test_us_rate_counts_only_people_and_uk_adds_people_hung_up_on_as_machines():
    tally = AbandonTally(live_answers=1000, abandoned=25, machine_answers=400, machine_misclassified=0.02)
    assert UsFccPolicy().rate(tally) == pytest.approx(0.025)
    assert UkOfcomPolicy().rate(tally) == pytest.approx((25 + 8) / (1000 + 8))
    assert UsFccPolicy().rate(AbandonTally()) == 0.0


def test_calling_window_follows_the_called_partys_clock():
    window = CallingWindow("09:00", "21:00")
    wednesday_1330_utc = utc(2026, 11, 25, 13, 30)  # 08:30 in New York, 07:30 in Chicago, 13:30 London
    assert "08:30 in America/New_York" in window.refusal(NEW_YORK, wednesday_1330_utc)
    assert window.refusal(LONDON, wednesday_1330_utc) is None
    assert window.refusal(NEW_YORK, utc(2026, 11, 25, 14, 0)) is None  # 09:00 sharp
    assert window.refusal(CHICAGO, utc(2026, 11, 25, 14, 0)) is not None  # 08:00 there
    assert window.refusal(NEW_YORK, utc(2026, 11, 26, 2, 0)) is not None  # 21:00 in New York: closed


def test_a_number_spanning_zones_must_be_inside_the_window_everywhere():
    window = CallingWindow("09:00", "21:00")
    # 17:00 in New York is fine there, but toll-free +1 800 may ring in Guam, where it is 08:00 tomorrow
    reason = window.refusal(TOLL_FREE, utc(2026, 11, 25, 22, 0))
    assert reason is not None and "08:00 in Pacific/Guam" in reason
    assert CallingWindow("00:00", "24:00", days=("mon", "tue", "wed", "thu", "fri", "sat", "sun")).refusal(
        TOLL_FREE, utc(2026, 11, 25, 22, 0)) is None


def test_holidays_and_days_are_in_local_dates():
    window = CallingWindow("09:00", "21:00", days=("mon", "tue", "wed", "thu", "fri"), holidays=frozenset({"2026-12-25"}))
    assert "holiday 2026-12-25" in window.refusal(NEW_YORK, utc(2026, 12, 25, 16, 0))
    assert "sat is not a calling day" in window.refusal(NEW_YORK, utc(2026, 11, 28, 16, 0))
    # Friday 23:30 UTC is still Friday 18:30 in New York: allowed
    assert window.refusal(NEW_YORK, utc(2026, 11, 27, 23, 30)) is None


def test_next_open_finds_the_morning():
    window = CallingWindow("09:00", "21:00")
    at = window.next_open(NEW_YORK, utc(2026, 11, 25, 3, 0))
    assert at == utc(2026, 11, 25, 14, 0)


def test_unknown_zone_is_refused_unless_a_fallback_is_set():
    assert "no time zone" in CallingWindow().refusal("+8821234567", utc(2026, 11, 25, 15, 0))
    assert CallingWindow(fallback_zone="UTC").refusal("+8821234567", utc(2026, 11, 25, 15, 0)) is None


def test_do_not_call_exact_prefix_and_opt_out_from_any_channel():
    dnc = DoNotCallList([DncEntry("+1900*", "imported:national", 0.0)])
    assert dnc.match("+19005550100").source == "imported:national"
    assert dnc.match(NEW_YORK) is None
    dnc.opt_out(NEW_YORK, "sms", 10.0, note="STOP")
    assert dnc.match(NEW_YORK).source == "opt-out:sms"
    policy = CompliancePolicy(dnc=dnc, window=None)
    assert policy.refusal(NEW_YORK, 20.0) == "do-not-call (opt-out:sms)"


def test_attempts_per_day_and_lockout_after_abandon():
    limiter = AttemptLimiter(2)
    limiter.record(NEW_YORK, 0.0)
    limiter.record(NEW_YORK, 100.0)
    assert "already 2 attempts" in limiter.refusal(NEW_YORK, 200.0)
    assert limiter.refusal(NEW_YORK, 86400.0 + 1) is None
    lockout = RecontactLockout(72 * 3600.0)
    lockout.abandoned(NEW_YORK, 0.0)
    assert "re-contact lockout" in lockout.refusal(NEW_YORK, 71 * 3600.0)
    assert lockout.refusal(NEW_YORK, 72 * 3600.0) is None


def test_audit_log_chains_and_an_auditor_recomputes_the_rate():
    log = AuditLog()
    t = 1_000_000.0
    for i in range(40):
        log.append(t + i, "spring", "dial", call=f"c{i}", number=NEW_YORK)
        log.append(t + i, "spring", "answer-live", call=f"c{i}", number=NEW_YORK)
        if i == 7:
            log.append(t + i + 2, "spring", "abandon", call=f"c{i}", number=NEW_YORK, message=True)
    log.append(t, "other", "abandon")
    log.append(t - 31 * 86400, "spring", "abandon")  # outside the 30-day window
    records = log.drain()
    assert len(records) == len(log.records) and log.drain() == []
    assert AuditLog.verify(records) is None
    rate, tally = recompute_abandonment(sorted(records, key=lambda r: r.seq), "spring", UsFccPolicy(), now=t + 100)
    assert (tally.live_answers, tally.abandoned) == (40, 1)
    assert rate == pytest.approx(1 / 40)
    tampered = list(records)
    tampered[16] = dataclasses.replace(tampered[16], kind="connect")  # hide the abandon
    assert AuditLog.verify(tampered) == tampered[16].seq
    assert AuditLog.verify(records[:10] + records[11:]) == records[11].seq


def test_built_in_policies_register_under_their_names():
    from engine._registry import CompliancePolicyRegistry
    from engine.dialing import register_compliance_policies

    registry = CompliancePolicyRegistry()
    register_compliance_policies(registry)
    assert isinstance(registry["us-fcc"], UsFccPolicy) and isinstance(registry["uk-ofcom"], UkOfcomPolicy)
    assert registry["us-fcc"].window == 30 * 86400 and registry["uk-ofcom"].window == 86400
