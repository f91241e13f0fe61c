"""Centralita's hardware drivers: voice modems (FXO lines), GSM modems, DTMF boards and headsets.

Every driver is a plugin (``hardware.<family>.plugin``); channels find devices through the engine's
device directory by capability and never import this package. Protocol cores (AT, V.253 DLE, SMS
PDUs, board frames) are sans-IO; ``_serial`` is the only module that touches tty file descriptors
and ``headset._audio`` the only one that touches PortAudio.
"""

from __future__ import annotations

from ._device import DeviceUnresponsive, HealthChanged, ReconnectPolicy, SerialDevice
from ._serial import SerialDisconnected, SerialSettings, SerialStream, open_serial_stream

__all__ = [
    "DeviceUnresponsive",
    "HealthChanged",
    "ReconnectPolicy",
    "SerialDevice",
    "SerialDisconnected",
    "SerialSettings",
    "SerialStream",
    "open_serial_stream",
]
