"""The email channel against a real Dovecot (IMAP) and a real SMTP server (aiosmtpd), on loopback."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import trio

from engine.testing import open_test_engine
from plugins.email import ImapClient, ImapUrl
from plugins.email import plugin as email_plugin


def _config(dovecot, smtp_sink, **extra: object) -> str:
    lines = "".join(f"{k} = {v}\n" for k, v in extra.items())
    return f"""
[[agents]]
id = "alice"
endpoint = "sip:1001"
channels = {{ email = 2 }}

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
name = "Support"
idle_timeout = 5.0
retry_first = 0.2
retry_max = 1.0
reconnect_backoff = 0.1
{lines}"""


def customer_mail(subject: str, body: str, message_id: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Carmen Ruiz <carmen@customer.test>"
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return bytes(msg)


async def deliver(dovecot, raw: bytes) -> None:
    async with ImapClient(ImapUrl.parse(dovecot.url("support"))) as client:
        await client.append("INBOX", raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


async def wait_for(predicate, timeout: float = 30.0):
    with trio.fail_after(timeout):
        while True:
            value = await predicate()
            if value:
                return value
            await trio.sleep(0.02)


async def test_mail_becomes_interaction_reply_threads_and_restart_repeats_nothing(dovecot, smtp_sink, tmp_path: Path) -> None:
    config = _config(dovecot, smtp_sink)
    await deliver(dovecot, customer_mail("Broken router", "My router blinks red.", "<first@customer.test>"))

    async with open_test_engine(config, plugins=[email_plugin], data_dir=tmp_path) as engine:
        async def email_interactions():
            return [i for i in engine.interactions.values() if i.kind.value == "email"]

        (interaction,) = await wait_for(email_interactions)
        assert interaction.from_ == "carmen@customer.test"
        assert interaction.to == "support@example.com"
        assert interaction.queue == "support"
        reply = await engine.interaction_action(interaction.id, "reply", {"text": "Please unplug it for 10 s."})
        assert reply["message_id"]

        async def sent():
            return smtp_sink.received()

        ((_mail_from, rcpts, raw),) = await wait_for(sent)
        assert rcpts == ["carmen@customer.test"]
        answer = email.message_from_bytes(raw, policy=email.policy.default)
        assert answer["In-Reply-To"] == "<first@customer.test>"
        assert "<first@customer.test>" in answer["References"]
        assert "Broken router" in answer["Subject"] and "[#" in answer["Subject"]
        assert "unplug it" in answer.get_content()
        first_reply_id = answer["Message-ID"]
        # A second mail while the engine is down must arrive once after the restart.
    await deliver(
        dovecot,
        customer_mail("Re: " + str(answer["Subject"]), "Still red.", "<second@customer.test>",
                      In_Reply_To=first_reply_id, References=f"<first@customer.test> {first_reply_id}"),
    )
    await deliver(dovecot, customer_mail("Invoice question", "Why two charges?", "<third@customer.test>"))

    async with open_test_engine(config, plugins=[email_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["email"]

        async def both_read():
            return channel.received == 2 and len(engine.interactions) == 2

        await wait_for(both_read)
        store = engine.store
        rows = await store.fetchall("SELECT external_id, conversation FROM msg_messages WHERE direction='inbound' ORDER BY seq")
        assert [r["external_id"] for r in rows] == ["<first@customer.test>", "<second@customer.test>", "<third@customer.test>"]
        # The answer to our reply joined the first conversation; the new subject started another.
        assert rows[0]["conversation"] == rows[1]["conversation"] != rows[2]["conversation"]
        conversations = {i.attributes["conversation"] for i in engine.interactions.values()}
        assert conversations == {rows[0]["conversation"], rows[2]["conversation"]}
        assert channel.duplicates == 0
        # Exactly one reply was ever sent: the restart did not resend it.
        assert len(smtp_sink.received()) == 1


async def test_smtp_outage_delays_reply_never_drops_it(dovecot, smtp_sink, tmp_path: Path) -> None:
    smtp_sink.refuse = True
    await deliver(dovecot, customer_mail("Hello", "Anyone there?", "<hello@customer.test>"))
    async with open_test_engine(_config(dovecot, smtp_sink), plugins=[email_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["email"]

        async def one():
            return list(engine.interactions.values())

        (interaction,) = await wait_for(one)
        await engine.interaction_action(interaction.id, "reply", {"text": "Yes, we are here."})

        async def retried():
            return channel.outbox.retried >= 2

        await wait_for(retried)
        assert smtp_sink.received() == []
        smtp_sink.refuse = False

        async def sent():
            return smtp_sink.received()

        ((_, _, raw),) = await wait_for(sent)
        assert b"Yes, we are here." in raw

        async def recorded_sent():
            row = await engine.store.fetchone("SELECT status FROM msg_messages WHERE direction='outbound'")
            return row == {"status": "sent"}

        await wait_for(recorded_sent)


async def test_without_an_email_section_the_channel_idles_and_the_engine_is_ready(tmp_path: Path) -> None:
    async with open_test_engine("", plugins=[email_plugin], data_dir=tmp_path) as engine:
        with trio.fail_after(30):
            while not engine.ready()[0]:
                await trio.sleep(0.02)
        assert engine.channels["email"].statistics()["configured"] is False
