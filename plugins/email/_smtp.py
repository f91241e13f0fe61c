"""SMTP submission with smtplib in a worker thread.

Why a thread and not our own client: sending is short, rare and not latency-critical; smtplib already does
STARTTLS, implicit TLS and AUTH correctly. Each attempt has a socket timeout, so an abandoned thread
ends on its own. Errors are translated here into transient (retry) or permanent (the server refused
this message) :class:`DeliveryError`.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import trio

from engine.messaging import DeliveryError


@dataclass(frozen=True)
class SmtpUrl:
    tls: bool  # smtps:// (implicit TLS); smtp:// uses STARTTLS when the server offers it
    host: str
    port: int
    user: str
    password: str

    @classmethod
    def parse(cls, url: str) -> SmtpUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"expected smtp:// or smtps://, got {url.split(':', 1)[0]!r}")
        tls = parts.scheme == "smtps"
        return cls(tls, parts.hostname or "127.0.0.1", parts.port or (465 if tls else 25),
                   unquote(parts.username or ""), unquote(parts.password or ""))


def _send_blocking(url: SmtpUrl, message: EmailMessage, sender: str, recipients: list[str], timeout: float,
                   context: ssl.SSLContext) -> None:
    client: smtplib.SMTP
    if url.tls:
        client = smtplib.SMTP_SSL(url.host, url.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(url.host, url.port, timeout=timeout)
    with client:
        client.ehlo()
        if not url.tls and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        if url.user:
            client.login(url.user, url.password)
        client.send_message(message, from_addr=sender, to_addrs=recipients)


def classify(exc: BaseException) -> DeliveryError:
    """Permanent only when the server refused this message (5xx for a recipient or the content)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        reason = "; ".join(f"{rcpt}: {code} {msg!r}" for rcpt, (code, msg) in exc.recipients.items())
        return DeliveryError(f"recipient refused: {reason}", permanent=bool(codes) and all(c >= 500 for c in codes))
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(f"SMTP authentication failed ({exc.smtp_code}); check [email] smtp credentials")
    if isinstance(exc, (smtplib.SMTPDataError, smtplib.SMTPSenderRefused)):
        code = exc.smtp_code
        return DeliveryError(f"SMTP server refused the message: {code} {exc.smtp_error!r}", permanent=code >= 500 and code != 552)
    if isinstance(exc, smtplib.SMTPResponseException):
        return DeliveryError(f"SMTP error {exc.smtp_code} {exc.smtp_error!r}")
    if isinstance(exc, (OSError, socket.timeout, smtplib.SMTPException, ssl.SSLError)):
        return DeliveryError(f"SMTP server unreachable or failing: {type(exc).__name__}: {exc}")
    return DeliveryError(f"{type(exc).__name__}: {exc}")


class SmtpSender:
    def __init__(self, url: str, *, timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.url = SmtpUrl.parse(url)
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    async def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        try:
            await trio.to_thread.run_sync(
                _send_blocking, self.url, message, sender, recipients, self.timeout, self.ssl_context,
                abandon_on_cancel=True,
            )
        except Exception as exc:
            raise classify(exc) from exc
