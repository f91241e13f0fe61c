"""The SMS channel: SMPP 3.4 (own sans-IO codec and session) and the GSM modem capability.

Pure parts: :mod:`._pdu` (PDU codec), :class:`EsmeSession` (the ESME state machine), :func:`split` /
:class:`Reassembler` (GSM 7-bit vs UCS-2, UDH concatenation), :func:`is_opt_out`. ``simulator`` holds
an SMSC simulator for tests and demos.
"""

from __future__ import annotations

from ._channel import SmsChannel
from ._optout import DEFAULT_KEYWORDS, is_opt_out
from ._pdu import Cmd, Pdu, PduReader, SmppPeerError, SmppUsageError, Status, decode, encode
from ._session import EsmeSession, State
from ._settings import SmsSettings
from ._text import Reassembler, decode_payload, gsm7_septets, split, strip_udh

__all__ = [
    "DEFAULT_KEYWORDS",
    "Cmd",
    "EsmeSession",
    "Pdu",
    "PduReader",
    "Reassembler",
    "SmppPeerError",
    "SmppUsageError",
    "SmsChannel",
    "SmsSettings",
    "State",
    "Status",
    "decode",
    "decode_payload",
    "encode",
    "gsm7_septets",
    "is_opt_out",
    "split",
    "strip_udh",
]
