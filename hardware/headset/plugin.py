"""Registers the ``headset`` driver. Importing this never needs PortAudio: without it the headset
reports itself UNAVAILABLE with the package to install, and the engine starts anyway."""

from __future__ import annotations

from typing import Any

from engine import ChannelRegistry, DeviceDriverRegistry, hookimpl

from ._device import Headset


@hookimpl
def centralita_register_devices(registry: DeviceDriverRegistry) -> None:
    registry.add("headset", Headset)


def _headset_channel(context: Any) -> Any:
    """``headset:NAME`` agent endpoints; only when the configuration has headset devices."""
    devices = getattr(context.config, "devices", ()) or ()
    if not any(getattr(spec, "driver", "") == "headset" for spec in devices):
        return None
    from .channel import HeadsetChannel

    return HeadsetChannel(context)


@hookimpl
def centralita_register_channels(registry: ChannelRegistry) -> None:
    registry.add("headset", _headset_channel)
