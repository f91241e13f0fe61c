"""Parse a received email into what the engine needs (pure: bytes in, a ParsedEmail out).

Hostile input is normal here: broken MIME, unknown charsets, huge attachments, headers trying to smuggle
line breaks. Parsing never raises; what could not be understood is listed in ``problems`` with the
reason, and the rest of the message is kept.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from email.message import Message

from ._html import html_to_text

#: ``[#1f3a9c04be]`` in a subject names the conversation, for mail clients that drop References.
REF_TAG = re.compile(r"\[#([0-9a-f]{10})\]")
_MSGID = re.compile(r"<[^<>\s]{1,250}>")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    data: bytes | None  # None when it was over the size limit (then only described, never stored)


@dataclass
class ParsedEmail:
    message_id: str
    from_addr: str
    from_name: str
    to_addrs: list[str]
    subject: str
    text: str
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    ref_tag: str | None = None
    auto_submitted: bool = False
    bounce_of: list[str] = field(default_factory=list)  # Message-IDs a delivery report says failed
    is_bounce: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def thread_ids(self) -> list[str]:
        """Message-IDs this one answers, nearest first."""
        seen: list[str] = []
        for mid in [*self.in_reply_to, *reversed(self.references)]:
            if mid not in seen:
                seen.append(mid)
        return seen


def _header(msg: Message, name: str, problems: list[str]) -> str:
    try:
        value = msg.get(name)
    except Exception as exc:  # noqa: BLE001 (hostile input: a header the policy cannot parse)
        problems.append(f"header {name}: {type(exc).__name__}")
        raw = msg.get_all(name, failobj=[]) if hasattr(msg, "get_all") else []
        value = raw[0] if raw else None
    if value is None:
        return ""
    text = str(value)
    # A folded or encoded header must not carry line breaks into anything we build from it.
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def _msgids(value: str) -> list[str]:
    return _MSGID.findall(value)[:100]


def _decode_part(part: Message, problems: list[str]) -> str:
    try:
        return str(part.get_content())  # type: ignore[attr-defined]
    except (LookupError, UnicodeError, AssertionError, ValueError, KeyError) as exc:
        charset = part.get_content_charset() or "?"
        problems.append(f"body part {part.get_content_type()}: charset {charset!r} not decodable ({type(exc).__name__}); shown as UTF-8 with replacements")
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            return payload.decode("utf-8", errors="replace")
        return str(part.get_payload())


def parse_email(
    raw: bytes,
    *,
    max_attachment_bytes: int = 10 * 1024 * 1024,
    max_attachments: int = 20,
    max_text_chars: int = 200_000,
) -> ParsedEmail:
    problems: list[str] = []
    msg: Message = email.message_from_bytes(raw, policy=email.policy.default)
    for defect in getattr(msg, "defects", [])[:10]:
        problems.append(f"MIME defect: {type(defect).__name__}")
    from_value = _header(msg, "From", problems)
    from_name, from_addr = email.utils.parseaddr(from_value)
    to_addrs = [a for _, a in email.utils.getaddresses([_header(msg, "To", problems), _header(msg, "Cc", problems), _header(msg, "Delivered-To", problems)]) if a]
    subject = _header(msg, "Subject", problems)
    message_ids = _msgids(_header(msg, "Message-ID", problems))
    parsed = ParsedEmail(
        message_id=message_ids[0] if message_ids else "",
        from_addr=from_addr.strip().lower(),
        from_name=from_name,
        to_addrs=[a.strip().lower() for a in to_addrs],
        subject=subject[:998],
        text="",
        in_reply_to=_msgids(_header(msg, "In-Reply-To", problems)),
        references=_msgids(_header(msg, "References", problems)),
        problems=problems,
    )
    tag = REF_TAG.search(subject)
    parsed.ref_tag = tag.group(1) if tag else None
    auto = _header(msg, "Auto-Submitted", problems).lower()
    precedence = _header(msg, "Precedence", problems).lower()
    parsed.auto_submitted = (auto not in ("", "no")) or precedence in ("bulk", "junk", "list")
    content_type = msg.get_content_type()
    parsed.is_bounce = content_type == "multipart/report" and "delivery-status" in str(msg.get_param("report-type") or "")

    plain: list[str] = []
    html: list[str] = []
    for part in _walk(msg, problems):
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        if parsed.is_bounce and ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            parsed.bounce_of.extend(_bounced_ids(part))
            continue
        if ctype == "message/delivery-status":
            continue
        if disposition == "attachment" or filename or not ctype.startswith("text/"):
            if part.is_multipart():
                continue
            _attach(parsed, part, filename, ctype, max_attachment_bytes, max_attachments)
            continue
        if ctype == "text/plain":
            plain.append(_decode_part(part, problems))
        elif ctype == "text/html":
            html.append(_decode_part(part, problems))
        else:
            plain.append(_decode_part(part, problems))
    if plain:
        text = "\n\n".join(plain)
    elif html:
        text = html_to_text("\n".join(html), limit=max_text_chars)
    else:
        text = ""
    if len(text) > max_text_chars:
        problems.append(f"body cut at {max_text_chars} characters (was {len(text)})")
        text = text[:max_text_chars]
    parsed.text = text.replace("\r\n", "\n")
    return parsed


def _walk(msg: Message, problems: list[str], limit: int = 200, max_depth: int = 20) -> list[Message]:
    """Leaf parts in order; an attached message (message/rfc822) is one part, not descended into."""
    parts: list[Message] = []

    def visit(part: Message, depth: int) -> None:
        if len(parts) >= limit:
            return
        if part.is_multipart() and part.get_content_type() != "message/rfc822":
            if depth >= max_depth:
                problems.append(f"MIME nesting deeper than {max_depth}; the rest ignored")
                return
            payload = part.get_payload()
            for child in payload if isinstance(payload, list) else []:
                if isinstance(child, Message):
                    visit(child, depth + 1)
            return
        parts.append(part)
        if len(parts) >= limit:
            problems.append(f"more than {limit} MIME parts; the rest ignored")

    try:
        visit(msg, 0)
    except Exception as exc:  # noqa: BLE001 (hostile input: keep what was read, report the rest)
        problems.append(f"MIME structure unreadable: {type(exc).__name__}")
    return parts


def _attach(parsed: ParsedEmail, part: Message, filename: str | None, ctype: str, max_bytes: int, max_count: int) -> None:
    if len(parsed.attachments) >= max_count:
        parsed.problems.append(f"attachment {filename!r} dropped: more than {max_count} attachments")
        return
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:  # noqa: BLE001 (hostile input: one bad attachment must not lose the mail)
        parsed.problems.append(f"attachment {filename!r} undecodable: {type(exc).__name__}")
        return
    data = payload if isinstance(payload, bytes) else b""
    name = safe_filename(filename or "attachment")
    if len(data) > max_bytes:
        parsed.problems.append(f"attachment {name!r} is {len(data)} bytes, over the {max_bytes}-byte limit; not stored")
        parsed.attachments.append(Attachment(name, ctype, len(data), None))
        return
    parsed.attachments.append(Attachment(name, ctype, len(data), data))


def _bounced_ids(part: Message) -> list[str]:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, Message):
        return _msgids(str(inner.get("Message-ID", "")))
    text = part.get_payload(decode=True)
    if isinstance(text, bytes):
        m = re.search(rb"(?im)^message-id:\s*(<[^<>\s]+>)", text)
        if m:
            return [m.group(1).decode("ascii", "replace")]
    return []


def safe_filename(name: str) -> str:
    """A file name that cannot leave its directory or hide as a dotfile."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip(" .")
    return (name or "attachment")[:100]


