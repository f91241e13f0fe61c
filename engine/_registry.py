"""Registries that registration hooks fill (the tox pattern).

A registration hook receives one of these and calls ``add``. Duplicate names are refused with the name
of both plugins, so two plugins cannot silently shadow each other.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._errors import RegistrationError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named items, each remembered with the plugin that added it."""

    kind = "item"

    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._owners: dict[str, str] = {}
        #: Set by the engine around each plugin's registration call so errors can name it.
        self.current_plugin = "?"

    def add(self, name: str, item: T) -> None:
        if not name or not isinstance(name, str):
            raise RegistrationError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._items:
            raise RegistrationError(
                f"{self.kind} {name!r} registered twice (by {self._owners[name]} and {self.current_plugin})"
            )
        self._items[name] = item
        self._owners[name] = self.current_plugin

    def get(self, name: str) -> T | None:
        return self._items.get(name)

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())

    def owner(self, name: str) -> str:
        return self._owners[name]


class ConfigSectionRegistry(Registry[type]):
    """Plugins add the schema (a dataclass) of their own top-level config section: ``add("sip", SipConfig)``.

    A section declared with ``many=True`` is an array of tables (``[[campaigns]]``).
    """

    kind = "config section"

    def __init__(self) -> None:
        super().__init__()
        self.arrays: set[str] = set()

    def add(self, name: str, item: type, *, many: bool = False) -> None:  # type: ignore[override]
        super().add(name, item)
        if many:
            self.arrays.add(name)


class ChannelRegistry(Registry[Callable[..., Any]]):
    """``add("sip", factory)``: ``factory(context: PluginContext) -> Channel``."""

    kind = "channel"


class CrmRegistry(Registry[Callable[..., Any]]):
    """``add("sqlite", factory)``: ``factory(context) -> CrmBackend``."""

    kind = "CRM backend"


class ServiceRegistry(Registry[Callable[..., Any]]):
    """``add("name", factory)``: ``factory(context) -> Service`` started after channels."""

    kind = "service"


class DeviceDriverRegistry(Registry[Callable[..., Any]]):
    """``add("voice-modem", factory)``: ``factory(spec: DeviceSpec, context) -> Device``."""

    kind = "device driver"


class IvrNodeRegistry(Registry[Any]):
    """``add("weather", node_type)``: extra IVR node types for ``[[flows]]``."""

    kind = "IVR node type"


class CompliancePolicyRegistry(Registry[Any]):
    """``add("uk-ofcom", policy)``: dialer abandonment/calling-window policies."""

    kind = "compliance policy"


class AmdDetectorRegistry(Registry[Callable[..., Any]]):
    """``add("name", factory)``: answering-machine detectors; ``factory(campaign_settings)`` returns a
    new detector for one answered call. Campaigns choose one with ``amd = "name"``."""

    kind = "answering-machine detector"


@dataclass(frozen=True)
class Migration:
    """One schema step for a component's tables. Versions start at 1 and increase by one."""

    component: str
    version: int
    sql: str


class MigrationRegistry:
    """Plugins add schema migrations for their own tables: ``add(Migration("sip", 1, "CREATE ..."))``."""

    def __init__(self) -> None:
        self.migrations: list[Migration] = []
        self.current_plugin = "?"

    def add(self, migration: Migration) -> None:
        for existing in self.migrations:
            if (existing.component, existing.version) == (migration.component, migration.version):
                raise RegistrationError(f"migration {migration.component} v{migration.version} registered twice")
        self.migrations.append(migration)


@dataclass(frozen=True)
class CliCommand:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class CliRegistry(Registry[CliCommand]):
    """``add(name, help, configure, run)``: a ``centralita NAME`` subcommand.

    ``configure(parser)`` adds arguments; ``run(args) -> exit code`` does the work (it may call
    ``trio.run`` itself).
    """

    kind = "CLI command"

    def add(  # type: ignore[override]
        self,
        name: str,
        help: str,
        configure: Callable[[argparse.ArgumentParser], None],
        run: Callable[[argparse.Namespace], int],
    ) -> None:
        super().add(name, CliCommand(name, help, configure, run))


@dataclass(frozen=True)
class HttpRoute:
    prefix: str
    app: Callable[..., Any]
    public: bool = False


class HttpRouteRegistry(Registry[HttpRoute]):
    """``add(prefix, asgi_app, public=False)``: extra routes served by the console server."""

    kind = "HTTP route"

    def add(self, prefix: str, app: Callable[..., Any], public: bool = False) -> None:  # type: ignore[override]
        if not prefix.startswith("/") or prefix.startswith("/api/v1/"):
            raise RegistrationError(f"HTTP route prefix must start with '/' and not shadow the API, got {prefix!r}")
        super().add(prefix, HttpRoute(prefix, app, public))
