"""Run services under supervision: restart with exponential backoff, or stop the engine if critical.

A plugin's service that crashes is logged with its name and traceback and started again after a delay
that doubles up to a maximum (reset after a healthy run). A ``critical`` service that crashes stops the
engine with a clear message instead. Cancellation always propagates.
"""

from __future__ import annotations

import errno
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import trio

from ._errors import EngineError, StartupError
from .abc import Service

log = logging.getLogger("centralita.services")


class CriticalServiceFailed(EngineError):
    def __init__(self, name: str, error: BaseException) -> None:
        self.service = name
        super().__init__(f"critical service {name!r} failed: {type(error).__name__}: {error}")


@dataclass
class ServiceState:
    name: str
    service: Service
    plugin: str
    started: bool = False
    running: bool = False
    restarts: int = 0
    last_error: str | None = None
    history: list[str] = field(default_factory=list)
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "plugin": self.plugin,
            "running": self.running,
            "ready": self.running and self.service.ready(),
            "restarts": self.restarts,
            "last_error": self.last_error,
            "critical": getattr(self.service, "critical", False),
        }


class Supervisor:
    """Starts services in order in the given nursery and keeps them running."""

    def __init__(self, *, backoff: float = 0.5, backoff_max: float = 30.0, healthy_after: float = 60.0) -> None:
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.healthy_after = healthy_after
        self.states: list[ServiceState] = []

    async def start(self, nursery: trio.Nursery, service: Service, *, name: str, plugin: str) -> ServiceState:
        """Start ``service`` and wait until it reports started (or fails its first start)."""
        state = ServiceState(name, service, plugin)
        self.states.append(state)
        await nursery.start(self._supervise, state)
        return state

    async def stop_all(self) -> None:
        """Stop services in reverse start order, each fully closed before the next."""
        for state in reversed(self.states):
            state.scope.cancel()
            await state.done.wait()

    async def _supervise(self, state: ServiceState, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with state.scope:
                await self._supervise_loop(state, task_status)
        finally:
            state.done.set()

    async def _supervise_loop(self, state: ServiceState, task_status: trio.TaskStatus[None]) -> None:
        delay = self.backoff
        first = True
        while True:
            began = trio.current_time()
            try:
                try:
                    async with trio.open_nursery() as inner:
                        await inner.start(self._run_once, state)
                        if first:
                            first = False
                            task_status.started()
                finally:
                    state.running = False
                    with trio.CancelScope(shield=True), trio.move_on_after(5):
                        try:
                            await state.service.aclose()
                        except Exception:
                            log.exception("service %s: aclose failed", state.name)
            except trio.Cancelled:
                raise
            except (StartupError, CriticalServiceFailed):
                raise
            except Exception as exc:
                error: BaseException = exc
                leaves = _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
                # a single wrapped error is the interesting one; the group is only structure
                error = leaves[0] if len(leaves) == 1 else exc
                if first:
                    startup = next((e for e in leaves if isinstance(e, StartupError)), None)
                    if startup is not None:
                        raise startup from None
                    bind = next((e for e in leaves if isinstance(e, OSError) and e.errno in _BIND_ERRORS), None)
                    if bind is not None:
                        raise StartupError(
                            f"{state.name} (plugin {state.plugin}) cannot start: {bind}; another program may be "
                            "using that address: stop it, or change the listen address in the configuration"
                        ) from None
                state.last_error = f"{type(error).__name__}: {error}"
                state.history.append(state.last_error)
                if getattr(state.service, "critical", False):
                    log.critical("critical service %s (%s) failed; stopping the engine", state.name, state.plugin,
                                 exc_info=error)
                    raise CriticalServiceFailed(state.name, error) from error
                log.error("service %s (plugin %s) crashed; restarting in %.1fs", state.name, state.plugin, delay,
                          exc_info=error)
            else:
                log.warning("service %s returned; restarting in %.1fs", state.name, delay)
            if first:
                # it never came up: tell the engine it "started" so start-up goes on without it
                first = False
                task_status.started()
            if trio.current_time() - began > self.healthy_after:
                delay = self.backoff
            state.restarts += 1
            await trio.sleep(delay)
            delay = min(self.backoff_max, delay * 2 if delay > 0 else math.inf)

    @staticmethod
    async def _run_once(state: ServiceState, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        class _Status:
            def started(self, value: Any = None) -> None:
                state.running = True
                task_status.started()

        await state.service.run(task_status=_Status())  # type: ignore[arg-type]
        # run() returned normally: that counts as the service stopping


_BIND_ERRORS = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_leaves(exc))
        else:
            out.append(exc)
    return out
