"""Build outgoing mail (pure). Threading headers make replies land in the customer's thread; the
subject carries the conversation's reference tag. Header injection is refused, not sanitised away."""

from __future__ import annotations

import email.policy
import email.utils
from collections.abc import Sequence
from email.message import EmailMessage

from ._mime import REF_TAG


class HeaderInjectionError(ValueError):
    """A value meant for one header contains a line break (someone tried to add headers)."""


def _clean(name: str, value: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise HeaderInjectionError(f"{name} contains a line break or NUL; refused")
    return value


def reply_subject(subject: str, ref: str) -> str:
    subject = subject.strip() or "Your message"
    if not REF_TAG.search(subject):
        subject = f"{subject} [#{ref}]"
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    return subject


def build_message(
    *,
    sender: str,
    recipient: str,
    subject: str,
    body: str,
    message_id: str,
    in_reply_to: str = "",
    references: Sequence[str] = (),
    auto_submitted: bool = False,
    sender_name: str = "",
) -> EmailMessage:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = email.utils.formataddr((_clean("sender name", sender_name), _clean("From", sender)))
    msg["To"] = _clean("To", recipient)
    msg["Subject"] = _clean("Subject", subject)
    msg["Message-ID"] = _clean("Message-ID", message_id)
    msg["Date"] = email.utils.formatdate(localtime=False)
    if in_reply_to:
        msg["In-Reply-To"] = _clean("In-Reply-To", in_reply_to)
    refs = [r for r in references if r][-20:]  # RFC 5322 allows trimming; keep the newest
    if refs:
        msg["References"] = _clean("References", " ".join(refs))
    if auto_submitted:
        msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(body)
    return msg


def make_message_id(domain: str, local: str) -> str:
    return f"<{local}@{domain}>"
