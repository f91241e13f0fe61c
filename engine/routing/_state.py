"""The router's records: interactions waiting or in progress, agents, queues; and its error types."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ._config import AgentConfig, QueueConfig

__all__ = ["CallbackRequest", "NoSuchOffer", "RoutingError", "UnknownAgent", "UnknownInteraction"]

DEFAULT_HANDLE_TIME = 180.0


class RoutingError(Exception):
    """A local misuse of the router (an unknown id, a second accept). Races between a caller hanging up
    and an agent accepting surface as :class:`NoSuchOffer`; the engine answers them, it does not crash."""


class UnknownAgent(RoutingError):
    pass


class UnknownInteraction(RoutingError):
    pass


class NoSuchOffer(RoutingError):
    pass


@dataclass(frozen=True)
class CallbackRequest:
    """A caller's request to be called back, keeping their place in the queue.

    ``window`` is (earliest, latest) Unix time to dial; ``None`` means any time."""

    request_id: str
    number: str
    window: tuple[float, float] | None = None


@dataclass
class _Callback:
    request: CallbackRequest
    attempts: int = 0
    not_before: float = 0.0
    dialing: bool = False


@dataclass
class _Entry:
    id: str
    queue: str
    kind: str
    priority: int
    arrived: float
    seq: int
    attributes: dict[str, Any]
    joined: float
    original_position: int
    state: str = "waiting"           # waiting, offered, active, dialing
    offers: dict[str, float] = field(default_factory=dict)   # agent -> expiry
    offered_at: float = 0.0
    tried: dict[str, float] = field(default_factory=dict)  # agent who missed it -> not again before
    agent: str | None = None
    connected: float = 0.0
    ring_time: float = 0.0
    callback: _Callback | None = None
    next_announce: float | None = None

    @property
    def key(self) -> tuple[int, float, int, str]:
        return (-self.priority, self.arrived, self.seq, self.id)


@dataclass
class _Agent:
    config: AgentConfig
    state: str = "logged_out"        # logged_out, available, paused
    pause_reason: str = ""
    idle_since: float = 0.0
    reachable: bool = True
    missed: int = 0
    load: dict[str, int] = field(default_factory=dict)
    offers: dict[str, str] = field(default_factory=dict)      # interaction -> kind
    active: dict[str, str] = field(default_factory=dict)      # interaction -> kind
    wrapups: dict[str, tuple[str, float]] = field(default_factory=dict)  # interaction -> (kind, until)
    answered: int = 0
    talk_time: float = 0.0
    last_status: str = ""
    retired: bool = False
    id: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.id = self.config.id  # read on every decision: a plain attribute, not a property

    def busy_total(self) -> int:
        return sum(self.load.values())

    def can_take(self, kind: str) -> bool:
        if self.state != "available" or self.retired:
            return False
        if self.load.get(kind, 0) >= self.config.channels.get(kind, 0):
            return False
        if kind == "voice" and not self.reachable:
            return False
        if kind != "voice" and self.config.voice_blocks_others and self.load.get("voice", 0):
            return False
        return True

    def why_not(self, kind: str) -> str:
        if self.retired:
            return "removed from the configuration"
        if self.state == "logged_out":
            return "logged out"
        if self.state == "paused":
            return f"paused ({self.pause_reason})" if self.pause_reason else "paused"
        capacity = self.config.channels.get(kind, 0)
        if capacity == 0:
            return f"no {kind} capacity"
        if kind == "voice" and not self.reachable:
            return "voice endpoint not reachable"
        if kind != "voice" and self.config.voice_blocks_others and self.load.get("voice", 0):
            return "on a voice call that blocks other channels"
        in_wrapup = any(k == kind for k, _ in self.wrapups.values())
        if in_wrapup and self.load.get(kind, 0) >= capacity:
            return f"in wrap-up ({kind} {self.load.get(kind, 0)}/{capacity})"
        return f"busy ({kind} {self.load.get(kind, 0)}/{capacity})"

    def status(self) -> str:
        if self.state == "logged_out":
            return "logged_out"
        if self.state == "paused":
            return "paused"
        if self.active:
            return "busy"
        if self.offers:
            return "ringing"
        if self.wrapups:
            return "wrapup"
        return "available"

    def add_load(self, kind: str, delta: int) -> None:
        self.load[kind] = self.load.get(kind, 0) + delta


@dataclass
class _Queue:
    config: QueueConfig
    waiting: list[tuple[int, float, int, str]] = field(default_factory=list)  # sorted keys
    rr_last: str | None = None
    calls: dict[str, int] = field(default_factory=dict)
    talk: dict[str, float] = field(default_factory=dict)
    handle_times: deque[float] = field(default_factory=lambda: deque(maxlen=50))
    retired: bool = False
    order: dict[str, int] = field(default_factory=dict)
    pool: frozenset[str] = frozenset()   # members plus every relaxation step's added members
    # statistics
    joined: int = 0
    answered: int = 0
    abandoned: int = 0
    overflowed: int = 0

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        pool = list(self.config.members)
        for step in self.config.relax:
            pool.extend(m for m in step.add_members if m not in pool)
        self.order = {agent: i for i, agent in enumerate(pool)}
        self.pool = frozenset(pool)

    def mean_handle_time(self) -> float:
        if not self.handle_times:
            return DEFAULT_HANDLE_TIME
        return sum(self.handle_times) / len(self.handle_times)
