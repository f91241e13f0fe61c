"""What the router says: frozen events and commands, returned as lists from every Router input.

Each class has ``ami``: the bus event name from CONTRACT.md when the concept exists in Asterisk AMI
(``None`` for commands that only the engine acts on). ``to_fields()`` gives AMI-style field names for
the bus (``Queue``, ``Agent``, ``Position``, ``HoldTime``...).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

__all__ = [
    "AgentComplete", "AgentPauseChanged", "AgentRingNoAnswer", "AgentStatusChanged", "Announce",
    "CallbackFailed", "CancelOffer", "Connect", "DialCallback", "Explanation", "JoinRefused", "Offer",
    "Overflow", "QueueCallerAbandon", "QueueCallerJoin", "QueueCallerLeave", "RouterEvent",
]


@dataclass(frozen=True)
class RouterEvent:
    ami: ClassVar[str | None] = None

    def to_fields(self) -> dict[str, Any]:
        """AMI-style field names for the event bus; ``interaction`` stays lower-case (CONTRACT.md)."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key == "interaction":
                out["interaction"] = value
            elif key == "explanation":
                out["explanation"] = value
            else:
                out["".join(part.capitalize() for part in key.split("_"))] = value
        if "HoldTime" in out and out["HoldTime"] is not None:
            out["HoldTime"] = round(out["HoldTime"])
        return out


@dataclass(frozen=True)
class Explanation:
    """Why ``chosen`` got the offer, and why each other member did not (agent id -> reason)."""

    strategy: str
    chosen: tuple[str, ...]
    why: str
    not_chosen: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueCallerJoin(RouterEvent):
    ami = "QueueCallerJoin"
    interaction: str
    queue: str
    position: int
    count: int
    kind: str = "voice"


@dataclass(frozen=True)
class JoinRefused(RouterEvent):
    """The queue would not take the interaction (``reason``: no-agents, full, closed, unknown-queue).
    ``destination`` is the queue's overflow target (``("voicemail", "sales")``) or None."""

    ami = "QueueCallerLeave"
    interaction: str
    queue: str
    reason: str
    destination: tuple[str, str] | None = None


@dataclass(frozen=True)
class QueueCallerLeave(RouterEvent):
    """Left the queue: ``reason`` is answered, overflow, callback-failed, transferred or removed."""

    ami = "QueueCallerLeave"
    interaction: str
    queue: str
    position: int
    reason: str


@dataclass(frozen=True)
class QueueCallerAbandon(RouterEvent):
    ami = "QueueCallerAbandon"
    interaction: str
    queue: str
    position: int
    original_position: int
    hold_time: float


@dataclass(frozen=True)
class Offer(RouterEvent):
    """Ring the agent (voice) or reserve them for a message until ``expires``. Command + AgentCalled."""

    ami = "AgentCalled"
    interaction: str
    agent: str
    queue: str
    kind: str
    expires: float
    explanation: Explanation | None = None
    callback: str | None = None  # the callback request id when this offer precedes dialing a callback


@dataclass(frozen=True)
class CancelOffer(RouterEvent):
    """Stop ringing / release the reservation. ``reason``: answered-elsewhere, caller-gone, timeout,
    rejected, logged-out."""

    ami = None
    interaction: str
    agent: str
    reason: str


@dataclass(frozen=True)
class AgentRingNoAnswer(RouterEvent):
    ami = "AgentRingNoAnswer"
    interaction: str
    agent: str
    queue: str
    ring_time: float
    cause: str = "no-answer"  # no-answer, rejected, busy


@dataclass(frozen=True)
class Connect(RouterEvent):
    """Bridge the caller and the agent (for a callback: the customer answered). Command + AgentConnect."""

    ami = "AgentConnect"
    interaction: str
    agent: str
    queue: str
    hold_time: float
    ring_time: float


@dataclass(frozen=True)
class AgentComplete(RouterEvent):
    ami = "AgentComplete"
    interaction: str
    agent: str
    queue: str
    hold_time: float
    talk_time: float
    reason: str  # caller, agent, transfer
    wrapup_until: float


@dataclass(frozen=True)
class Overflow(RouterEvent):
    """Send the interaction to ``destination`` = (kind, target): ("queue", "q2") is done by the router
    itself; ("flow", "main"), ("voicemail", "box"), ("callback", "") are for the engine."""

    ami = None
    interaction: str
    queue: str
    destination: tuple[str, str]
    reason: str  # max-wait, no-agents


@dataclass(frozen=True)
class Announce(RouterEvent):
    """Tell a waiting voice caller their position and the estimated wait range (seconds; None when
    no staffed agent can take the caller). On the bus as ``QueueCallerAnnounce`` (not an AMI event:
    Asterisk announces without telling AMI)."""

    ami = "QueueCallerAnnounce"
    interaction: str
    queue: str
    position: int
    wait_low: float | None
    wait_high: float | None


@dataclass(frozen=True)
class DialCallback(RouterEvent):
    """Dial the customer of a callback now: the agent is already reserved and has accepted.
    ``attempt_id`` is stable for one attempt, even when re-emitted after a restore: dedupe on it."""

    ami = None
    interaction: str
    request_id: str
    attempt_id: str
    number: str
    agent: str
    queue: str
    attempt: int


@dataclass(frozen=True)
class CallbackFailed(RouterEvent):
    """A callback gave up: ``reason`` is attempts-exhausted or window-closed."""

    ami = None
    interaction: str
    request_id: str
    queue: str
    reason: str
    attempts: int


@dataclass(frozen=True)
class AgentStatusChanged(RouterEvent):
    """``status``: logged_out, available, paused, ringing, busy, wrapup (the agent's overall activity)."""

    ami = "QueueMemberStatus"
    agent: str
    status: str


@dataclass(frozen=True)
class AgentPauseChanged(RouterEvent):
    ami = "QueueMemberPause"
    agent: str
    paused: bool
    reason: str
