"""Checks every plugin of a kind must pass; plugin authors call them from their own tests."""

from __future__ import annotations

import inspect
from types import ModuleType

from .. import hookspecs


def check_plugin_module(module: ModuleType | object) -> list[str]:
    """Problems with a plugin module: hook names that do not exist, or arguments a spec does not offer.

    pluggy validates this too, but only when registered; this gives all problems at once with the fix.
    """
    problems: list[str] = []
    specs = {n: getattr(hookspecs, n) for n in dir(hookspecs) if n.startswith("centralita_")}
    for name in dir(module):
        if not name.startswith("centralita_"):
            continue
        impl = getattr(module, name)
        spec = specs.get(name)
        if spec is None:
            problems.append(f"{name}: no such hook (known: {', '.join(sorted(specs))})")
            continue
        allowed = set(inspect.signature(spec).parameters)
        extra = set(inspect.signature(impl).parameters) - allowed
        if extra:
            problems.append(f"{name}: arguments {sorted(extra)} are not offered (available: {sorted(allowed)})")
        if not hasattr(impl, "centralita_impl"):
            problems.append(f"{name}: missing the @engine.hookimpl decorator")
    return problems


def check_channel(channel: object) -> list[str]:
    """Structural problems of a channel object: the ABC, the kinds it carries, what voice channels need."""
    from .._model import InteractionKind
    from ..abc import Channel, MessagingChannel, VoiceChannel

    problems: list[str] = []
    if not isinstance(channel, Channel):
        return [f"{type(channel).__name__} is not an engine.abc.Channel"]
    kinds = getattr(channel, "kinds", frozenset())
    if not kinds or not all(isinstance(k, InteractionKind) for k in kinds):
        problems.append("kinds must be a non-empty set of engine.InteractionKind")
    if InteractionKind.VOICE in kinds and not isinstance(channel, VoiceChannel):
        problems.append("a channel carrying voice must be an engine.abc.VoiceChannel")
    if isinstance(channel, VoiceChannel) and not getattr(channel, "schemes", None):
        problems.append("a voice channel must declare the endpoint schemes it rings (schemes = {'sip'})")
    if kinds - {InteractionKind.VOICE} and not isinstance(channel, MessagingChannel):
        problems.append("a channel carrying messages must be an engine.abc.MessagingChannel")
    if not isinstance(getattr(channel, "name", None), str) or not channel.name:  # type: ignore[attr-defined]
        problems.append("a channel needs a name")
    return problems


async def check_service_lifecycle(service: object, *, timeout: float = 10.0) -> list[str]:
    """Run ``service`` the way the engine does: it must report started, stop on cancel, close twice."""
    import trio

    problems: list[str] = []
    try:
        with trio.fail_after(timeout):
            async with trio.open_nursery() as nursery:
                await nursery.start(service.run)  # type: ignore[attr-defined]
                if hasattr(service, "ready") and not service.ready():  # type: ignore[attr-defined]
                    problems.append("ready() is false after task_status.started()")
                nursery.cancel_scope.cancel()
    except trio.TooSlowError:
        problems.append(f"run() did not call task_status.started() within {timeout}s")
    except Exception as exc:  # the service's own failure is the finding
        problems.append(f"run() raised {type(exc).__name__}: {exc}")
    for attempt in (1, 2):
        try:
            await service.aclose()  # type: ignore[attr-defined]
        except Exception as exc:
            problems.append(f"aclose() call {attempt} raised {type(exc).__name__}: {exc} (it must be idempotent)")
    return problems
