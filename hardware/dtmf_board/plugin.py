"""Registers the ``dtmf-board`` driver with the engine."""

from __future__ import annotations

from engine import DeviceDriverRegistry, hookimpl

from ._device import DtmfBoard


@hookimpl
def centralita_register_devices(registry: DeviceDriverRegistry) -> None:
    registry.add("dtmf-board", DtmfBoard)
