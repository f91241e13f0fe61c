"""Compliance as policy objects, checked before every dial; an audit log that proves it afterwards.

* :class:`UsFccPolicy` (the default) and :class:`UkOfcomPolicy`: how the abandonment rate is computed,
  the cap, the window, the 2-second rule and the minimum ring time. The engine registers them through
  ``centralita_register_compliance_policies``; campaigns name one with ``compliance = "us-fcc"``.
* :class:`CallingWindow`: hours in the *called party's* local time (zones from the number with
  ``phonenumbers.timezone``; a number that spans several zones must be inside the window in all of
  them), days of the week, holidays.
* :class:`DoNotCallList`: internal, imported and opt-out entries (from any channel), exact numbers or
  prefixes.
* :class:`AttemptLimiter`: at most N attempts per number per (rolling) day.
* :class:`RecontactLockout`: no new call to a number for a while after an abandoned call to it.
* :class:`AuditLog`: append-only records as data, hash-chained so a removed or edited record shows,
  from which :func:`recompute_abandonment` gives an auditor the rate without trusting the dialer.

All of this is pure: time is an argument (UNIX seconds), nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import phonenumbers.timezone

# ------------------------------------------------------------------------------------- abandonment


@dataclass(frozen=True)
class AbandonTally:
    """What a policy needs to compute a rate over its window."""

    live_answers: int = 0  # answered by a person (connected + abandoned)
    abandoned: int = 0
    machine_answers: int = 0  # classed as machine by the detector
    #: measured share of "machine" verdicts that were people (from agent dispositions or a test set)
    machine_misclassified: float = 0.0


class AbandonmentPolicy(Protocol):
    name: str
    max_rate: float
    window: float  # seconds
    abandon_after: float  # seconds after the greeting by which an agent must be connected
    min_ring: float  # seconds a call must ring before the dialer gives up

    def rate(self, tally: AbandonTally) -> float: ...


@dataclass(frozen=True)
class UsFccPolicy:
    """47 CFR 64.1200(a)(7) / FTC TSR safe harbour: <= 3% of live-answered calls per campaign over 30 days.

    Abandoned: no agent connected within 2 s of the end of the greeting. Unanswered calls ring >= 15 s.
    Machine answers, no-answers and non-working numbers are outside the denominator.
    """

    name: str = "us-fcc"
    max_rate: float = 0.03
    window: float = 30 * 86400.0
    abandon_after: float = 2.0
    min_ring: float = 15.0

    def rate(self, tally: AbandonTally) -> float:
        return tally.abandoned / tally.live_answers if tally.live_answers else 0.0


@dataclass(frozen=True)
class UkOfcomPolicy:
    """Ofcom's formula (2008-2016 statements): people hung up on as machines count as abandoned.

    The estimate of such calls is machine verdicts x the measured misclassification rate; they join both
    the abandoned count and the live-call denominator. Window 24 h.
    """

    name: str = "uk-ofcom"
    max_rate: float = 0.03
    window: float = 86400.0
    abandon_after: float = 2.0
    min_ring: float = 15.0

    def rate(self, tally: AbandonTally) -> float:
        hidden = tally.machine_answers * tally.machine_misclassified
        live = tally.live_answers + hidden
        return (tally.abandoned + hidden) / live if live else 0.0


POLICIES: dict[str, AbandonmentPolicy] = {"us-fcc": UsFccPolicy(), "uk-ofcom": UkOfcomPolicy()}


def register_compliance_policies(registry: Any) -> None:
    """Body of the engine's ``centralita_register_compliance_policies`` implementation: the built-ins."""
    for name, policy in POLICIES.items():
        registry.add(name, policy)


# ----------------------------------------------------------------------------------- calling window

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hhmm(text: str) -> dt.time:
    hours, _, minutes = text.partition(":")
    if int(hours) == 24 and int(minutes or 0) == 0:
        return dt.time.max  # "24:00": the end of the day
    return dt.time(int(hours), int(minutes or 0))


def zones_for(number: str) -> tuple[str, ...]:
    """IANA zones the number may be in (several for toll-free or wide area codes; empty if unknown)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = phonenumbers.timezone.time_zones_for_number(parsed)
    return tuple(z for z in zones if z != "Etc/Unknown")


@dataclass(frozen=True)
class CallingWindow:
    """Dial only between ``start`` and ``end`` local time on ``days``, never on ``holidays``.

    ``holidays`` are ISO dates in the called party's calendar. ``fallback_zone`` is used when the number
    gives no zone; without one such numbers are refused (the safe side).
    """

    start: str = "09:00"
    end: str = "21:00"
    days: tuple[str, ...] = _DAYS[:6]
    holidays: frozenset[str] = frozenset()
    fallback_zone: str | None = None

    def __post_init__(self) -> None:
        _hhmm(self.start), _hhmm(self.end)
        bad = [d for d in self.days if d not in _DAYS]
        if bad:
            raise ValueError(f"unknown day(s) {bad}; expected {', '.join(_DAYS)}")

    def _open_in(self, zone: str, now: float) -> tuple[bool, str]:
        local = dt.datetime.fromtimestamp(now, ZoneInfo(zone))
        if local.date().isoformat() in self.holidays:
            return False, f"holiday {local.date().isoformat()} in {zone}"
        if _DAYS[local.weekday()] not in self.days:
            return False, f"{_DAYS[local.weekday()]} is not a calling day in {zone}"
        if not _hhmm(self.start) <= local.time() < _hhmm(self.end):
            return False, f"{local:%H:%M} in {zone} is outside {self.start}-{self.end}"
        return True, ""

    def refusal(self, number: str, now: float) -> str | None:
        """None when the number may be called now; otherwise why not."""
        zones = zones_for(number) or ((self.fallback_zone,) if self.fallback_zone else ())
        if not zones:
            return "no time zone known for the number (set schedule.timezone)"
        for zone in zones:
            try:
                ok, reason = self._open_in(zone, now)
            except ZoneInfoNotFoundError:
                return f"time zone {zone} is not installed"
            if not ok:
                return reason
        return None

    def next_open(self, number: str, now: float, *, step: float = 900.0, horizon: float = 8 * 86400.0) -> float | None:
        """The first quarter-hour from ``now`` when the number may be called (None within 8 days)."""
        t = now
        while t <= now + horizon:
            if self.refusal(number, t) is None:
                return t
            t = (t // step + 1) * step
        return None


# -------------------------------------------------------------------------------- do-not-call etc.


@dataclass(frozen=True)
class DncEntry:
    number: str  # E.164, or a prefix ending in "*"
    source: str  # "internal", "imported:<list>", "opt-out:<channel>"
    added: float
    note: str = ""


class DoNotCallList:
    """Numbers (or prefixes, ``+1900*``) that must never be dialed, with where each entry came from."""

    def __init__(self, entries: Iterable[DncEntry] = ()) -> None:
        self._exact: dict[str, DncEntry] = {}
        self._prefixes: dict[str, DncEntry] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: DncEntry) -> None:
        if entry.number.endswith("*"):
            self._prefixes[entry.number[:-1]] = entry
        else:
            self._exact[entry.number] = entry

    def opt_out(self, number: str, channel: str, now: float, note: str = "") -> DncEntry:
        """A person asked not to be called again, on any channel (voice, SMS STOP, email, chat)."""
        entry = DncEntry(number, f"opt-out:{channel}", now, note)
        self.add(entry)
        return entry

    def match(self, number: str) -> DncEntry | None:
        entry = self._exact.get(number)
        if entry is not None:
            return entry
        for length in range(len(number), 0, -1):
            entry = self._prefixes.get(number[:length])
            if entry is not None:
                return entry
        return None

    def __len__(self) -> int:
        return len(self._exact) + len(self._prefixes)


class AttemptLimiter:
    """At most ``per_day`` attempts to one number in any 24 hours."""

    def __init__(self, per_day: int) -> None:
        self.per_day = per_day
        self._attempts: dict[str, deque[float]] = {}

    def record(self, number: str, now: float) -> None:
        self._attempts.setdefault(number, deque()).append(now)

    def refusal(self, number: str, now: float) -> str | None:
        times = self._attempts.get(number)
        if not times:
            return None
        while times and times[0] <= now - 86400.0:
            times.popleft()
        if len(times) >= self.per_day:
            return f"already {len(times)} attempts in the last 24 h (max {self.per_day})"
        return None


class RecontactLockout:
    """After an abandoned call, leave the number alone for ``seconds`` (e.g. the UK's 72 h)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until: dict[str, float] = {}

    def abandoned(self, number: str, now: float) -> None:
        if self.seconds > 0:
            self._until[number] = now + self.seconds

    def refusal(self, number: str, now: float) -> str | None:
        until = self._until.get(number)
        if until is None or until <= now:
            return None
        return f"re-contact lockout after an abandoned call until {dt.datetime.fromtimestamp(until, dt.UTC):%Y-%m-%d %H:%M}Z"


@dataclass
class CompliancePolicy:
    """Everything checked before a number is dialed, in order; the first refusal wins."""

    abandonment: AbandonmentPolicy = field(default_factory=UsFccPolicy)
    window: CallingWindow | None = field(default_factory=CallingWindow)
    dnc: DoNotCallList = field(default_factory=DoNotCallList)
    attempts: AttemptLimiter = field(default_factory=lambda: AttemptLimiter(3))
    lockout: RecontactLockout = field(default_factory=lambda: RecontactLockout(72 * 3600.0))

    def refusal(self, number: str, now: float) -> str | None:
        entry = self.dnc.match(number)
        if entry is not None:
            return f"do-not-call ({entry.source})"
        for check in (self.lockout.refusal, self.attempts.refusal):
            reason = check(number, now)
            if reason:
                return reason
        if self.window is not None:
            return self.window.refusal(number, now)
        return None


# ---------------------------------------------------------------------------------------- audit log


@dataclass(frozen=True)
class AuditRecord:
    """One fact, as data. ``kind``: dial, answer-live, answer-machine, connect, abandon, no-answer,
    failed, refused, disposition, opt-out, mode-changed. ``digest`` chains it to the previous record."""

    seq: int
    time: float
    campaign: str
    kind: str
    call: str = ""
    number: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    digest: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["detail"] = dict(self.detail)
        return out


def _digest(previous: str, record: AuditRecord) -> str:
    body = json.dumps([previous, record.seq, record.time, record.campaign, record.kind, record.call,
                       record.number, dict(record.detail)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


class AuditLog:
    """Append-only; the caller persists :meth:`drain` output (it is the write-ahead journal)."""

    def __init__(self, records: Iterable[AuditRecord] = ()) -> None:
        self.records: list[AuditRecord] = list(records)
        self._undrained = 0

    def append(self, now: float, campaign: str, kind: str, *, call: str = "", number: str = "",
               **detail: Any) -> AuditRecord:
        previous = self.records[-1].digest if self.records else ""
        draft = AuditRecord(len(self.records) + 1, now, campaign, kind, call, number, detail)
        record = AuditRecord(draft.seq, now, campaign, kind, call, number, detail, _digest(previous, draft))
        self.records.append(record)
        self._undrained += 1
        return record

    def drain(self) -> list[AuditRecord]:
        """Records added since the last drain, for the store to write (before acting on them)."""
        if not self._undrained:
            return []
        new = self.records[-self._undrained:]
        self._undrained = 0
        return new

    @staticmethod
    def verify(records: Iterable[AuditRecord]) -> int | None:
        """The seq of the first record that does not chain (edited, removed, reordered), or None."""
        previous = ""
        for expected, record in enumerate(records, start=1):
            if record.seq != expected or _digest(previous, record) != record.digest:
                return record.seq
            previous = record.digest
        return None


def recompute_abandonment(records: Iterable[AuditRecord], campaign: str, policy: AbandonmentPolicy, *,
                          now: float, machine_misclassified: float = 0.0) -> tuple[float, AbandonTally]:
    """An auditor's figure: the policy's rate over its window, from the records alone."""
    since = now - policy.window
    live = abandoned = machines = 0
    for record in records:
        if record.campaign != campaign or not since <= record.time <= now:
            continue
        if record.kind == "answer-live":
            live += 1
        elif record.kind == "abandon":
            abandoned += 1
        elif record.kind == "answer-machine":
            machines += 1
    tally = AbandonTally(live, abandoned, machines, machine_misclassified)
    return policy.rate(tally), tally


def amd_confusion(records: Iterable[AuditRecord], campaign: str) -> Counter[tuple[str, str]]:
    """(what the detector said: ``live``/``machine``, what the agent's disposition said:
    ``human``/``machine``) counted per call from the audit log alone: the detector's accuracy on real
    traffic, and what the UK rule's misclassification figure is made of. Survives restarts."""
    verdicts: dict[str, str] = {}
    out: Counter[tuple[str, str]] = Counter()
    for record in records:
        if record.campaign != campaign:
            continue
        if record.kind in ("answer-live", "answer-machine"):
            verdicts[record.call] = "live" if record.kind == "answer-live" else "machine"
        elif record.kind == "disposition" and record.call in verdicts:
            said = "machine" if record.detail.get("disposition") == "machine" else "human"
            out[(verdicts.pop(record.call), said)] += 1
    return out
