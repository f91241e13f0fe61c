"""GSM modem: SMS (PDU mode), SIM, registration and signal, 3GPP TS 27.005/27.007."""

from __future__ import annotations

from ._device import (
    DeliveryReport,
    GsmModem,
    GsmTimings,
    InboundSms,
    IncomingVoiceCall,
    RegistrationChanged,
    SmsSendError,
)
from ._pdu import Deliver, InvalidNumber, PduError, StatusReport, Submit, decode_pdu, encode_submit

__all__ = [
    "Deliver",
    "DeliveryReport",
    "GsmModem",
    "GsmTimings",
    "InboundSms",
    "IncomingVoiceCall",
    "InvalidNumber",
    "PduError",
    "RegistrationChanged",
    "SmsSendError",
    "StatusReport",
    "Submit",
    "decode_pdu",
    "encode_submit",
]
