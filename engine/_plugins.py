"""Plugin discovery and the typed façade over ``pm.hook``.

Plugins come from the ``centralita`` entry-point group, in-tree ones included. A plugin that fails to
import, or whose registration hook raises, is recorded with its error and left out (unless config says
it is required); the engine starts without it.
"""

from __future__ import annotations

import importlib.metadata
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from . import hookspecs
from ._errors import PluginError
from ._registry import MigrationRegistry, Registry

if TYPE_CHECKING:
    from ._config import Config
    from ._events import Event
    from ._model import Interaction

log = logging.getLogger("centralita.plugins")

PLUGIN_GROUP = "centralita"
hookimpl = pluggy.HookimplMarker(hookspecs.PROJECT)

R = TypeVar("R", Registry[Any], MigrationRegistry)


@dataclass
class PluginInfo:
    """What ``centralita plugins`` and ``/api/v1/status`` show about one plugin."""

    name: str
    kind: str = "plugin"
    version: str = ""
    enabled: bool = True
    loaded: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "enabled": self.enabled,
            "loaded": self.loaded,
            "error": self.error,
        }


def _kind_of(module_name: str) -> str:
    if module_name.startswith("hardware."):
        return "device"
    if "crm" in module_name:
        return "crm"
    if module_name.startswith("plugins."):
        return "channel"
    return "plugin"


class PluginManager:
    """Owns the pluggy manager, what was discovered and what failed."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.hooks = Hooks(self)

    def register(self, module: ModuleType | object, name: str, *, kind: str = "plugin", version: str = "") -> None:
        """Register an already-imported plugin (tests and ``engine.testing`` use this)."""
        info = self.infos.setdefault(name, PluginInfo(name, kind=kind, version=version))
        try:
            self.pm.register(module, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            info.error = f"invalid plugin: {exc}"
            log.error("plugin %s rejected: %s", name, exc)
            return
        info.loaded = True

    def load_entry_points(self, *, disabled: Sequence[str] = ()) -> None:
        """Import every ``centralita`` entry point except the disabled ones; record failures."""
        for ep in sorted(importlib.metadata.entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            version = dist.version if dist is not None else ""
            info = PluginInfo(ep.name, kind=_kind_of(ep.value), version=version)
            self.infos[ep.name] = info
            if ep.name in disabled:
                info.enabled = False
                self.pm.set_blocked(ep.name)
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not stop the engine
                info.error = f"import failed: {type(exc).__name__}: {exc}"
                log.error("plugin %s failed to import:\n%s", ep.name, traceback.format_exc())
                continue
            self.register(module, ep.name, kind=info.kind, version=version)

    def check_required(self, required: Sequence[str]) -> None:
        for name in required:
            info = self.infos.get(name)
            if info is None:
                raise PluginError(name, "is required by [plugins] required but is not installed")
            if not info.enabled:
                raise PluginError(name, "is required by [plugins] required but disabled in [plugins] disable")
            if not info.loaded or info.error:
                raise PluginError(name, f"is required but failed: {info.error}")

    def fail(self, name: str, message: str) -> None:
        """Record that plugin ``name`` misbehaved and unregister it."""
        info = self.infos.setdefault(name, PluginInfo(name))
        info.error = message
        info.loaded = False
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)

    def call_registration(self, hook_name: str, registry: R, *, required: Sequence[str] = ()) -> R:
        """Call a registration hook plugin by plugin, so one raising is isolated and named."""
        caller = getattr(self.pm.hook, hook_name)
        for impl in list(caller.get_hookimpls()):
            registry.current_plugin = impl.plugin_name
            try:
                impl.function(registry)
            except Exception as exc:
                if impl.plugin_name in required:
                    raise PluginError(impl.plugin_name, f"{hook_name} raised {type(exc).__name__}: {exc}") from exc
                log.error("plugin %s: %s raised:\n%s", impl.plugin_name, hook_name, traceback.format_exc())
                self.fail(impl.plugin_name, f"{hook_name} raised {type(exc).__name__}: {exc}")
        registry.current_plugin = "?"
        return registry

    def plugin_list(self) -> list[PluginInfo]:
        return sorted(self.infos.values(), key=lambda i: i.name)


class Hooks:
    """Typed calls into the plugins. The engine never touches ``pm.hook`` directly."""

    def __init__(self, manager: PluginManager) -> None:
        self._m = manager

    def _safe_notify(self, hook: Callable[..., Any], **kwargs: Any) -> None:
        try:
            hook(**kwargs)
        except Exception:  # a notification must never take the core down
            log.exception("a plugin's notification hook raised")

    # registration
    def add_config_sections(self, registry: R) -> R:
        return self._m.call_registration("centralita_add_config_sections", registry)

    def register(self, hook_name: str, registry: R, *, required: Sequence[str] = ()) -> R:
        return self._m.call_registration(hook_name, registry, required=required)

    # decisions
    def choose_agent(self, interaction: Interaction, queue: str, candidates: Sequence[str]) -> str | None:
        choice = self._m.pm.hook.centralita_choose_agent(interaction=interaction, queue=queue, candidates=candidates)
        if choice is not None and choice not in candidates:
            log.warning("centralita_choose_agent returned %r, not a candidate; ignored", choice)
            return None
        return choice  # type: ignore[no-any-return]

    def interaction_priority(self, interaction: Interaction) -> int | None:
        return self._m.pm.hook.centralita_interaction_priority(interaction=interaction)  # type: ignore[no-any-return]

    def allow_dial(self, number: str, caller: str, purpose: str) -> bool:
        verdict = self._m.pm.hook.centralita_allow_dial(number=number, caller=caller, purpose=purpose)
        return verdict is not False

    # notifications
    def configure(self, config: Config) -> None:
        self._m.pm.hook.centralita_configure.call_historic(kwargs={"config": config})

    def engine_started(self, engine: Any) -> None:
        self._safe_notify(self._m.pm.hook.centralita_engine_started, engine=engine)

    def engine_stopping(self, engine: Any) -> None:
        self._safe_notify(self._m.pm.hook.centralita_engine_stopping, engine=engine)

    def event(self, event: Event) -> None:
        self._safe_notify(self._m.pm.hook.centralita_event, event=event)

    def interaction_ended(self, interaction: Interaction) -> None:
        self._safe_notify(self._m.pm.hook.centralita_interaction_ended, interaction=interaction)
