"""What every serial device driver shares: health, events, port resolution and reconnect with backoff.

A driver subclasses :class:`SerialDevice` and writes ``_session(stream)``, which runs while the port
is open and returns or raises when it is not usable any more. ``run`` reopens with exponential backoff
for as long as the engine runs: an unplugged modem comes back by itself (by its ``/dev/serial/by-id``
link or its ``usb:VID:PID``, since ``ttyACMn`` may change on replug).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from engine import DeviceBusyError, DeviceError
from engine.abc import Device, DeviceHealth, DeviceSpec

from ._health_file import event_text, write_health_snapshot
from ._serial import SerialDisconnected, SerialSettings, open_serial_stream
from .discovery import resolve_port

__all__ = ["DeviceUnresponsive", "HealthChanged", "ReconnectPolicy", "SerialDevice"]

log = logging.getLogger("centralita.hardware")


class DeviceUnresponsive(DeviceError):
    """The device stopped answering (after resync and reset): reopen the port."""


@dataclass(frozen=True)
class HealthChanged:
    device: str
    health: DeviceHealth
    reason: str


@dataclass(frozen=True)
class ReconnectPolicy:
    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0


def _first_device_error(group: BaseExceptionGroup[DeviceError]) -> DeviceError:
    leaves: list[DeviceError] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        elif isinstance(exc, DeviceError):
            leaves.append(exc)

    walk(group)
    return leaves[0]


T = TypeVar("T")


def timings_with_options(base: T, options: Mapping[str, Any], device: str) -> T:
    """``base`` (a frozen dataclass of timings) with the ``[[devices]] options`` that name its fields.

    Values keep the field's type: an int or float for a number (never a bool), a bool only from a bool;
    anything else is a configuration error naming the device and the option.
    """
    values = {}
    for name, default in vars(base).items():
        if name not in options:
            values[name] = default
            continue
        given = options[name]
        if isinstance(default, bool):
            ok = isinstance(given, bool)
        else:
            ok = isinstance(given, int | float) and not isinstance(given, bool)
        if not ok:
            raise DeviceError(
                f"device {device}: option {name} must be {type(default).__name__}, got {given!r}"
            )
        values[name] = type(default)(given)
    return type(base)(**values)


class SerialDevice(Device):
    """Base of the serial drivers. Subclasses set ``capabilities`` and implement ``_session``."""

    def __init__(
        self,
        spec: DeviceSpec,
        context: Any = None,
        *,
        serial: SerialSettings | None = None,
        reconnect: ReconnectPolicy | None = None,
        event_buffer: int = 256,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.context = context
        self.serial_settings = serial or SerialSettings()
        self.reconnect = reconnect or ReconnectPolicy()
        self._health = DeviceHealth.STARTING
        self._health_reason = ""
        self._health_changed = trio.Event()
        self._event_send, self.events = trio.open_memory_channel[Any](event_buffer)
        self._listeners: list[Callable[[Any], None]] = []
        self.counters: dict[str, int] = {
            "connects": 0,
            "disconnects": 0,
            "open_failures": 0,
            "events_dropped": 0,
        }
        self.port_path = ""
        self._closed = False
        # a conformance test from the console pauses the session so the test can open the port
        self._testing = False
        self._resume = trio.Event()
        self._session_scope: trio.CancelScope | None = None
        self._session_ended = trio.Event()

    # ------------------------------------------------------------------ health and events
    def health(self) -> DeviceHealth:
        return self._health

    @property
    def health_reason(self) -> str:
        return self._health_reason

    def _set_health(self, health: DeviceHealth, reason: str = "") -> None:
        if health is self._health and reason == self._health_reason:
            return
        self._health, self._health_reason = health, reason
        log.info("device %s: %s%s", self.name, health.value, f" ({reason})" if reason else "")
        self._health_changed.set()
        self._health_changed = trio.Event()
        self._emit(HealthChanged(self.name, health, reason))
        bus = getattr(self.context, "bus", None)
        if bus is not None:
            # the reason may quote the device (CR LF, escapes): escaped so no consumer sees a forged line
            bus.publish("DeviceStateChange", Device=self.name, State=health.value, Reason=event_text(reason))
        self.write_health_snapshot()

    def write_health_snapshot(self) -> None:
        """Refresh what ``centralita devices`` shows for this device (health, model, signal...)."""
        write_health_snapshot(getattr(self.context, "data_dir", None), self.name, self._health.value, self.describe())

    async def wait_health(self, *wanted: DeviceHealth) -> DeviceHealth:
        while self._health not in wanted:
            await self._health_changed.wait()
        return self._health

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        """Call ``listener(event)`` synchronously for every event (it must not block or raise)."""
        self._listeners.append(listener)

    def _emit(self, event: Any) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug must not take the driver down
                log.exception("device %s: event listener failed", self.name)
        try:
            self._event_send.send_nowait(event)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.counters["events_dropped"] += 1

    def statistics(self) -> Mapping[str, Any]:
        return {"health": self._health.value, **self.counters}

    def describe(self) -> Mapping[str, Any]:
        return {
            "driver": self.spec.driver,
            "port": self.spec.port,
            "path": self.port_path,
            "reason": self._health_reason,
        }

    # ------------------------------------------------------------------ lifecycle
    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        # Started at once: a device that is not plugged in must not hold up the engine's start.
        task_status.started()
        delay = self.reconnect.initial
        while not self._closed:
            while self._testing:
                await self._resume.wait()
            try:
                path = resolve_port(self.spec.port)
                stream = await open_serial_stream(path, self.serial_settings)
            except DeviceBusyError as exc:
                self.counters["open_failures"] += 1
                self._set_health(DeviceHealth.UNHEALTHY, str(exc))
            except DeviceError as exc:
                self.counters["open_failures"] += 1
                self._set_health(DeviceHealth.DISCONNECTED, str(exc))
            else:
                self.port_path = path
                self.counters["connects"] += 1
                delay = self.reconnect.initial
                try:
                    self._session_ended = trio.Event()
                    with trio.CancelScope() as self._session_scope:
                        if self._testing:  # a test began while the port was opening: let it have the port
                            self._session_scope.cancel()
                        async with stream:
                            await self._session(stream)
                except* DeviceError as group:
                    error = _first_device_error(group)
                    if isinstance(error, SerialDisconnected):
                        self._set_health(DeviceHealth.DISCONNECTED, str(error))
                    else:
                        self._set_health(DeviceHealth.UNHEALTHY, str(error))
                    self.counters["disconnects"] += 1
                finally:
                    self._session_scope = None
                    self._session_ended.set()
                    await self._after_session()
            if self._closed:
                break
            if self._testing:
                continue  # straight back to waiting for the test to finish, no backoff
            await trio.sleep(delay)
            delay = min(delay * self.reconnect.factor, self.reconnect.maximum)

    async def _session(self, stream: Any) -> None:
        raise NotImplementedError

    async def self_test(self, *, timeout: float = 3.0) -> list[dict[str, Any]]:
        """Run this family's conformance checks (``centralita firmware-test``) on the configured port.

        The port is exclusive, so the running session is paused first (calls on this device end) and
        resumed afterwards. Interactive checks are skipped. ``ValueError`` when a test is already
        running or the family has no checks.
        """
        from .firmware_test import FAMILIES, run_family

        if self.spec.driver not in FAMILIES:
            raise ValueError(f"the {self.spec.driver} driver has no conformance checks")
        if self._testing:
            raise ValueError(f"a test of {self.name} is already running")
        self._testing, self._resume = True, trio.Event()
        try:
            if self._session_scope is not None:
                self._session_scope.cancel()
                await self._session_ended.wait()
            self._set_health(DeviceHealth.UNHEALTHY, "paused for a conformance test")
            try:
                path = self.port_path or resolve_port(self.spec.port)
                results = await run_family(self.spec.driver, path, profile=self.spec.profile, timeout=timeout)
            except DeviceError as exc:
                return [{"name": "open the port", "description": "the port can be opened", "passed": False,
                         "skipped": False, "detail": str(exc), "transcript": []}]
            return [{"name": r.name, "description": r.description, "passed": r.passed, "skipped": r.skipped,
                     "detail": r.detail, "transcript": [list(t) for t in r.transcript]} for r in results]
        finally:
            self._testing = False
            self._resume.set()
            self._set_health(DeviceHealth.STARTING, "reopening after the conformance test")

    async def _after_session(self) -> None:
        """Clean up per-connection state (end calls, fail pending sends). Must not block long."""

    async def aclose(self) -> None:
        self._closed = True
        await trio.lowlevel.checkpoint()
