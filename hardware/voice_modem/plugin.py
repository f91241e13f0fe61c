"""Registers the ``voice-modem`` driver and the ``fxo`` channel (calls on analog lines) with the engine."""

from __future__ import annotations

from typing import Any

from engine import ChannelRegistry, DeviceDriverRegistry, hookimpl

from ._device import VoiceModem


def _fxo_channel(context: Any) -> Any:
    """The channel only runs when the configuration has voice-modem devices."""
    devices = getattr(context.config, "devices", ()) or ()
    if not any(getattr(spec, "driver", "") == "voice-modem" for spec in devices):
        return None
    from .channel import FxoChannel

    return FxoChannel(context)


@hookimpl
def centralita_register_devices(registry: DeviceDriverRegistry) -> None:
    registry.add("voice-modem", VoiceModem)


@hookimpl
def centralita_register_channels(registry: ChannelRegistry) -> None:
    registry.add("fxo", _fxo_channel)
