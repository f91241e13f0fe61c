"""Voice modem as an analog (FXO) line, ITU-T V.253."""

from __future__ import annotations

from ._callerid import CallerId, CallerIdError, decode_burst
from ._device import (
    CallEnded,
    DtmfReceived,
    IncomingCall,
    RingingStopped,
    VoiceCall,
    VoiceModem,
    VoiceModemTimings,
)
from ._dle import DleDecoder, DleEvent, shield
from ._profiles import PROFILES, InvalidDialString, LineCapabilities, ModemProfile, check_dial_string

__all__ = [
    "PROFILES",
    "CallEnded",
    "CallerId",
    "CallerIdError",
    "DleDecoder",
    "DleEvent",
    "DtmfReceived",
    "IncomingCall",
    "InvalidDialString",
    "LineCapabilities",
    "ModemProfile",
    "RingingStopped",
    "VoiceCall",
    "VoiceModem",
    "VoiceModemTimings",
    "check_dial_string",
    "decode_burst",
    "shield",
]
