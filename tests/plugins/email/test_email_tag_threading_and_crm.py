"""Against Dovecot (IMAP) and aiosmtpd (SMTP): a customer's reply that kept only our subject tag (no
In-Reply-To, no References) joins their conversation, the same tag from another address does not; and a
mail from a known customer is linked to their contact in the built-in SQLite CRM."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trio

from engine.testing import open_test_engine
from plugins.crm_sqlite import plugin as crm_plugin
from plugins.crm_sqlite._model import ContactRow
from plugins.email import ImapClient, ImapUrl
from plugins.email import plugin as email_plugin

CONFIG = """
[[agents]]
id = "alice"
endpoint = "sip:1001"
channels = {{ email = 4 }}

[[queues]]
name = "support"
members = ["alice"]

[[routes]]
match = "support@example.com"
queue = "support"

[email]
imap = "{imap}"
smtp = "smtp://127.0.0.1:{smtp_port}"
address = "support@example.com"
name = "Support"
idle_timeout = 5.0
retry_first = 0.2
retry_max = 1.0
reconnect_backoff = 0.1
"""


def _mail(sender: str, subject: str, body: str, message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content(body)
    return bytes(msg).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def _deliver(dovecot: Any, raw: bytes) -> None:
    async with ImapClient(ImapUrl.parse(dovecot.url("support"))) as client:
        await client.append("INBOX", raw)


async def _wait_for(predicate, timeout: float = 30.0):
    with trio.fail_after(timeout):
        while True:
            value = await predicate()
            if value:
                return value
            await trio.sleep(0.02)


async def test_the_subject_tag_alone_threads_a_reply_but_only_from_the_same_customer(dovecot, smtp_sink, tmp_path: Path) -> None:
    config = CONFIG.format(imap=dovecot.url("support"), smtp_port=smtp_sink.port)
    async with open_test_engine(config, plugins=[email_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["email"]
        await _deliver(dovecot, _mail("Carmen Ruiz <carmen@customer.test>", "Broken router", "It blinks red.",
                                      "<first@customer.test>"))

        async def interactions():
            return [i for i in engine.interactions.values() if i.kind.value == "email"]

        (interaction,) = await _wait_for(interactions)
        await engine.interaction_action(interaction.id, "reply", {"text": "Please unplug it for 10 s."})

        async def sent():
            return smtp_sink.received()

        ((_, _, raw),) = await _wait_for(sent)
        subject = str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])
        conversation = interaction.attributes["conversation"]
        assert f"[#{conversation}]" in subject

        # Her mail program dropped In-Reply-To and References; the tag in the subject is all that is left.
        await _deliver(dovecot, _mail("Carmen Ruiz <carmen@customer.test>", f"RE: {subject}", "Still red.",
                                      "<second@customer.test>"))
        # Someone else copies the tag (it is visible to anyone who saw the mail, and guessable).
        await _deliver(dovecot, _mail("Mallory <mallory@elsewhere.test>", f"Re: {subject}", "Send me her data.",
                                      "<third@elsewhere.test>"))

        async def all_read():
            return channel.received == 3

        await _wait_for(all_read)
        rows = await engine.store.fetchall(
            "SELECT m.external_id, m.conversation, c.customer FROM msg_messages m "
            "JOIN msg_conversations c ON c.id = m.conversation WHERE m.direction='inbound' ORDER BY m.seq")
        by_id = {r["external_id"]: (r["conversation"], r["customer"]) for r in rows}
        assert by_id["<first@customer.test>"] == (conversation, "carmen@customer.test")
        assert by_id["<second@customer.test>"] == (conversation, "carmen@customer.test")
        other_conversation, other_customer = by_id["<third@elsewhere.test>"]
        assert other_conversation != conversation and other_customer == "mallory@elsewhere.test"

        # Carmen's reply stayed with her interaction; Mallory's mail is an interaction of its own.
        async def two():
            return len(await interactions()) == 2

        await _wait_for(two)
        by_conversation = {i.attributes["conversation"]: i for i in await interactions()}
        assert set(by_conversation) == {conversation, other_conversation}
        assert by_conversation[conversation].id == interaction.id
        assert by_conversation[other_conversation].from_ == "mallory@elsewhere.test"


async def test_mail_from_a_known_customer_is_linked_to_their_crm_contact(dovecot, smtp_sink, tmp_path: Path) -> None:
    config = CONFIG.format(imap=dovecot.url("support"), smtp_port=smtp_sink.port)
    async with open_test_engine(config, plugins=[email_plugin, crm_plugin], data_dir=tmp_path) as engine:
        (crm,) = engine.crm.values()
        contact = await crm.create(ContactRow(name="Carmen Ruiz Ortega", emails=["carmen@customer.test"], tags=["vip"]))
        # The address in the mail differs in case from the one in the CRM: still the same person.
        await _deliver(dovecot, _mail("C. Ruiz <Carmen@Customer.TEST>", "Invoice", "Why two charges?", "<inv@customer.test>"))
        await _deliver(dovecot, _mail("Somebody <unknown@customer.test>", "Hello", "Do you ship to Ceuta?", "<hi@customer.test>"))

        async def both():
            found = {i.from_.lower(): i for i in engine.interactions.values() if i.kind.value == "email"}
            return found if len(found) == 2 else None

        found = await _wait_for(both)
        known = found["carmen@customer.test"]
        assert known.attributes.get("contact_id") == contact
        assert known.attributes.get("contact_name") == "Carmen Ruiz Ortega"
        assert known.attributes.get("segments") == ["vip"]
        stranger = found["unknown@customer.test"]
        assert "contact_id" not in stranger.attributes
