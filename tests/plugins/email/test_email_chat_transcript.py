"""A chat visitor asks for the transcript: the chat channel mails it through the email channel."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
import trio

from engine.testing import open_test_engine
from plugins.chat import plugin as chat_plugin
from plugins.email import plugin as email_plugin


async def test_transcript_goes_out_through_the_email_outbox(dovecot, smtp_sink, tmp_path: Path) -> None:
    config = f"""
[[agents]]
id = "alice"
endpoint = "sip:1001"
channels = {{ chat = 3, email = 3 }}

[[queues]]
name = "web"
members = ["alice"]

[[routes]]
match = "webchat"
queue = "web"

[email]
imap = "{dovecot.url('support')}"
smtp = "smtp://127.0.0.1:{smtp_sink.port}"
address = "support@example.com"
"""
    async with open_test_engine(config, plugins=[chat_plugin, email_plugin], data_dir=tmp_path) as engine:
        chat = engine.channels["chat"]
        session, _ = await chat.open_session(None, "Marta")
        await chat.visitor_says(session, "¿Abrís el domingo?")
        (interaction,) = engine.interactions.values()
        await engine.interaction_action(interaction.id, "reply", {"text": "Sí, de 10 a 14."})
        with trio.fail_after(20):
            while await chat.messages.pending_count():
                await trio.sleep(0.02)
        await chat.send_transcript(session, "marta@customer.test")
        with pytest.raises(ValueError, match="a moment ago"):
            await chat.send_transcript(session, "marta@customer.test")
        with trio.fail_after(30):
            while not smtp_sink.received():
                await trio.sleep(0.02)
        ((_, rcpts, raw),) = smtp_sink.received()
        assert rcpts == ["marta@customer.test"]
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        assert mail["Subject"] == "Your chat transcript"
        body = mail.get_content()
        assert "Marta: ¿Abrís el domingo?" in body and "Agent: Sí, de 10 a 14." in body
        assert len(engine.interactions) == 1  # a transcript is not a new email conversation


async def test_transcript_to_a_hostile_address_is_refused(dovecot, smtp_sink, tmp_path: Path) -> None:
    config = f"""
[email]
imap = "{dovecot.url('support')}"
smtp = "smtp://127.0.0.1:{smtp_sink.port}"
address = "support@example.com"
"""
    async with open_test_engine(config, plugins=[email_plugin], data_dir=tmp_path) as engine:
        mailer = engine.channels["email"]
        for hostile in ("a@b.test\r\nBcc: x@evil.test", "not-an-address", "a@b", "<a@b.test>"):
            with pytest.raises(ValueError):
                await mailer.send_transcript(hostile, "Your chat transcript", "x")
