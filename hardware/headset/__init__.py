"""Headset driver (sounddevice/PortAudio). Imports without PortAudio; see :func:`audio_backend`."""

from ._audio import AudioBackend, audio_backend
from ._device import Headset

__all__ = ["AudioBackend", "Headset", "audio_backend"]
