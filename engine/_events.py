"""Engine events: what the event bus carries and ``WS /api/v1/events`` sends.

Names follow Asterisk AMI/ARI where the concept exists (CONTRACT.md). Field names follow AMI too
(``Queue``, ``Position``, ``CallerIDNum``, ``Agent``, ``HoldTime``, ``Cause``...). Values that came from
outside (caller ids, display names, message text) are carried as plain strings; JSON encoding escapes
them for the wire and :func:`safe_text` escapes them for logs.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

#: The AMI/ARI names CONTRACT.md fixes. Plugins may publish others (prefix them with the plugin's name,
#: e.g. ``SipSecurityEvent``); these are the ones consumers can rely on.
CONTRACT_EVENT_NAMES = frozenset(
    {
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "AgentCalled",
        "AgentRingNoAnswer",
        "AgentConnect",
        "AgentComplete",
        "QueueMemberStatus",
        "QueueMemberPause",
        "Newchannel",
        "Hangup",
        "DTMFEnd",
        "DeviceStateChange",
        "MessageReceived",
    }
)


def _freeze(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(fields))


@dataclass(frozen=True)
class Event:
    """One event. ``fields`` is read-only; ``interaction`` is the interaction id it concerns, if any."""

    event: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    interaction: str | None = None
    timestamp: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if not self.event or not self.event.isidentifier():
            raise ValueError(f"event name must be an identifier, got {self.event!r}")
        if "event" in self.fields or "timestamp" in self.fields:
            raise ValueError("fields may not override 'event' or 'timestamp'")
        object.__setattr__(self, "fields", _freeze(self.fields))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.event,
            "timestamp": _dt.datetime.fromtimestamp(self.timestamp, _dt.UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
        if self.interaction is not None:
            out["interaction"] = self.interaction
        out.update(self.fields)
        return out


def safe_text(value: object, limit: int = 200) -> str:
    """Escape attacker-controlled text for a log line: no control characters, bounded length."""
    text = str(value)
    escaped = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    if len(escaped) > limit:
        escaped = escaped[:limit] + "..."
    return escaped
