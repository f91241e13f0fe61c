"""The ``[email]`` section (CONTRACT.md fixes ``imap``, ``smtp`` and ``address``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmailSettings:
    imap: str  # imap://user:password@host:143/INBOX (STARTTLS when offered) or imaps://
    smtp: str  # smtp://host:25 (STARTTLS when offered) or smtps://; user:password@ for AUTH
    address: str  # replies come from this address
    name: str = ""  # display name on replies
    idle: bool = True  # use IMAP IDLE when the server has it; otherwise poll
    poll_interval: float = 60.0
    idle_timeout: float = 1500.0  # re-issue IDLE before servers' 30-minute cut-off (RFC 2177)
    timeout: float = 30.0  # per IMAP command / SMTP attempt
    reconnect_backoff: float = 1.0
    reconnect_backoff_max: float = 60.0
    max_message_bytes: int = 25 * 1024 * 1024  # larger mails: headers only, body not fetched
    max_attachment_bytes: int = 10 * 1024 * 1024
    auto_acknowledge: bool = False
    acknowledge_text: str = (
        "Thank you for your message. We have received it and will answer as soon as we can.\n"
        "Please keep the reference in the subject when you write again."
    )
    reoffer_after: float = 0.0  # an active conversation unanswered this long goes back to its queue (0: never)
    retry_first: float = 5.0  # outbox: first retry after a failed delivery, doubling up to retry_max
    retry_max: float = 900.0
    tls_verify: bool = True
