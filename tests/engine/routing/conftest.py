"""Shared helpers for the routing tests: a router built from TOML-like dicts that checks its
invariants after every input, and small event filters."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from engine.routing import Router, build_agents, build_queues


class CheckedRouter:
    """Wraps a Router: every input is followed by ``check_invariants()``; events are kept in ``log``."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.log: list[Any] = []
        router.check_invariants()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.router, name)
        if name in {"enqueue", "accept", "reject", "end", "login", "logout", "pause", "unpause",
                    "wrapup_done", "request_callback", "callback_result", "cancel_callback", "transfer",
                    "handle_timer", "configure", "restore", "set_reachable"}:
            def checked(*args: Any, **kwargs: Any) -> list[Any]:
                events = attr(*args, **kwargs)
                self.router.check_invariants()
                self.log.extend(events)
                return events
            return checked
        return attr

    def run_until(self, when: float) -> list[Any]:
        """Fire every timer due up to ``when`` in time order (a virtual clock)."""
        events: list[Any] = []
        while (t := self.router.next_timer()) is not None and t <= when:
            events.extend(self.handle_timer(t))
        return events


def of(events: list[Any], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def make(queues: list[dict[str, Any]], agents: list[dict[str, Any]], **kwargs: Any) -> CheckedRouter:
    raw = {"queues": queues, "agents": agents}
    return CheckedRouter(Router(build_queues(raw), build_agents(raw), **kwargs))


@pytest.fixture
def rt() -> SimpleNamespace:
    """``rt.make(queues, agents, **router_kwargs)`` and ``rt.of(events, EventClass)``."""
    return SimpleNamespace(make=make, of=of, CheckedRouter=CheckedRouter)
