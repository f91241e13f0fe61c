"""The device directory: running devices, found by capability (a channel never imports a driver)."""

from __future__ import annotations

from .abc import Capability, Device


class DeviceDirectory:
    def __init__(self) -> None:
        self._devices: dict[str, Device] = {}

    def add(self, name: str, device: Device) -> None:
        self._devices[name] = device

    def get(self, name: str) -> Device | None:
        return self._devices.get(name)

    def with_capability(self, capability: Capability) -> list[Device]:
        return [d for d in self._devices.values() if capability in d.capabilities]

    def items(self) -> list[tuple[str, Device]]:
        return list(self._devices.items())
