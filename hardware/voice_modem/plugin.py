"""Registers the ``voice-modem`` driver with the engine."""

from __future__ import annotations

from engine import DeviceDriverRegistry, hookimpl

from ._device import VoiceModem


@hookimpl
def centralita_register_devices(registry: DeviceDriverRegistry) -> None:
    registry.add("voice-modem", VoiceModem)
