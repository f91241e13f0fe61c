"""What a plugin's factory receives: its settings and the engine objects it may use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._bus import EventBus
    from ._config import Config
    from ._devices import DeviceDirectory
    from ._engine import Engine
    from .media import MediaEngine, PromptLibrary
    from .store import Store


@dataclass
class PluginContext:
    """Handed to every channel, service, CRM and device factory.

    ``settings`` is the plugin's own validated config section (or None when the file has none);
    ``engine`` is the running :class:`engine.Engine` (create and end interactions, route them, ask for
    agents); ``devices`` finds devices by capability without importing drivers; ``media`` allocates RTP
    legs, bridges and records (``engine.media``), ``prompts`` finds prompt files by name and language.
    """

    plugin: str
    name: str
    settings: Any
    config: Config
    bus: EventBus
    store: Store
    engine: Engine
    data_dir: Path
    devices: DeviceDirectory
    #: the engine's media framework: RTP legs, bridges, conferences, recording (see ``engine.media``)
    media: MediaEngine | None = None
    #: prompts by name and language (``engine.media.PromptLibrary``)
    prompts: PromptLibrary | None = None
