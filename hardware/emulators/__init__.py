"""Device emulators on pseudo-terminals: used by the tests, ``firmware-tests/`` and ``centralita run --demo``.

Each runs as a trio task (``await nursery.start(emulator.run)``), exposes the slave ``path`` and a
stable ``link`` (like ``/dev/serial/by-id``), and has a scripting API for tests.
"""

from __future__ import annotations

from .dtmf_board import DtmfBoardEmulator
from .gsm_modem import GsmModemEmulator, SentSms
from .voice_modem import VoiceModemEmulator

__all__ = ["DtmfBoardEmulator", "GsmModemEmulator", "SentSms", "VoiceModemEmulator"]
