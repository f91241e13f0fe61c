"""Hook implementations of the web chat channel (entry point ``chat`` in the ``centralita`` group)."""

from __future__ import annotations

import weakref
from typing import Any

from engine import (
    ChannelRegistry,
    ConfigSectionRegistry,
    HttpRouteRegistry,
    MigrationRegistry,
    PluginContext,
    hookimpl,
)
from engine.messaging import add_migrations

from ._channel import ChatChannel
from ._settings import ChatSettings
from ._web import PREFIX, ChatWeb

_channels: weakref.WeakSet[ChatChannel] = weakref.WeakSet()
_latest: list[ChatChannel] = []


def _make_channel(context: PluginContext) -> ChatChannel:
    channel = ChatChannel(context)
    _channels.add(channel)
    _latest[:] = [channel]
    return channel


@hookimpl
def centralita_add_config_sections(registry: ConfigSectionRegistry) -> None:
    registry.add("chat", ChatSettings)


@hookimpl
def centralita_register_migrations(registry: MigrationRegistry) -> None:
    add_migrations(registry)


@hookimpl
def centralita_register_channels(registry: ChannelRegistry) -> None:
    registry.add("chat", _make_channel)


@hookimpl
def centralita_register_http_routes(registry: HttpRouteRegistry) -> None:
    # Called once per engine, right after that engine built its channels: the latest one is ours.
    if _latest:
        registry.add(PREFIX, ChatWeb(_latest[0]), public=True)


@hookimpl
def centralita_engine_started(engine: Any) -> None:
    for channel in list(_channels):
        if channel.engine is engine:
            channel.engine_started_nowait()
