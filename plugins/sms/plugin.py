"""Hook implementations of the SMS channel (entry point ``sms`` in the ``centralita`` group)."""

from __future__ import annotations

import weakref
from typing import Any

from engine import ChannelRegistry, ConfigSectionRegistry, MigrationRegistry, PluginContext, hookimpl
from engine.messaging import add_migrations

from ._channel import SmsChannel
from ._settings import SmsSettings

_channels: weakref.WeakSet[SmsChannel] = weakref.WeakSet()


def _make_channel(context: PluginContext) -> SmsChannel:
    channel = SmsChannel(context)
    _channels.add(channel)
    return channel


@hookimpl
def centralita_add_config_sections(registry: ConfigSectionRegistry) -> None:
    registry.add("sms", SmsSettings)


@hookimpl
def centralita_register_migrations(registry: MigrationRegistry) -> None:
    add_migrations(registry)


@hookimpl
def centralita_register_channels(registry: ChannelRegistry) -> None:
    registry.add("sms", _make_channel)


@hookimpl
def centralita_engine_started(engine: Any) -> None:
    for channel in list(_channels):
        if channel.engine is engine:
            channel.engine_started_nowait()


@hookimpl
def centralita_engine_stopping(engine: Any) -> None:
    for channel in list(_channels):
        if channel.engine is engine:
            channel.engine_stopping_nowait()
