"""What the dashboard warns about: a bounded list of active alarms, and since when each agent has been
in their current state.

Alarms come from two places:

- events on the bus (a recording that stopped because the disk is full or unwritable, a SIP trunk that
  failed, a phone that stopped answering): raised when the event arrives, cleared by the event that
  says it recovered (the trunk registered again, the phone is reachable again) or by a supervisor;
- the engine's status, read when a page is drawn (a device driver that is unhealthy or disconnected,
  a plugin that failed to load, a service that is not ready after an error): these clear themselves
  as soon as the status says it is fine again.

Event and field values come from outside (trunk names, device ids, error texts): they are kept as
plain, length-limited text and escaped where they are shown.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._events import Event

log = logging.getLogger("centralita.console.alarms")

MAX_ALARMS = 200
MAX_AGENTS = 10_000
SEVERITIES = ("critical", "error", "warning")
BAD_DEVICE_HEALTH = {"degraded": "warning", "unhealthy": "error", "disconnected": "error"}


def _text(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    return text[:limit]


@dataclass
class Alarm:
    key: str
    severity: str
    source: str
    message: str
    since: float
    count: int = 1
    clearable: bool = True  # raised by an event: a supervisor may clear it by hand

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "severity": self.severity, "source": self.source, "message": self.message,
                "since": self.since, "count": self.count, "clearable": self.clearable}


class ActiveAlarms:
    """Active alarms from bus events, at most ``limit`` (the oldest go first, and are counted)."""

    def __init__(self, *, limit: int = MAX_ALARMS, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.clock = clock
        self._active: OrderedDict[str, Alarm] = OrderedDict()
        self.dropped = 0
        #: agent -> (status, since): the last QueueMemberStatus seen while the console runs
        self.agent_since: OrderedDict[str, tuple[str, float]] = OrderedDict()

    # ------------------------------------------------------------------------------------ events

    def listener(self, event: Event) -> None:
        """For ``bus.add_listener``: cheap and never raises (it runs inside ``publish``)."""
        try:
            self._on(event)
        except Exception:  # a bad event must never break the publisher
            log.exception("alarm tracking skipped an event it could not read")

    def _on(self, event: Event) -> None:
        f = event.fields
        name = event.event
        if name == "RecordingFailed":
            self.raise_("recording", "error", "recording",
                        f"A recording stopped: {_text(f.get('Cause'))} (the call went on). Check the recordings disk.",
                        at=event.timestamp)
        elif name == "SipTrunkStatus":
            trunk = _text(f.get("Trunk"), 80)
            if f.get("State") == "failed":
                status = f.get("Status")
                detail = _text(f.get("Error")) + (f" (SIP {status})" if isinstance(status, int) and status else "")
                self.raise_(f"trunk:{trunk}", "critical", "trunk", f"SIP trunk {trunk} failed: {detail}", at=event.timestamp)
            elif f.get("State") == "registered":
                self.clear(f"trunk:{trunk}")
        elif name == "DeviceStateChange":
            device = _text(f.get("Device"), 120)
            if f.get("State") == "UNAVAILABLE":
                self.raise_(f"endpoint:{device}", "warning", "phone", f"{device} is not reachable (unregistered or not answering)",
                            at=event.timestamp)
            elif f.get("State") == "NOT_INUSE":
                self.clear(f"endpoint:{device}")
        elif name == "QueueMemberStatus":
            agent, status = _text(f.get("Agent"), 128), _text(f.get("Status"), 32)
            if agent and status:
                previous = self.agent_since.get(agent)
                if previous is None or previous[0] != status:
                    self.agent_since[agent] = (status, event.timestamp)
                    self.agent_since.move_to_end(agent)
                    while len(self.agent_since) > MAX_AGENTS:
                        self.agent_since.popitem(last=False)

    def raise_(self, key: str, severity: str, source: str, message: str, *, at: float | None = None) -> None:
        alarm = self._active.get(key)
        if alarm is not None:
            alarm.count += 1
            alarm.message = message
            return
        self._active[key] = Alarm(key, severity, source, message, at if at is not None else self.clock())
        while len(self._active) > self.limit:
            self._active.popitem(last=False)
            self.dropped += 1

    def clear(self, key: str) -> bool:
        return self._active.pop(key, None) is not None

    # ------------------------------------------------------------------------------------ views

    def active(self, status: Mapping[str, Any] | None = None) -> list[Alarm]:
        """The event alarms plus those the engine's ``status()`` shows now, worst first, then oldest."""
        alarms = list(self._active.values())
        if status:
            alarms += status_alarms(status, now=self.clock())
        return sorted(alarms, key=lambda a: (SEVERITIES.index(a.severity) if a.severity in SEVERITIES else 9, a.since))


def status_alarms(status: Mapping[str, Any], *, now: float) -> list[Alarm]:
    """Alarms read from ``EngineAPI.status()``: unhealthy devices, failed plugins, failing services."""
    out = []
    devices = status.get("devices")
    if isinstance(devices, Mapping):
        for name, device in list(devices.items())[:MAX_ALARMS]:
            health = device.get("health") if isinstance(device, Mapping) else None
            if health in BAD_DEVICE_HEALTH:
                detail = _text(device.get("last_error") or device.get("error") or "")
                out.append(Alarm(f"device:{_text(name, 80)}", BAD_DEVICE_HEALTH[health], "device",
                                 f"Device {_text(name, 80)} is {health}" + (f": {detail}" if detail else ""), now, clearable=False))
    for plugin in (status.get("plugins") or [])[:MAX_ALARMS]:
        if isinstance(plugin, Mapping) and plugin.get("error"):
            name = _text(plugin.get("name"), 80)
            out.append(Alarm(f"plugin:{name}", "error", "plugin", f"Plugin {name} failed: {_text(plugin.get('error'))}", now,
                             clearable=False))
    for service in (status.get("services") or [])[:MAX_ALARMS]:
        if isinstance(service, Mapping) and service.get("ready") is False and service.get("last_error"):
            name = _text(service.get("name"), 80)
            out.append(Alarm(f"service:{name}", "error", "service",
                             f"Service {name} is not ready: {_text(service.get('last_error'))}", now, clearable=False))
    return out
