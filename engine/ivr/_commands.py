"""What a flow session asks the media/channel layer to do, and what it is told back.

Commands (outputs) and inputs are frozen dataclasses; a session never does I/O itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CrmResult", "Digit", "EnterQueue", "FlowCommand", "FlowEnded", "Hangup", "LookupCrm", "Play",
    "PlaybackDone", "RequestCallback", "StopPlayback", "Transfer", "Voicemail",
]


class FlowCommand:
    """Base class of everything a session emits."""


@dataclass(frozen=True)
class Play(FlowCommand):
    """Play a prompt file (``prompt``, a name the media layer resolves) or speak ``text`` (TTS).
    Report :class:`PlaybackDone` when it ends. ``barge_in``: a digit may cut it short."""

    prompt: str | None = None
    text: str | None = None
    barge_in: bool = True


@dataclass(frozen=True)
class StopPlayback(FlowCommand):
    pass


@dataclass(frozen=True)
class LookupCrm(FlowCommand):
    """Ask the CRM hook about ``value`` (what ``key`` names, e.g. "caller" or "account"); answer with
    :class:`CrmResult` carrying the same ``request_id``."""

    request_id: str
    key: str
    value: str


@dataclass(frozen=True)
class EnterQueue(FlowCommand):
    """Final: hand the caller to routing (``Router.enqueue``)."""

    queue: str
    priority: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transfer(FlowCommand):
    """Final: transfer to an extension or an outside number."""

    destination: str


@dataclass(frozen=True)
class Voicemail(FlowCommand):
    """Final: record a voicemail into ``box`` (greeting, beep, record are the voicemail service's)."""

    box: str
    greeting: str | None = None


@dataclass(frozen=True)
class RequestCallback(FlowCommand):
    """Final: the caller wants a callback on ``number`` from ``queue``, keeping their place
    (``Router.enqueue(..., callback=CallbackRequest(request_id, number))``)."""

    queue: str
    number: str
    request_id: str


@dataclass(frozen=True)
class Hangup(FlowCommand):
    reason: str = "normal"


@dataclass(frozen=True)
class FlowEnded(FlowCommand):
    """The session is over: ``outcome`` is queue, transfer, voicemail, callback, hangup, caller-hangup
    or error; ``node`` is where it ended. Always the last command of a session."""

    outcome: str
    node: str
    variables: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class Digit:
    digit: str


@dataclass(frozen=True)
class PlaybackDone:
    pass


@dataclass(frozen=True)
class CrmResult:
    """``record`` is the contact found (a dict), ``None`` when not found; ``error`` when it failed."""

    request_id: str
    record: dict[str, Any] | None = None
    error: str | None = None
