"""Hook implementations of the email channel (entry point ``email`` in the ``centralita`` group)."""

from __future__ import annotations

import weakref
from typing import Any

from engine import (
    ChannelRegistry,
    ConfigSectionRegistry,
    MigrationRegistry,
    PluginContext,
    ServiceRegistry,
    hookimpl,
)
from engine.messaging import add_migrations

from ._channel import EmailChannel
from ._settings import EmailSettings
from ._voicemail_notify import VoicemailMailer

_channels: weakref.WeakSet[EmailChannel] = weakref.WeakSet()


def _make_channel(context: PluginContext) -> EmailChannel:
    channel = EmailChannel(context)
    _channels.add(channel)
    return channel


@hookimpl
def centralita_add_config_sections(registry: ConfigSectionRegistry) -> None:
    registry.add("email", EmailSettings)


@hookimpl
def centralita_register_migrations(registry: MigrationRegistry) -> None:
    add_migrations(registry)


@hookimpl
def centralita_register_channels(registry: ChannelRegistry) -> None:
    registry.add("email", _make_channel)


@hookimpl
def centralita_engine_started(engine: Any) -> None:
    for channel in list(_channels):
        if channel.engine is engine:
            channel.engine_started_nowait()


def _voicemail_mailer(context: PluginContext) -> VoicemailMailer | None:
    # Nothing to run without an [email] section or a [[voicemail]] box that has an address.
    mailer = VoicemailMailer(context)
    return mailer if mailer.enabled() else None


@hookimpl
def centralita_register_services(registry: ServiceRegistry) -> None:
    registry.add("email-voicemail", _voicemail_mailer)
