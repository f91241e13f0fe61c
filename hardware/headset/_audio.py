"""The only module that touches sounddevice/PortAudio. Importing it never fails: when PortAudio is
missing, :func:`audio_backend` reports the package to install instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["AudioBackend", "audio_backend"]

INSTALL_HINT = "apt-get install libportaudio2"


@dataclass
class AudioBackend:
    sd: Any
    error: str = ""

    def list_devices(self) -> list[dict[str, Any]]:
        if self.sd is None:
            return []
        out = []
        for index, info in enumerate(self.sd.query_devices()):
            out.append(
                {
                    "index": index,
                    "name": info["name"],
                    "inputs": info["max_input_channels"],
                    "outputs": info["max_output_channels"],
                    "rate": float(info["default_samplerate"]),
                }
            )
        return out

    def find(self, name: str) -> dict[str, Any] | None:
        """The first device whose name equals ``name``, else the first that contains it."""
        devices = [d for d in self.list_devices() if d["inputs"] > 0 and d["outputs"] > 0]
        for device in devices:
            if device["name"] == name:
                return device
        for device in devices:
            if name.lower() in str(device["name"]).lower():
                return device
        return None

    def rescan(self) -> None:
        """PortAudio lists devices once, at initialisation: re-initialise to see a replugged headset.
        Only safe while no stream is open."""
        if self.sd is None:
            return
        try:
            self.sd._terminate()
        finally:
            self.sd._initialize()


_BACKEND: AudioBackend | None = None


def audio_backend() -> AudioBackend:
    global _BACKEND
    if _BACKEND is None:
        try:
            import sounddevice
        except OSError as exc:  # the Python package is there, the PortAudio library is not
            _BACKEND = AudioBackend(None, f"PortAudio is not installed ({exc}); install it: {INSTALL_HINT}")
        except ImportError as exc:
            _BACKEND = AudioBackend(
                None, f"sounddevice is not installed ({exc}); install it: pip install sounddevice"
            )
        else:
            _BACKEND = AudioBackend(sounddevice)
    return _BACKEND
