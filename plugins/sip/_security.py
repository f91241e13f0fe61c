"""What stands between an open UDP/TCP port 5060 and the rest of the SIP plugin (sans-IO).

No trio, no sockets: the shell asks this module a question for every message (with the current time)
and obeys the answer. Everything it remembers is bounded (a fixed number of sources and usernames,
least recently seen evicted first), so a scan from a million addresses cannot exhaust memory.

Rules it enforces, in the order the shell asks:

===========================  ======================================================================
check                        verdict
===========================  ======================================================================
source banned                DROP, silently (no reply: a banned scanner learns nothing)
request rate over the bucket DROP, silently, and counted; sustained excess bans the source
scanner User-Agent           DROP, silently, and the source is banned
transactions per source cap  REJECT with 503 (the peer may be legitimate but too busy)
auth failure                 counted per source and per username within ``failure_window``;
                             reaching the limit bans the source / locks the username for a while
===========================  ======================================================================

Every decision that matters to an operator is returned as a :class:`SecurityEvent`; the shell
publishes them on the bus with attacker-controlled fields escaped.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_SCANNER_USER_AGENTS",
    "SecurityEvent",
    "SecurityGuard",
    "SecurityPolicy",
    "Verdict",
]

#: Substrings (case-insensitive) of User-Agent values sent by well-known SIP scanners. Matching is only
#: a hint (a scanner can change its User-Agent), which is why rate limits and bans exist as well.
DEFAULT_SCANNER_USER_AGENTS: tuple[str, ...] = (
    "friendly-scanner",
    "sipcli",
    "vaxsipuseragent",
    "sipvicious",
    "sundayddr",
    "pplsip",
    "sip-scan",
    "iwar",
    "sivus",
    "smap",
)


class Verdict(enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"  # say nothing
    REJECT = "reject"  # answer with an error (503)


@dataclass(frozen=True)
class SecurityPolicy:
    """Limits; every one configurable from ``[sip.security]``."""

    #: requests per second a single source may send on average, and the burst it may send at once
    rate: float = 50.0
    burst: float = 200.0
    #: a source that keeps exceeding its rate this many times in a row is banned
    rate_strikes_to_ban: int = 200
    #: failed digest authentications within ``failure_window`` seconds before a ban/lock
    max_failures_per_source: int = 10
    max_failures_per_user: int = 20
    failure_window: float = 300.0
    #: how long a banned source stays banned and a locked username stays locked (seconds)
    ban_time: float = 300.0
    user_lock_time: float = 300.0
    scanner_user_agents: tuple[str, ...] = DEFAULT_SCANNER_USER_AGENTS
    #: server transactions a single source may have open at once
    max_transactions_per_source: int = 200
    #: how many distinct sources/usernames are remembered at most (oldest forgotten first)
    max_tracked: int = 20000
    #: sources that are never rate limited or banned (the trunks' addresses, loopback in tests)
    trusted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SecurityEvent:
    """Something an operator (or fail2ban) wants to know. ``source`` is the socket address only."""

    kind: str  # "banned" | "unbanned" | "scanner" | "rate_limited" | "auth_failed" | "user_locked"
    source: str
    username: str = ""
    detail: str = ""


@dataclass
class _Source:
    tokens: float
    stamp: float
    strikes: int = 0
    failures: list[float] = field(default_factory=list)
    banned_until: float = 0.0
    transactions: int = 0


@dataclass
class _User:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class SecurityGuard:
    """Per-source and per-username bookkeeping. Feed it the time; it never looks at a clock."""

    def __init__(self, policy: SecurityPolicy | None = None) -> None:
        self.policy = policy or SecurityPolicy()
        self._scanners = tuple(s.lower() for s in self.policy.scanner_user_agents)
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        self._users: OrderedDict[str, _User] = OrderedDict()
        self._counters = {
            "dropped_banned": 0,
            "dropped_rate": 0,
            "dropped_scanner": 0,
            "rejected_transactions": 0,
            "auth_failures": 0,
            "bans": 0,
            "user_locks": 0,
        }

    # ------------------------------------------------------------------------------------ per message

    def check_request(self, source: str, user_agent: str | None, now: float) -> tuple[Verdict, list[SecurityEvent]]:
        """Decide about one incoming request from ``source`` (an IP address, no port)."""
        if source in self.policy.trusted:
            return Verdict.ACCEPT, []
        state = self._source(source, now)
        if state.banned_until > now:
            self._counters["dropped_banned"] += 1
            return Verdict.DROP, []
        events: list[SecurityEvent] = []
        if user_agent and self._is_scanner(user_agent):
            self._counters["dropped_scanner"] += 1
            events.append(SecurityEvent("scanner", source, detail=user_agent))
            events.extend(self._ban(source, state, now, "scanner User-Agent"))
            return Verdict.DROP, events
        # Token bucket: refill by elapsed time, spend one token per request.
        elapsed = max(0.0, now - state.stamp)
        state.tokens = min(self.policy.burst, state.tokens + elapsed * self.policy.rate)
        state.stamp = now
        if state.tokens < 1.0:
            self._counters["dropped_rate"] += 1
            state.strikes += 1
            if state.strikes == 1:
                events.append(SecurityEvent("rate_limited", source, detail=f"over {self.policy.rate:g}/s"))
            if state.strikes >= self.policy.rate_strikes_to_ban:
                events.extend(self._ban(source, state, now, "sustained request flood"))
            return Verdict.DROP, events
        state.tokens -= 1.0
        state.strikes = 0
        return Verdict.ACCEPT, events

    def is_banned(self, source: str, now: float) -> bool:
        state = self._sources.get(source)
        return state is not None and state.banned_until > now

    def is_user_locked(self, username: str, now: float) -> bool:
        user = self._users.get(username)
        return user is not None and user.locked_until > now

    # ----------------------------------------------------------------------------------- transactions

    def transaction_started(self, source: str, now: float) -> Verdict:
        """A new server transaction from ``source``; REJECT (503) when it already has too many."""
        if source in self.policy.trusted:
            return Verdict.ACCEPT
        state = self._source(source, now)
        if state.transactions >= self.policy.max_transactions_per_source:
            self._counters["rejected_transactions"] += 1
            return Verdict.REJECT
        state.transactions += 1
        return Verdict.ACCEPT

    def transaction_ended(self, source: str) -> None:
        state = self._sources.get(source)
        if state is not None and state.transactions > 0:
            state.transactions -= 1

    # ----------------------------------------------------------------------------------- authentication

    def auth_failed(self, source: str, username: str, now: float, *, known_user: bool) -> list[SecurityEvent]:
        """Count a failed (wrong password or unknown user) digest authentication."""
        self._counters["auth_failures"] += 1
        window_start = now - self.policy.failure_window
        events = [
            SecurityEvent(
                "auth_failed", source, username, "bad password" if known_user else "unknown user"
            )
        ]
        if source not in self.policy.trusted:
            state = self._source(source, now)
            state.failures = [t for t in state.failures if t > window_start]
            state.failures.append(now)
            if len(state.failures) >= self.policy.max_failures_per_source and state.banned_until <= now:
                events.extend(self._ban(source, state, now, "too many failed authentications"))
        if username:
            user = self._user(username)
            user.failures = [t for t in user.failures if t > window_start]
            user.failures.append(now)
            if len(user.failures) >= self.policy.max_failures_per_user and user.locked_until <= now:
                user.locked_until = now + self.policy.user_lock_time
                user.failures.clear()
                self._counters["user_locks"] += 1
                events.append(
                    SecurityEvent("user_locked", source, username, f"for {self.policy.user_lock_time:g}s")
                )
        return events

    def auth_succeeded(self, source: str, username: str) -> None:
        """A correct password clears the source's failure count (not the username's: an attacker who
        also owns one valid account must not be able to reset the counter of another)."""
        state = self._sources.get(source)
        if state is not None:
            state.failures.clear()

    # ---------------------------------------------------------------------------------------- timers

    def next_timer(self) -> float | None:
        """When the earliest ban or lock expires (to announce ``unbanned``), or None."""
        times = [s.banned_until for s in self._sources.values() if s.banned_until > 0]
        times += [u.locked_until for u in self._users.values() if u.locked_until > 0]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[SecurityEvent]:
        events = []
        for address, state in self._sources.items():
            if 0 < state.banned_until <= now:
                state.banned_until = 0.0
                state.failures.clear()
                state.strikes = 0
                events.append(SecurityEvent("unbanned", address))
        for user in self._users.values():
            if 0 < user.locked_until <= now:
                user.locked_until = 0.0
        return events

    def statistics(self) -> dict[str, int]:
        now_banned = sum(1 for s in self._sources.values() if s.banned_until > 0)
        return {**self._counters, "banned_sources": now_banned, "tracked_sources": len(self._sources)}

    # -------------------------------------------------------------------------------------- internals

    def _is_scanner(self, user_agent: str) -> bool:
        lowered = user_agent.lower()
        return any(s in lowered for s in self._scanners)

    def _ban(self, source: str, state: _Source, now: float, reason: str) -> list[SecurityEvent]:
        already = state.banned_until > now
        state.banned_until = now + self.policy.ban_time
        if already:
            return []
        self._counters["bans"] += 1
        return [SecurityEvent("banned", source, detail=f"{reason}; for {self.policy.ban_time:g}s")]

    def _source(self, source: str, now: float) -> _Source:
        state = self._sources.get(source)
        if state is None:
            state = _Source(tokens=self.policy.burst, stamp=now)
            self._sources[source] = state
            self._evict(self._sources)
        else:
            self._sources.move_to_end(source)
        return state

    def _user(self, username: str) -> _User:
        user = self._users.get(username)
        if user is None:
            user = _User()
            self._users[username] = user
            self._evict(self._users)
        else:
            self._users.move_to_end(username)
        return user

    def _evict(self, table: OrderedDict) -> None:  # type: ignore[type-arg]
        # Forget the least recently seen entries first, whatever their state: memory stays bounded even
        # under a distributed attack (a forgotten banned source is simply unbanned early).
        while len(table) > self.policy.max_tracked:
            table.popitem(last=False)
