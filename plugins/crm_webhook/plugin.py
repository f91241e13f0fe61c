"""Hook implementations of the webhook CRM (``[crm_webhook]`` section)."""

from __future__ import annotations

import weakref
from typing import Any

from engine import hookimpl

from . import _cli
from ._backend import WebhookCrm, WebhookCrmSettings
from ._outbox import MIGRATIONS

#: one webhook CRM per running engine (tests run several engines in one process)
_by_engine: weakref.WeakKeyDictionary[Any, WebhookCrm] = weakref.WeakKeyDictionary()


def _crm_for(context: Any) -> WebhookCrm | None:
    settings = context.config.section("crm_webhook")
    if settings is None:
        return None  # not configured: nothing to run
    crm = _by_engine.get(context.engine)
    if crm is None:
        crm = WebhookCrm(context.store, settings)
        _by_engine[context.engine] = crm
    return crm


@hookimpl
def centralita_add_config_sections(registry: Any) -> None:
    registry.add("crm_webhook", WebhookCrmSettings)


@hookimpl
def centralita_register_migrations(registry: Any) -> None:
    for migration in MIGRATIONS:
        registry.add(migration)


@hookimpl
def centralita_register_crm_backends(registry: Any) -> None:
    registry.add("webhook", _crm_for)


@hookimpl
def centralita_register_services(registry: Any) -> None:
    registry.add("crm-webhook", _crm_for)


@hookimpl
def centralita_interaction_ended(interaction: Any) -> None:
    for crm in list(_by_engine.values()):
        # an engine that has stopped (tests run several in one process) no longer takes records
        if not crm.stopped:
            crm.ended_nowait(interaction)


@hookimpl
def centralita_register_cli_commands(registry: Any) -> None:
    registry.add("crm-webhook-outbox", "show the webhook CRM's outbox; --redeliver-dead re-queues dead letters",
                 _cli.configure, _cli.run)
