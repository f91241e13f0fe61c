"""IMAP without IDLE (polling), and a mailbox renumbered by the server (UIDVALIDITY change)."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import trio

from engine.testing import open_test_engine
from plugins.email import ImapClient, ImapUrl
from plugins.email import plugin as email_plugin


def _config(dovecot, smtp_sink) -> str:
    return f"""
[[agents]]
id = "alice"
endpoint = "sip:1001"
channels = {{ email = 5 }}

[[queues]]
name = "support"
members = ["alice"]

[[routes]]
match = "support@example.com"
queue = "support"

[email]
imap = "{dovecot.url('support')}"
smtp = "smtp://127.0.0.1:{smtp_sink.port}"
address = "support@example.com"
idle = false
poll_interval = 0.2
"""


async def _append(dovecot, sender: str, message_id: str) -> None:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@example.com"
    msg["Subject"] = "question"
    msg["Message-ID"] = message_id
    msg.set_content("hello")
    async with ImapClient(ImapUrl.parse(dovecot.url("support"))) as client:
        await client.append("INBOX", bytes(msg).replace(b"\n", b"\r\n"))


async def test_polling_picks_up_new_mail_and_a_renumbered_mailbox_repeats_nothing(dovecot, smtp_sink, tmp_path: Path) -> None:
    await _append(dovecot, "ann@customer.test", "<a@customer.test>")
    async with open_test_engine(_config(dovecot, smtp_sink), plugins=[email_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["email"]
        with trio.fail_after(30):
            while channel.received < 1:
                await trio.sleep(0.02)
        await _append(dovecot, "ben@customer.test", "<b@customer.test>")  # arrives while we poll
        with trio.fail_after(30):
            while channel.received < 2:
                await trio.sleep(0.02)
        assert {i.from_ for i in engine.interactions.values()} == {"ann@customer.test", "ben@customer.test"}
        # Pretend the server renumbered the mailbox since we last looked.
        await engine.store.write("UPDATE msg_marks SET value='1' WHERE channel='email' AND key='uidvalidity'")

    async with open_test_engine(_config(dovecot, smtp_sink), plugins=[email_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["email"]
        with trio.fail_after(30):
            while channel.duplicates < 2:
                await trio.sleep(0.02)
        assert channel.received == 0
        rows = await engine.store.fetchall("SELECT external_id FROM msg_messages ORDER BY seq")
        assert [r["external_id"] for r in rows] == ["<a@customer.test>", "<b@customer.test>"]
        # The two open conversations wait in the queue again, once each.
        assert sorted(i.from_ for i in engine.interactions.values()) == ["ann@customer.test", "ben@customer.test"]
