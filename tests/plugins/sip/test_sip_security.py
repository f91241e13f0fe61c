"""The security guard on a virtual clock: bans, locks, rate limits, scanners, bounded memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.sip._security import SecurityGuard, SecurityPolicy, Verdict


def test_scanner_user_agent_is_dropped_and_banned() -> None:
    guard = SecurityGuard(SecurityPolicy(ban_time=60))
    verdict, events = guard.check_request("198.51.100.7", "friendly-scanner", now=0.0)
    assert verdict is Verdict.DROP
    assert [e.kind for e in events] == ["scanner", "banned"]
    # Even with an innocent User-Agent, the banned source stays dropped until the ban ends.
    assert guard.check_request("198.51.100.7", "Linphone/5.0", now=59.0)[0] is Verdict.DROP
    assert guard.next_timer() == 60.0
    assert [e.kind for e in guard.handle_timer(60.0)] == ["unbanned"]
    assert guard.check_request("198.51.100.7", "Linphone/5.0", now=60.0)[0] is Verdict.ACCEPT


def test_scanner_names_match_case_insensitively_inside_longer_values() -> None:
    guard = SecurityGuard()
    for n, agent in enumerate(["sipcli/v1.8", "VaxSIPUserAgent/3.1", "SIPVicious 0.3", "sundayddr"]):
        assert guard.check_request(f"203.0.113.{n}", agent, now=0.0)[0] is Verdict.DROP
    assert guard.check_request("203.0.113.99", "Yealink SIP-T46S", now=0.0)[0] is Verdict.ACCEPT


def test_failed_auth_bans_the_source_for_the_configured_time() -> None:
    guard = SecurityGuard(SecurityPolicy(max_failures_per_source=3, ban_time=300, failure_window=60))
    kinds = []
    for t in range(3):
        kinds += [e.kind for e in guard.auth_failed("192.0.2.1", "1001", now=float(t), known_user=True)]
    assert kinds.count("banned") == 1
    assert guard.check_request("192.0.2.1", None, now=10.0)[0] is Verdict.DROP
    assert guard.check_request("192.0.2.2", None, now=10.0)[0] is Verdict.ACCEPT
    assert guard.is_banned("192.0.2.1", 301.9)
    guard.handle_timer(302.0)
    assert not guard.is_banned("192.0.2.1", 302.0)


def test_failures_outside_the_window_do_not_add_up() -> None:
    guard = SecurityGuard(SecurityPolicy(max_failures_per_source=3, failure_window=10))
    for t in (0.0, 20.0, 40.0, 60.0):
        guard.auth_failed("192.0.2.1", "1001", now=t, known_user=False)
    assert not guard.is_banned("192.0.2.1", 61.0)


def test_username_is_locked_after_failures_from_many_sources() -> None:
    guard = SecurityGuard(SecurityPolicy(max_failures_per_user=5, max_failures_per_source=100, user_lock_time=120))
    events = []
    for n in range(5):
        events += guard.auth_failed(f"10.0.0.{n}", "1001", now=float(n), known_user=True)
    assert [e.kind for e in events].count("user_locked") == 1
    assert guard.is_user_locked("1001", 100.0)
    assert not guard.is_user_locked("1002", 100.0)
    guard.handle_timer(125.0)
    assert not guard.is_user_locked("1001", 125.0)


def test_success_resets_the_source_count_but_not_the_username_count() -> None:
    guard = SecurityGuard(SecurityPolicy(max_failures_per_source=3, max_failures_per_user=3))
    guard.auth_failed("192.0.2.1", "1001", now=0.0, known_user=True)
    guard.auth_failed("192.0.2.1", "1001", now=1.0, known_user=True)
    guard.auth_succeeded("192.0.2.1", "1002")
    guard.auth_failed("192.0.2.1", "1001", now=2.0, known_user=True)
    assert not guard.is_banned("192.0.2.1", 3.0)
    assert guard.is_user_locked("1001", 3.0)


def test_rate_limit_drops_the_excess_then_refills() -> None:
    guard = SecurityGuard(SecurityPolicy(rate=10, burst=20, rate_strikes_to_ban=1000))
    verdicts = [guard.check_request("192.0.2.9", None, now=0.0)[0] for _ in range(30)]
    assert verdicts.count(Verdict.ACCEPT) == 20
    # One second later ten more tokens have arrived.
    later = [guard.check_request("192.0.2.9", None, now=1.0)[0] for _ in range(15)]
    assert later.count(Verdict.ACCEPT) == 10


def test_sustained_flood_is_banned() -> None:
    guard = SecurityGuard(SecurityPolicy(rate=1, burst=1, rate_strikes_to_ban=5, ban_time=30))
    kinds = []
    for _ in range(7):
        kinds += [e.kind for e in guard.check_request("192.0.2.9", None, now=0.0)[1]]
    assert "banned" in kinds
    assert guard.is_banned("192.0.2.9", 29.0)


def test_trusted_sources_are_never_limited() -> None:
    guard = SecurityGuard(SecurityPolicy(rate=1, burst=1, trusted=frozenset({"203.0.113.5"})))
    assert all(guard.check_request("203.0.113.5", "friendly-scanner", now=0.0)[0] is Verdict.ACCEPT for _ in range(50))


def test_concurrent_transactions_are_capped_per_source() -> None:
    guard = SecurityGuard(SecurityPolicy(max_transactions_per_source=2))
    assert guard.transaction_started("192.0.2.1", 0.0) is Verdict.ACCEPT
    assert guard.transaction_started("192.0.2.1", 0.0) is Verdict.ACCEPT
    assert guard.transaction_started("192.0.2.1", 0.0) is Verdict.REJECT
    assert guard.transaction_started("192.0.2.2", 0.0) is Verdict.ACCEPT
    guard.transaction_ended("192.0.2.1")
    assert guard.transaction_started("192.0.2.1", 0.0) is Verdict.ACCEPT


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.sampled_from(["check", "fail"])), max_size=400))
def test_memory_stays_bounded_under_many_sources(ops: list[tuple[int, str]]) -> None:
    guard = SecurityGuard(SecurityPolicy(max_tracked=50, max_failures_per_source=2))
    for n, (source, op) in enumerate(ops):
        address = f"10.{source // 256}.{source % 256}.1"
        if op == "check":
            guard.check_request(address, None, now=float(n))
        else:
            guard.auth_failed(address, f"user{source}", now=float(n), known_user=False)
    assert guard.statistics()["tracked_sources"] <= 50
    assert len(guard._users) <= 50
