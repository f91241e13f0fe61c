"""The SIP plugin's hook implementations (entry point ``sip = "plugins.sip.plugin"``)."""

from __future__ import annotations

from engine import hookimpl
from engine import ChannelRegistry, ConfigSectionRegistry, Migration, MigrationRegistry

from ._registrar import MIGRATIONS_SQL
from ._settings import SipSettings


@hookimpl
def centralita_add_config_sections(registry: ConfigSectionRegistry) -> None:
    registry.add("sip", SipSettings)


@hookimpl
def centralita_register_migrations(registry: MigrationRegistry) -> None:
    for version, sql in enumerate(MIGRATIONS_SQL, start=1):
        registry.add(Migration("sip", version, sql))


@hookimpl
def centralita_register_channels(registry: ChannelRegistry) -> None:
    from ._channel import SipChannel

    registry.add("sip", SipChannel)
