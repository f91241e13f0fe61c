"""The engine's error hierarchy.

Errors say who is at fault: a *peer* that sent garbage (its error carries the reply it deserves) is a
different type from a *local* misuse or a configuration problem. Foreign exceptions are translated at
the I/O boundary, never leaked through the public API.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(EngineError):
    """The configuration is invalid.

    ``problems`` holds one line per problem, already formatted as
    ``FILE:LINE: section.key: what is wrong (expected ..., got ...)``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems) if self.problems else "invalid configuration")


class PluginError(EngineError):
    """A plugin failed to load, to register, or misbehaved. ``plugin`` names it."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}")


class RegistrationError(EngineError):
    """A plugin registered something twice, or something that does not fit the registry."""


class StartupError(EngineError):
    """The engine cannot start (port in use, unwritable data directory...). The message says the fix."""


class LocalProtocolError(EngineError):
    """We were asked to do something the protocol does not allow: a bug on our side."""


class RemoteProtocolError(EngineError):
    """A peer sent something invalid. ``reply`` is what the protocol says to answer, if anything."""

    def __init__(self, message: str, *, reply: object | None = None) -> None:
        self.reply = reply
        super().__init__(message)


class DeviceError(EngineError):
    """A hardware device failed."""


class DeviceBusyError(DeviceError):
    """The device is already opened by another process."""


class InvalidTransition(LocalProtocolError):
    """A state machine was asked for a transition its table does not allow."""
