"""The email channel: IMAP in (IDLE or polling), the outbox out through SMTP.

Ingestion order makes restarts safe: attachments are written, then the message is recorded (once per
Message-ID), then the mailbox's UID mark advances. A crash anywhere repeats at most a read that the
store recognises; nothing is lost. UIDVALIDITY is kept with the mark: when the server renumbers the
mailbox, the mark restarts from zero and the Message-ID check prevents duplicates.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from engine import InteractionKind, PluginContext
from engine.abc import MessagingChannel
from engine.messaging import (
    ConversationReplies,
    DeliveryError,
    InteractionBinder,
    MessageStore,
    OutboundMessage,
    Outbox,
    RetryPolicy,
)

from ._compose import build_message, make_message_id, reply_subject
from ._imap import ImapClient, ImapUrl
from ._imap_proto import ImapServerError
from ._mime import ParsedEmail, parse_email
from ._settings import EmailSettings
from ._smtp import SmtpSender

log = logging.getLogger("centralita.email")

FETCH_BATCH = 20  # messages per UID FETCH round trip...
FETCH_BATCH_BYTES = 8 * 1024 * 1024  # ...and at most this much mail in memory at once

#: Deliberately plain: one @, no spaces, quotes, angle brackets or line breaks (header injection).
_ADDRESS = re.compile(r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+")


class EmailChannel(ConversationReplies, MessagingChannel):
    name = "email"
    kinds = frozenset({InteractionKind.EMAIL})

    def __init__(self, context: PluginContext) -> None:
        settings: EmailSettings | None = context.settings
        # Without an [email] section the plugin stays installed but dormant (nothing to connect to).
        self.configured = settings is not None
        if settings is None:
            settings = EmailSettings(imap="imap://127.0.0.1/INBOX", smtp="smtp://127.0.0.1", address="")
        self.settings = settings
        self.context = context
        self.engine = context.engine
        self.imap_url = ImapUrl.parse(settings.imap)
        tls = ssl.create_default_context()
        if not settings.tls_verify:
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
        self.tls = tls
        self.smtp = SmtpSender(settings.smtp, timeout=settings.timeout, ssl_context=tls)
        self.address = settings.address.strip().lower()
        self.domain = self.address.rpartition("@")[2] or "localhost"
        self.messages = MessageStore(context.store, "email")
        self.binder = InteractionBinder(context.engine, "email", InteractionKind.EMAIL, contact_by="email")
        self.outbox = Outbox(self.messages, self._deliver, policy=RetryPolicy(first=settings.retry_first, cap=settings.retry_max))
        self.attachments_dir = Path(context.data_dir) / "email" / "attachments"
        self.engine_started = trio.Event()
        self.connected = False
        self.received = 0
        self.duplicates = 0
        self.bounces = 0
        self.problems = 0
        self.imap_errors = 0
        self.last_imap_error = ""

    # ------------------------------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        if not self.configured:
            log.info("email: no [email] section; the channel is idle")
            task_status.started()
            await trio.sleep_forever()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.outbox.run)
            task_status.started()
            await self.resume(nursery, reoffer_after=self.settings.reoffer_after)
            await self._serve_imap()

    def restored_attributes(self, conversation: Mapping[str, Any]) -> dict[str, Any]:
        return {"subject": conversation["subject"]}

    def statistics(self) -> dict[str, Any]:
        return {
            "configured": self.configured,
            "connected": self.connected,
            "received": self.received,
            "duplicates": self.duplicates,
            "bounces": self.bounces,
            "parse_problems": self.problems,
            "imap_errors": self.imap_errors,
            "last_imap_error": self.last_imap_error,
            "outbox": self.outbox.statistics(),
        }

    # ----------------------------------------------------------------------------------------- IMAP

    async def _serve_imap(self) -> None:
        backoff = self.settings.reconnect_backoff
        while True:
            try:
                async with ImapClient(self.imap_url, timeout=self.settings.timeout, ssl_context=self.tls,
                                      max_message_bytes=self.settings.max_message_bytes) as client:
                    self.connected = True
                    backoff = self.settings.reconnect_backoff
                    await self._watch_mailbox(client)
            except (ImapServerError, OSError, trio.TooSlowError, trio.BrokenResourceError, ssl.SSLError) as exc:
                self.imap_errors += 1
                self.last_imap_error = f"{type(exc).__name__}: {exc}"
                log.warning("email: IMAP %s:%d: %s; reconnecting in %.1fs", self.imap_url.host, self.imap_url.port,
                            self.last_imap_error, backoff)
            finally:
                self.connected = False
            await trio.sleep(backoff)
            backoff = min(self.settings.reconnect_backoff_max, backoff * 2)

    async def _watch_mailbox(self, client: ImapClient) -> None:
        mailbox = await client.select(self.imap_url.mailbox)
        stored = await self.messages.mark("uidvalidity")
        if stored != str(mailbox.uidvalidity):
            if stored is not None:
                log.warning("email: UIDVALIDITY changed (%s -> %s): rescanning; Message-IDs prevent duplicates",
                            stored, mailbox.uidvalidity)
            await self.messages.set_mark("uid", "0")
            await self.messages.set_mark("uidvalidity", str(mailbox.uidvalidity))
        use_idle = self.settings.idle and "IDLE" in client.caps
        while True:
            await self.fetch_new(client, mailbox.uidvalidity)
            if use_idle:
                await client.idle(self.settings.idle_timeout)
            else:
                await trio.sleep(self.settings.poll_interval)
                await client.command("NOOP")

    async def fetch_new(self, client: ImapClient, uidvalidity: int) -> int:
        """Read every message above the UID mark, in UID order, a few per round trip (at most
        ``FETCH_BATCH`` messages and ``FETCH_BATCH_BYTES`` in memory at once)."""
        last = int(await self.messages.mark("uid") or "0")
        pending = await client.uids_after(last)
        count = 0
        while pending:
            batch: list[int] = []
            total = 0
            while pending and len(batch) < FETCH_BATCH:
                uid, size = pending[0]
                if size is not None and size > self.settings.max_message_bytes:
                    break
                if batch and total + (size or 0) > FETCH_BATCH_BYTES:
                    break
                batch.append(uid)
                total += size or 0
                pending.pop(0)
            if batch:
                bodies = await client.fetch_many(batch)
                for uid in batch:
                    await self._ingest_and_mark(bodies.get(uid, b""), uid, uidvalidity, None)
                    count += 1
                continue
            uid, size = pending.pop(0)  # over the size limit: its headers only
            item = await client.fetch(uid, "HEADER")
            raw = item.body if item is not None and item.body is not None else b""
            await self._ingest_and_mark(raw, uid, uidvalidity, size)
            count += 1
        return count

    async def _ingest_and_mark(self, raw: bytes, uid: int, uidvalidity: int, oversize: int | None) -> None:
        # A recorded message advances the mark in its own transaction; anything skipped advances it here.
        if not await self.ingest(raw, uid=uid, uidvalidity=uidvalidity, oversize=oversize):
            await self.messages.set_mark("uid", str(uid))

    # ------------------------------------------------------------------------------------- ingestion

    async def ingest(self, raw: bytes, *, uid: int, uidvalidity: int, oversize: int | None = None) -> bool:
        """Record one mail; True if it was recorded (and the UID mark advanced with it)."""
        # The email package needs ~0.15 s per MB: parse in a worker thread so the event loop keeps going.
        parsed = await trio.to_thread.run_sync(
            functools.partial(parse_email, raw, max_attachment_bytes=self.settings.max_attachment_bytes)
        )
        if oversize is not None:
            parsed.problems.append(
                f"message is {oversize} bytes, over max_message_bytes={self.settings.max_message_bytes}; body not fetched"
            )
            parsed.text = parsed.text or "(message too large: body not fetched)"
        if parsed.problems:
            self.problems += 1
            log.info("email uid %d from %s: %s", uid, parsed.from_addr or "?", "; ".join(parsed.problems[:5]))
        if parsed.is_bounce:
            await self._bounce(parsed)
            return False
        if not parsed.from_addr or parsed.from_addr == self.address:
            log.info("email uid %d: no usable sender (%r); not a conversation", uid, parsed.from_addr)
            return False
        external_id = parsed.message_id or f"uid:{uidvalidity}:{uid}"
        if await self.messages.is_duplicate(external_id):
            self.duplicates += 1
            return False
        conversation = await self._thread_of(parsed)
        attachments = self._save_attachments(external_id, parsed)
        address = self._routed_address(parsed)
        result = await self.messages.record_inbound(
            customer=parsed.from_addr,
            address=address,
            body=parsed.text,
            external_id=external_id,
            conversation=conversation,
            subject=parsed.subject,
            aliases=[parsed.message_id] if parsed.message_id else [],
            meta={
                "message_id": parsed.message_id,
                "references": parsed.references,
                "subject": parsed.subject,
                "from_name": parsed.from_name,
                "uid": uid,
                "attachments": attachments,
                "problems": parsed.problems[:20],
            },
            mark=("uid", str(uid)),
        )
        if result.duplicate:
            self.duplicates += 1
            return False
        self.received += 1
        if result.new_conversation and self.settings.auto_acknowledge and not parsed.auto_submitted:
            await self.messages.queue_outbound(result.conversation, self.settings.acknowledge_text, meta={"auto": True})
            self.outbox.wake_nowait()
        await self.binder.inbound(
            result.conversation, customer=parsed.from_addr, address=address, caller_name=parsed.from_name,
            message=parsed.text[:500], attributes={"subject": parsed.subject},
        )
        return True

    async def _thread_of(self, parsed: ParsedEmail) -> str | None:
        conversation = await self.messages.find_by_alias(parsed.thread_ids)
        if conversation is None and parsed.ref_tag:
            found = await self.messages.conversation(parsed.ref_tag)
            # A tag alone is guessable: trust it only from the customer the conversation belongs to.
            if found is not None and found["customer"] == parsed.from_addr:
                conversation = found["id"]
        return conversation

    def _routed_address(self, parsed: ParsedEmail) -> str:
        for candidate in parsed.to_addrs:
            if candidate != self.address and self.engine.find_route(candidate) is not None:
                return candidate
        return self.address

    def _save_attachments(self, external_id: str, parsed: ParsedEmail) -> list[dict[str, Any]]:
        saved: list[dict[str, Any]] = []
        if not parsed.attachments:
            return saved
        folder = self.attachments_dir / hashlib.sha256(external_id.encode()).hexdigest()[:24]
        for index, attachment in enumerate(parsed.attachments):
            entry: dict[str, Any] = {"filename": attachment.filename, "content_type": attachment.content_type,
                                     "size": attachment.size}
            if attachment.data is not None:
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{index:02d}-{attachment.filename}"
                path.write_bytes(attachment.data)  # same name on a repeated read: overwritten, not duplicated
                entry["path"] = str(path.relative_to(self.context.data_dir))
            else:
                entry["refused"] = f"over {self.settings.max_attachment_bytes} bytes"
            saved.append(entry)
        return saved

    async def _bounce(self, parsed: ParsedEmail) -> None:
        self.bounces += 1
        marked = [mid for mid in parsed.bounce_of if await self.messages.set_status_by_external(mid, "failed")]
        log.warning("email: delivery failure report for %s", ", ".join(marked or parsed.bounce_of or ["an unknown message"]))

    # ------------------------------------------------------------------------------------- outbound

    def check_reply(self, text: str) -> None:
        if not self.configured:
            raise ValueError("the email channel is not configured ([email] imap, smtp, address)")

    async def send_transcript(self, to: str, subject: str, body: str) -> str:
        """Mail ``body`` to ``to`` through the outbox (other channels call this via ``engine.channels``,
        e.g. a chat transcript the visitor asked for). Returns the message id."""
        if not self.configured:
            raise ValueError("the email channel is not configured")
        address = to.strip().lower()
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"not an email address: {to[:80]!r}")
        conversation = await self.messages.start_conversation(address, self.address, subject, meta={"kind": "transcript"})
        await self.messages.close(conversation)  # nothing to answer: it is a copy for the customer
        message = await self.messages.queue_outbound(conversation, body, meta={"fresh": True, "auto": True})
        self.outbox.wake_nowait()
        return message

    async def _deliver(self, message: OutboundMessage) -> str:
        if await self.messages.opted_out(message.customer):
            raise DeliveryError(f"{message.customer} asked not to be contacted", permanent=True)
        history = await self.messages.history(message.conversation)
        inbound = [m for m in history if m["direction"] == "inbound"]
        last = inbound[-1]["meta"] if inbound else {}
        in_reply_to = str(last.get("message_id") or "")
        references = [*last.get("references", []), in_reply_to] if in_reply_to else []
        # Deterministic: a retry after a crash mid-send carries the same Message-ID, so receivers dedupe.
        message_id = make_message_id(self.domain, f"{message.id}.{message.conversation}")
        if message.meta.get("fresh"):
            subject = message.subject
        else:
            subject = reply_subject(str(last.get("subject") or message.subject), message.conversation)
        mail = build_message(
            sender=self.address, sender_name=self.settings.name, recipient=message.customer, subject=subject,
            body=message.body, message_id=message_id, in_reply_to=in_reply_to, references=references,
            auto_submitted=bool(message.meta.get("auto")),
        )
        await self.smtp.send(mail, self.address, [message.customer])
        await self.messages.add_aliases(message.conversation, [message_id])
        return message_id
