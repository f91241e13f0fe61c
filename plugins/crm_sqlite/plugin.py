"""Hook implementations of the built-in CRM (``[crm]`` section)."""

from __future__ import annotations

import weakref
from typing import Any

from engine import hookimpl

from . import _cli
from ._backend import MIGRATIONS, CrmSettings, SqliteCrm
from ._web import CrmWeb

#: one CRM per running engine (tests run several engines in one process)
_by_engine: weakref.WeakKeyDictionary[Any, SqliteCrm] = weakref.WeakKeyDictionary()
#: the CRM an engine built during its start-up, until that engine registers its HTTP routes (which it
#: does right after building its CRM backends): how the route finds its own engine's CRM
_awaiting_routes: list[SqliteCrm] = []


def _crm_for(context: Any) -> SqliteCrm:
    crm = _by_engine.get(context.engine)
    if crm is None:
        crm = SqliteCrm(context.store, context.config.section("crm"))
        _by_engine[context.engine] = crm
        _awaiting_routes[:] = [crm]
    return crm


@hookimpl
def centralita_add_config_sections(registry: Any) -> None:
    registry.add("crm", CrmSettings)


@hookimpl
def centralita_register_migrations(registry: Any) -> None:
    for migration in MIGRATIONS:
        registry.add(migration)


@hookimpl
def centralita_register_crm_backends(registry: Any) -> None:
    registry.add("sqlite", _crm_for)


@hookimpl
def centralita_register_services(registry: Any) -> None:
    registry.add("crm-sqlite", _crm_for)


@hookimpl
def centralita_interaction_priority(interaction: Any) -> int | None:
    for crm in list(_by_engine.values()):
        priority = crm.priority(interaction)
        if priority is not None:
            return priority
    return None


@hookimpl
def centralita_interaction_ended(interaction: Any) -> None:
    for crm in list(_by_engine.values()):
        crm.ended_nowait(interaction)


@hookimpl
def centralita_register_http_routes(registry: Any) -> None:
    if _awaiting_routes:
        registry.add("/crm", CrmWeb(_awaiting_routes.pop()))


@hookimpl
def centralita_register_cli_commands(registry: Any) -> None:
    registry.add("crm", "import or export the built-in CRM's contacts as CSV", _cli.configure, _cli.run)
