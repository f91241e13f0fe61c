"""Centralita's engine: the public API for plugin authors and embedders.

Everything a plugin needs is importable from here; modules starting with ``_`` are private.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._bus import BusStatistics, EventBus
from ._config import Config, load_config
from ._context import PluginContext
from ._devices import DeviceDirectory
from ._errors import (
    ConfigError,
    DeviceBusyError,
    DeviceError,
    EngineError,
    InvalidTransition,
    LocalProtocolError,
    PluginError,
    RegistrationError,
    RemoteProtocolError,
    StartupError,
)
from ._events import CONTRACT_EVENT_NAMES, Event, safe_text
from ._model import (
    AgentState,
    Contact,
    Direction,
    Disposition,
    Interaction,
    InteractionKind,
    InteractionState,
)
from ._plugins import PLUGIN_GROUP, hookimpl
from ._registry import (
    ChannelRegistry,
    CliRegistry,
    CompliancePolicyRegistry,
    ConfigSectionRegistry,
    CrmRegistry,
    DeviceDriverRegistry,
    HttpRouteRegistry,
    IvrNodeRegistry,
    Migration,
    MigrationRegistry,
    ServiceRegistry,
)

__all__ = [
    "CONTRACT_EVENT_NAMES",
    "PLUGIN_GROUP",
    "AgentState",
    "BusStatistics",
    "ChannelRegistry",
    "CliRegistry",
    "CompliancePolicyRegistry",
    "Config",
    "ConfigError",
    "ConfigSectionRegistry",
    "Contact",
    "CrmRegistry",
    "DeviceBusyError",
    "DeviceDirectory",
    "DeviceDriverRegistry",
    "DeviceError",
    "Direction",
    "Disposition",
    "EngineError",
    "Event",
    "EventBus",
    "HttpRouteRegistry",
    "Interaction",
    "InteractionKind",
    "InteractionState",
    "InvalidTransition",
    "IvrNodeRegistry",
    "LocalProtocolError",
    "Migration",
    "MigrationRegistry",
    "PluginContext",
    "PluginError",
    "RegistrationError",
    "RemoteProtocolError",
    "ServiceRegistry",
    "StartupError",
    "__version__",
    "hookimpl",
    "load_config",
    "safe_text",
]
