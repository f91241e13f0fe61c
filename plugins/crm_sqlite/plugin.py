"""Hook implementations of the built-in CRM (``[crm]`` section)."""

from __future__ import annotations

import weakref
from typing import Any

from engine import hookimpl

from ._backend import MIGRATIONS, CrmSettings, SqliteCrm

#: one CRM per running engine (tests run several engines in one process)
_by_engine: weakref.WeakKeyDictionary[Any, SqliteCrm] = weakref.WeakKeyDictionary()


def _crm_for(context: Any) -> SqliteCrm:
    crm = _by_engine.get(context.engine)
    if crm is None:
        crm = SqliteCrm(context.store, context.config.section("crm"))
        _by_engine[context.engine] = crm
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
