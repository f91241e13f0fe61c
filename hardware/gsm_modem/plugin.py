"""Registers the ``gsm-modem`` driver with the engine (it offers Capability.SMS)."""

from __future__ import annotations

from engine import DeviceDriverRegistry, hookimpl

from ._device import GsmModem


@hookimpl
def centralita_register_devices(registry: DeviceDriverRegistry) -> None:
    registry.add("gsm-modem", GsmModem)
