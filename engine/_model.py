"""The domain model: interactions, agents, contacts and what happens to them.

The interaction state table is written here once; every state change goes through
:meth:`Interaction.transition`, which refuses anything the table does not allow.
"""

from __future__ import annotations

import enum
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from ._errors import InvalidTransition


class InteractionKind(enum.Enum):
    VOICE = "voice"
    SMS = "sms"
    EMAIL = "email"
    CHAT = "chat"


class Direction(enum.Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class InteractionState(enum.Enum):
    NEW = "new"
    IVR = "ivr"
    QUEUED = "queued"
    OFFERED = "offered"
    ACTIVE = "active"
    WRAPUP = "wrapup"
    ENDED = "ended"


S = InteractionState
#: Allowed transitions. Rules this enforces:
#: - an interaction is offered only from a queue, from the IVR or straight after arrival (agent routes);
#: - a rejected or unanswered offer goes back to the queue, never silently to "active";
#: - "ended" is final; wrap-up only follows a conversation that was active.
INTERACTION_TRANSITIONS: dict[InteractionState, frozenset[InteractionState]] = {
    S.NEW: frozenset({S.IVR, S.QUEUED, S.OFFERED, S.ACTIVE, S.ENDED}),
    S.IVR: frozenset({S.QUEUED, S.OFFERED, S.ACTIVE, S.ENDED}),
    S.QUEUED: frozenset({S.OFFERED, S.IVR, S.QUEUED, S.ENDED}),
    S.OFFERED: frozenset({S.ACTIVE, S.QUEUED, S.OFFERED, S.ENDED}),
    S.ACTIVE: frozenset({S.WRAPUP, S.QUEUED, S.IVR, S.ENDED}),
    S.WRAPUP: frozenset({S.ENDED}),
    S.ENDED: frozenset(),
}
del S


class AgentState(enum.Enum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    PAUSED = "paused"


class Disposition(enum.Enum):
    """CDR dispositions, as Asterisk's Master.csv spells them."""

    ANSWERED = "ANSWERED"
    NO_ANSWER = "NO ANSWER"
    BUSY = "BUSY"
    FAILED = "FAILED"
    CONGESTION = "CONGESTION"


_counter = itertools.count(1)
#: random per process: ids stay unique across restarts and across engines sharing a clock
_BOOT = secrets.token_hex(3)


def new_interaction_id() -> str:
    """An id that sorts by creation time and is unique across restarts (it is the CDR ``uniqueid``).

    A counter, not ``uuid4`` per id: one fewer system call on the per-call hot path.
    """
    return f"{time.time():.6f}-{_BOOT}{next(_counter):x}"


@dataclass
class Interaction:
    """One conversation with a customer, on any channel.

    Channels create them; routing moves them between states; the store and CDR record them.
    """

    kind: InteractionKind
    direction: Direction
    from_: str
    to: str
    channel: str
    id: str = field(default_factory=new_interaction_id)
    state: InteractionState = InteractionState.NEW
    queue: str | None = None
    agent: str | None = None
    created: float = field(default_factory=time.time)
    answered: float | None = None
    ended: float | None = None
    caller_name: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[float, InteractionState]] = field(default_factory=list)

    def transition(self, new: InteractionState, *, now: float | None = None) -> None:
        """Move to ``new``; raises :class:`InvalidTransition` if the table forbids it."""
        if new not in INTERACTION_TRANSITIONS[self.state]:
            raise InvalidTransition(f"interaction {self.id}: {self.state.value} -> {new.value} not allowed")
        stamp = time.time() if now is None else now
        self.history.append((stamp, new))
        if new is InteractionState.ACTIVE and self.answered is None:
            self.answered = stamp
        if new is InteractionState.ENDED:
            self.ended = stamp
        self.state = new

    def to_json(self) -> dict[str, Any]:
        """The API representation (CONTRACT.md: id, kind, state, from, to, queue, agent...)."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "direction": self.direction.value,
            "state": self.state.value,
            "from": self.from_,
            "to": self.to,
            "queue": self.queue,
            "agent": self.agent,
            "channel": self.channel,
            "caller_name": self.caller_name,
            "created": self.created,
            "answered": self.answered,
            "ended": self.ended,
            # the latest call recording's file, once there is one (docs/media.md, Recording)
            **({"recording": self.attributes["recording"]} if "recording" in self.attributes else {}),
        }


@dataclass(frozen=True)
class Contact:
    """A customer as the CRM knows them."""

    id: str
    name: str = ""
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)
