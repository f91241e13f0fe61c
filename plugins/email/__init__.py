"""The email channel: IMAP (IDLE or polling) in, SMTP out through a durable outbox.

Pure parts: :func:`parse_email` (MIME, HTML to safe text, attachments with limits, threading headers),
:func:`build_message` (replies with In-Reply-To/References and a ``[#ref]`` subject tag).
"""

from __future__ import annotations

from ._channel import EmailChannel
from ._compose import HeaderInjectionError, build_message, reply_subject
from ._html import html_to_text
from ._imap import ImapClient, ImapUrl
from ._imap_proto import ImapServerError, ImapUsageError
from ._mime import Attachment, ParsedEmail, parse_email
from ._settings import EmailSettings

__all__ = [
    "Attachment",
    "EmailChannel",
    "EmailSettings",
    "HeaderInjectionError",
    "ImapClient",
    "ImapServerError",
    "ImapUrl",
    "ImapUsageError",
    "ParsedEmail",
    "build_message",
    "html_to_text",
    "parse_email",
    "reply_subject",
]
