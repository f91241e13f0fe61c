"""Mail each new voicemail to its box's address (``[[voicemail]] email = "..."``), WAV attached.

The engine publishes ``MessageWaiting`` when a message is stored; this service turns it into a row in a
durable outbox (its own messaging channel, ``email-voicemail``) and delivers it over the ``[email]``
SMTP settings. An SMTP outage therefore delays a notification, never loses it, and an alias per
voicemail id makes queueing idempotent: an event seen twice, or a message found again by the catch-up
scan at start, is mailed once.

The catch-up scan covers what the event cannot: a crash between storing the message and queueing the
mail, or a message left while this service was restarting. It looks back at most ``CATCH_UP_SECONDS``
and never before the service first ran, so enabling mail does not send a box's whole history.
"""

from __future__ import annotations

import email.policy
import email.utils
import logging
import ssl
import time
import unicodedata
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trio

from engine import PluginContext
from engine.messaging import DeliveryError, MessageStore, OutboundMessage, Outbox, RetryPolicy

from ._compose import make_message_id
from ._settings import EmailSettings
from ._smtp import SmtpSender

log = logging.getLogger("centralita.email.voicemail")

CHANNEL = "email-voicemail"
CATCH_UP_SECONDS = 7 * 24 * 3600.0
_FIRST_RUN_MARK = "voicemail-mail-since"


def printable(text: str, limit: int = 80) -> str:
    """Caller IDs come from the network: keep them to one line of visible text, bounded in length.

    Control and format characters (line breaks that would start a new header, NUL, bidi overrides
    that would disguise the number) become '?'.
    """
    cleaned = "".join("?" if unicodedata.category(c).startswith(("C", "Z")) and c != " " else c for c in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


@dataclass(frozen=True)
class VoicemailNotice:
    box: str
    message: str  # the voicemail id (GET /api/v1/voicemail/{id}/audio)
    caller: str
    caller_name: str
    created: float
    seconds: float


def build_voicemail_mail(
    notice: VoicemailNotice,
    *,
    sender: str,
    sender_name: str,
    recipient: str,
    message_id: str,
    audio: bytes | None,
    too_large: bool = False,
) -> EmailMessage:
    """The notification mail (pure). ``audio`` is the WAV file's content, or None when it is not attached."""
    caller = printable(notice.caller) or "unknown number"
    name = printable(notice.caller_name, 60)
    who = f"{name} <{caller}>" if name and name != caller else caller
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(notice.created))
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = email.utils.formataddr((printable(sender_name, 60), sender))
    msg["To"] = recipient
    # The header API encodes non-ASCII; printable() already removed anything that could end the line.
    msg["Subject"] = f"New voicemail in {notice.box} from {who} ({notice.seconds:.0f} s)"
    msg["Message-ID"] = message_id
    msg["Date"] = email.utils.formatdate(notice.created, localtime=False)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    lines = [
        f"A caller left a message in voicemail box {notice.box}.",
        "",
        f"From:     {who}",
        f"Received: {when}",
        f"Length:   {notice.seconds:.1f} seconds",
        f"Message:  {notice.message}",
        "",
    ]
    if audio is not None:
        lines.append("The recording is attached (WAV, 8 kHz mono).")
    elif too_large:
        lines.append("The recording is too large to attach; listen to it in the console.")
    else:
        lines.append("The recording is no longer on the server.")
    lines.append(f"API: GET /api/v1/voicemail/{notice.message}/audio")
    msg.set_content("\n".join(lines) + "\n")
    if audio is not None:
        msg.add_attachment(audio, maintype="audio", subtype="wav", filename=f"voicemail-{notice.box}-{notice.message}.wav")
    return msg


class VoicemailMailer:
    """The service: MessageWaiting -> outbox row -> SMTP."""

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.engine = context.engine
        # The service is named email-voicemail; its settings are the plugin's [email] section.
        self.settings: EmailSettings | None = context.config.section("email")
        self.messages = MessageStore(context.store, CHANNEL)
        self.outbox: Outbox | None = None
        self.smtp: SmtpSender | None = None
        self.queued = 0

    def enabled(self) -> bool:
        return self.settings is not None and bool(self.settings.address) and bool(self._boxes())

    def _boxes(self) -> dict[str, str]:
        return {b.name: b.email for b in getattr(self.engine.config, "voicemail", []) if b.email}

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        settings = self.settings
        if settings is None or not self.enabled():
            # Nothing to mail, or nothing to mail with (the engine logs the latter once per box).
            task_status.started()
            await trio.sleep_forever()
        assert settings is not None
        tls = ssl.create_default_context()
        if not settings.tls_verify:
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
        self.smtp = SmtpSender(settings.smtp, timeout=settings.timeout, ssl_context=tls)
        self.outbox = Outbox(self.messages, self._deliver,
                             policy=RetryPolicy(first=settings.retry_first, cap=settings.retry_max))
        # Subscribe before saying we started: a message left right after start-up is not missed.
        async with self.engine.bus.subscribe(CHANNEL) as events, trio.open_nursery() as nursery:
            await nursery.start(self.outbox.run)
            task_status.started()
            await self._catch_up()
            async for event in events:
                if event.event == "MessageWaiting" and event.fields.get("Message"):
                    await self.queue(str(event.fields["Message"]))

    async def _catch_up(self) -> None:
        since = await self.messages.mark(_FIRST_RUN_MARK)
        now = time.time()
        if since is None:
            await self.messages.set_mark(_FIRST_RUN_MARK, repr(now))
            return
        start = max(float(since), now - CATCH_UP_SECONDS)
        rows = await self.context.store.fetchall(
            "SELECT id FROM voicemail WHERE created >= ? ORDER BY created", (start,)
        )
        for row in rows:
            await self.queue(str(row["id"]))

    async def queue(self, voicemail_id: str) -> bool:
        """Queue the mail for one voicemail unless it is queued already; True when queued now."""
        row = await self.context.store.fetchone("SELECT box FROM voicemail WHERE id = ?", (voicemail_id,))
        if row is None:
            return False
        recipient = self._boxes().get(str(row["box"]))
        if not recipient:
            return False
        alias = f"voicemail:{voicemail_id}"
        if await self.messages.find_by_alias([alias]) is not None:
            return False
        assert self.settings is not None and self.outbox is not None
        conversation = await self.messages.start_conversation(recipient, self.settings.address,
                                                              f"voicemail {voicemail_id}")
        await self.messages.queue_outbound(conversation, "", meta={"voicemail": voicemail_id, "auto": True},
                                           aliases=[alias])
        # Nobody answers a notification: the conversation only carries the outbox row.
        await self.messages.close(conversation)
        self.queued += 1
        self.outbox.wake_nowait()
        return True

    async def _deliver(self, message: OutboundMessage) -> str:
        assert self.settings is not None and self.smtp is not None
        voicemail_id = str(message.meta.get("voicemail") or "")
        row = await self.context.store.fetchone("SELECT * FROM voicemail WHERE id = ?", (voicemail_id,))
        if row is None:
            raise DeliveryError(f"voicemail {voicemail_id} was deleted before it was mailed", permanent=True)
        notice = VoicemailNotice(box=str(row["box"]), message=voicemail_id, caller=str(row["caller"]),
                                 caller_name=str(row["caller_name"]), created=float(row["created"]),
                                 seconds=float(row["seconds"]))
        audio, too_large = await self._read_audio(Path(self.context.data_dir) / str(row["file"]))
        domain = self.settings.address.rpartition("@")[2] or "localhost"
        # Deterministic: a retry after a crash mid-send carries the same Message-ID, so receivers dedupe.
        message_id = make_message_id(domain, f"vm.{message.id}")
        mail = build_voicemail_mail(notice, sender=self.settings.address, sender_name=self.settings.name,
                                    recipient=message.customer, message_id=message_id, audio=audio,
                                    too_large=too_large)
        await self.smtp.send(mail, self.settings.address, [message.customer])
        log.info("voicemail %s of box %s mailed to %s", voicemail_id, notice.box, message.customer)
        return message_id

    async def _read_audio(self, path: Path) -> tuple[bytes | None, bool]:
        """The WAV, unless missing or over ``max_attachment_bytes`` (checked before reading: bounded memory)."""
        assert self.settings is not None
        try:
            size = path.stat().st_size
        except OSError:
            return None, False
        if size > self.settings.max_attachment_bytes:
            return None, True
        try:
            return await trio.to_thread.run_sync(path.read_bytes), False
        except OSError:
            return None, False

    def statistics(self) -> dict[str, Any]:
        return {"queued": self.queued, "outbox": self.outbox.statistics() if self.outbox else None}
