"""Registers the ``headset`` driver. Importing this never needs PortAudio: without it the headset
reports itself UNAVAILABLE with the package to install, and the engine starts anyway."""

from __future__ import annotations

from engine import DeviceDriverRegistry, hookimpl

from ._device import Headset


@hookimpl
def centralita_register_devices(registry: DeviceDriverRegistry) -> None:
    registry.add("headset", Headset)
