"""The ``[sms]`` section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ._optout import DEFAULT_KEYWORDS


@dataclass(frozen=True)
class SmsSettings:
    address: str = ""  # our number or short code: source_addr of what we send, routed with match = it
    smpp: str = ""  # smpp://system_id:password@host:2775 ; empty = no SMPP link
    modem: str = ""  # a [[devices]] name with the SMS capability; empty = the first such device
    prefer: Literal["smpp", "modem"] = "smpp"  # which way out when both are up
    delivery_receipts: bool = True
    enquire_interval: float = 30.0
    response_timeout: float = 10.0
    reconnect_backoff: float = 1.0
    reconnect_backoff_max: float = 60.0
    reoffer_after: float = 0.0  # an active conversation unanswered this long goes back to its queue (0: never)
    retry_first: float = 5.0
    retry_max: float = 600.0
    join_timeout: float = 120.0  # a long message missing parts is stored incomplete after this
    max_text: int = 1530  # 10 GSM-7 parts; longer replies are refused at send time
    opt_out_keywords: list[str] = field(default_factory=lambda: list(DEFAULT_KEYWORDS))
    opt_out_reply: str = ""  # sent once when someone opts out (many regulators require a confirmation)
