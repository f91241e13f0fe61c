"""``[[campaigns]]``: the settings of one outbound campaign, call outcomes and their retry rules.

The engine's config loader hands the raw ``campaigns`` array to :func:`validate_campaigns`, which returns
the settings and a list of :class:`engine._schema.Problem` (key path + message) for the loader to print
with file and line, like every other section.

Example::

    [[campaigns]]
    name = "renewals"
    mode = "predictive"                 # preview | progressive | predictive
    agents = ["alice", "bob"]           # and/or queues = ["sales"]
    caller_id = "+34910000000"
    script = "Hello {first_name}, I'm calling from ..."
    dispositions = ["sale", "no-sale", "callback", "do-not-call"]
    target_abandon_rate = 0.025
    max_abandon_rate = 0.03
    compliance = "us-fcc"               # or "uk-ofcom", or a plugin's policy
    max_attempts_per_day = 3
    recontact_lockout = 259200          # seconds after an abandoned call
    on_machine = "hangup"               # hangup | message | agent
    abandon_message = "sounds/abandon.wav"
    [campaigns.schedule]
    start = "09:00"
    end = "21:00"
    days = ["mon", "tue", "wed", "thu", "fri", "sat"]
    holidays = ["2026-12-25"]
    [campaigns.retry.busy]
    delay = 600
    max_attempts = 5
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

from .._schema import Problem, build

# ------------------------------------------------------------------------------------------ outcomes


class Outcome(enum.Enum):
    HUMAN = "human"  # a person answered and reached an agent
    ABANDONED = "abandoned"  # a person answered, no agent in time: the information message played
    MACHINE = "machine"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    CONGESTION = "congestion"  # network or trunk could not carry it (SIP 503, reorder tone)
    INVALID = "invalid"  # number does not exist (SIP 404/484/604, SIT vacant code)
    FAX = "fax"
    FAILED = "failed"  # anything else
    INTERRUPTED = "interrupted"  # the engine stopped while the call was in flight (found at restart)
    SKIPPED = "skipped"  # preview: the agent chose not to call


_SIP_OUTCOMES = {
    404: Outcome.INVALID, 410: Outcome.INVALID, 484: Outcome.INVALID, 485: Outcome.INVALID,
    604: Outcome.INVALID, 486: Outcome.BUSY, 600: Outcome.BUSY, 480: Outcome.NO_ANSWER,
    408: Outcome.NO_ANSWER, 487: Outcome.NO_ANSWER, 503: Outcome.CONGESTION, 502: Outcome.CONGESTION,
    504: Outcome.CONGESTION, 500: Outcome.CONGESTION, 488: Outcome.FAILED, 603: Outcome.FAILED,
}


def outcome_from_sip(status: int) -> Outcome:
    """The outcome of an INVITE that failed with ``status`` (RFC 3261 final response)."""
    if status in _SIP_OUTCOMES:
        return _SIP_OUTCOMES[status]
    if 500 <= status < 600:
        return Outcome.CONGESTION
    return Outcome.FAILED


_SIT_OUTCOMES = {
    "vacant-code": Outcome.INVALID, "intercept": Outcome.INVALID, "ineffective-other": Outcome.FAILED,
    "no-circuit": Outcome.CONGESTION, "reorder": Outcome.CONGESTION,
}


def outcome_from_sit(kind: str) -> Outcome:
    """The outcome for a special information tone an analog line heard (Telcordia SIT names)."""
    return _SIT_OUTCOMES.get(kind, Outcome.FAILED)


# -------------------------------------------------------------------------------------- retry rules


@dataclass(frozen=True)
class RetryRule:
    """Try again ``delay`` seconds later, at most ``max_attempts`` calls ending with this outcome."""

    delay: float = field(default=3600.0, metadata={"min": 0})
    max_attempts: int = field(default=3, metadata={"min": 0})


#: what happens after each outcome unless the campaign says otherwise; 0 attempts = never again
DEFAULT_RETRY: dict[str, RetryRule] = {
    Outcome.NO_ANSWER.value: RetryRule(3600.0, 4),
    Outcome.BUSY.value: RetryRule(600.0, 5),
    Outcome.CONGESTION.value: RetryRule(300.0, 5),
    Outcome.MACHINE.value: RetryRule(4 * 3600.0, 3),
    Outcome.FAILED.value: RetryRule(3600.0, 2),
    Outcome.INTERRUPTED.value: RetryRule(3600.0, 2),
    Outcome.ABANDONED.value: RetryRule(72 * 3600.0, 2),
    Outcome.INVALID.value: RetryRule(0.0, 0),
    Outcome.FAX.value: RetryRule(0.0, 0),
    Outcome.SKIPPED.value: RetryRule(3600.0, 5),
    Outcome.HUMAN.value: RetryRule(0.0, 0),  # reached: the agent's disposition decides (callback...)
}


def _check_retry(value: dict[str, RetryRule]) -> str | None:
    known = {o.value for o in Outcome}
    unknown = sorted(set(value) - known)
    if unknown:
        return f"unknown outcome(s) {', '.join(map(repr, unknown))} (expected one of {', '.join(sorted(known))})"
    return None


def _check_hhmm(value: str) -> str | None:
    hours, sep, minutes = value.partition(":")
    if sep and hours.isdigit() and minutes.isdigit() and int(minutes) < 60:
        if int(hours) < 24 or (int(hours) == 24 and int(minutes) == 0):
            return None
    return f"expected HH:MM, got {value!r}"


@dataclass(frozen=True)
class ScheduleSettings:
    start: str = field(default="09:00", metadata={"check": _check_hhmm})
    end: str = field(default="21:00", metadata={"check": _check_hhmm})
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri", "sat"])
    holidays: list[str] = field(default_factory=list)
    #: used when the number gives no time zone
    timezone: str | None = None


#: what ``amd = true`` means
BUILT_IN_DETECTOR = "cadence"


@dataclass(frozen=True)
class CampaignSettings:
    name: str
    mode: Literal["preview", "progressive", "predictive"] = "progressive"
    agents: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    caller_id: str = ""
    script: str = ""
    dispositions: list[str] = field(default_factory=lambda: ["sale", "no-sale", "callback", "do-not-call",
                                                             "wrong-number", "machine"])
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    retry: dict[str, RetryRule] = field(default_factory=dict, metadata={"check": _check_retry})
    target_abandon_rate: float = field(default=0.025, metadata={"min": 0.0001, "max": 0.5})
    max_abandon_rate: float = field(default=0.03, metadata={"min": 0.0001, "max": 0.5})
    compliance: str = "us-fcc"
    max_attempts_per_day: int = field(default=3, metadata={"min": 1})
    recontact_lockout: float = field(default=72 * 3600.0, metadata={"min": 0})
    ring_timeout: float = field(default=25.0, metadata={"min": 1})
    abandon_after: float = field(default=2.0, metadata={"min": 0})
    lines_per_agent: float = field(default=1.0, metadata={"min": 1, "max": 10})
    max_lines: int | None = None
    on_machine: Literal["hangup", "message", "agent"] = "hangup"
    #: listen to each answered call (the engine's media) to tell people from answering machines:
    #: true (the built-in "cadence" detector), false, or the name of a detector a plugin registered
    #: through ``centralita_register_amd_detectors``
    amd: bool | str = True
    #: on_machine = "message": with no beep, leave it once the greeting has been silent this long
    beep_wait: float = field(default=3.0, metadata={"min": 0.5, "max": 30})
    abandon_message: str = ""
    machine_message: str = ""
    region: str = "US"  # for numbers imported without a country code
    enabled: bool = True

    @property
    def amd_detector(self) -> str | None:
        """The name of the detector to listen with, or None (no detection)."""
        if self.amd is True:
            return BUILT_IN_DETECTOR
        return self.amd or None

    def retry_rule(self, outcome: Outcome) -> RetryRule:
        return self.retry.get(outcome.value) or DEFAULT_RETRY[outcome.value]


def validate_campaigns(raw: Any, *, agents: set[str] | None = None, queues: set[str] | None = None,
                       policies: set[str] | None = None,
                       detectors: set[str] | None = None) -> tuple[list[CampaignSettings], list[Problem]]:
    """Check the ``campaigns`` array; cross-check agent, queue, policy and AMD detector names when given."""
    problems: list[Problem] = []
    campaigns: list[CampaignSettings] = []
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], [Problem("campaigns", "expected an array of tables ([[campaigns]])")]
    names: set[str] = set()
    for i, item in enumerate(raw):
        path = f"campaigns[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(path, "expected a table"))
            continue
        before = len(problems)
        name = item.get("name")
        if isinstance(name, str):
            if name in names:
                problems.append(Problem(f"{path}.name", f"campaign {name!r} is defined twice"))
            names.add(name)
        campaign = build(CampaignSettings, item, path, problems)
        if campaign is None:
            continue
        if campaign.target_abandon_rate > campaign.max_abandon_rate:
            problems.append(Problem(f"{path}.target_abandon_rate",
                                    f"expected at most max_abandon_rate ({campaign.max_abandon_rate}), "
                                    f"got {campaign.target_abandon_rate}"))
        if campaign.ring_timeout < 15 and campaign.compliance in ("us-fcc", "uk-ofcom"):
            problems.append(Problem(f"{path}.ring_timeout",
                                    f"expected at least 15 (the {campaign.compliance} rule), got {campaign.ring_timeout}"))
        if not campaign.agents and not campaign.queues:
            problems.append(Problem(path, "expected agents or queues (who takes the calls)"))
        for kind, wanted, known in (("agents", campaign.agents, agents), ("queues", campaign.queues, queues)):
            if known is not None:
                for j, name in enumerate(wanted):
                    if name not in known:
                        problems.append(Problem(f"{path}.{kind}[{j}]", f"no such {kind[:-1]} {name!r}"))
        if policies is not None and campaign.compliance not in policies:
            problems.append(Problem(f"{path}.compliance", f"expected one of {', '.join(sorted(policies))}, "
                                                          f"got {campaign.compliance!r}"))
        if isinstance(campaign.amd, str) and detectors is not None and campaign.amd not in detectors:
            problems.append(Problem(f"{path}.amd", f"expected true, false or one of {', '.join(sorted(detectors))}, "
                                                   f"got {campaign.amd!r}"))
        if len(problems) == before:
            campaigns.append(campaign)
    return campaigns, problems
