"""A voicemail is mailed to its box's address (real aiosmtpd server), WAV attached, exactly once."""

from __future__ import annotations

import email
import email.policy
import socket
from pathlib import Path
from typing import Any

import trio

from engine import InteractionState, hookimpl
from engine.testing import FakeVoiceChannel, open_test_engine, wait_until
from plugins.email import plugin as email_plugin
from plugins.email._voicemail_notify import VoicemailNotice, build_voicemail_mail


class Voice:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)


def _closed_port() -> int:
    # IMAP is not part of these tests: point the channel at a port nobody listens on.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(smtp_port: int, *, email_section: bool = True) -> str:
    text = """
[[routes]]
match = "100"
flow = "vm"

[[flows]]
name = "vm"
start = "leave"

[flows.nodes.leave]
type = "voicemail"
box = "sales"

[[voicemail]]
name = "sales"
email = "sales-team@example.com"
max_seconds = 30
"""
    if email_section:
        text += f"""
[email]
imap = "imap://u:p@127.0.0.1:{_closed_port()}/INBOX"
smtp = "smtp://127.0.0.1:{smtp_port}"
address = "voicemail@example.com"
name = "Centralita Voicemail"
retry_first = 0.2
retry_max = 1.0
reconnect_backoff = 5.0
"""
    return text


async def leave_voicemail(engine, caller: str) -> dict[str, Any]:
    voice = engine.channels["fake"]
    before = {m["id"] for m in await engine.voicemail.list("sales")}
    call = voice.call(caller, "100")
    await wait_until(lambda: call.state is InteractionState.ENDED)
    (message,) = [m for m in await engine.voicemail.list("sales") if m["id"] not in before]
    return message


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


async def test_a_voicemail_is_mailed_with_the_recording_attached(smtp_sink, tmp_path: Path) -> None:
    async with open_test_engine(_config(smtp_sink.port), plugins=[Voice(), email_plugin], data_dir=tmp_path) as engine:
        # A caller ID from the network trying to add a header to the notification.
        message = await leave_voicemail(engine, "+34911000444\r\nBcc: thief@attacker.test")
        await wait_until(smtp_sink.received, timeout=30)
        ((mail_from, rcpt_tos, raw),) = smtp_sink.received()
        assert mail_from == "voicemail@example.com" and rcpt_tos == ["sales-team@example.com"]
        mail = parsed(raw)
        assert mail["Bcc"] is None and "thief@attacker.test" not in (mail["To"] or "")
        subject = str(mail["Subject"])
        assert "\n" not in subject and "sales" in subject and "+34911000444" in subject
        body = mail.get_body(("plain",)).get_content()
        assert "voicemail box sales" in body and "3.0 seconds" in body and message["id"] in body
        (attachment,) = list(mail.iter_attachments())
        assert attachment.get_content_type() == "audio/wav"
        stored = (tmp_path / message["file"]).read_bytes()
        assert attachment.get_content() == stored and stored[:4] == b"RIFF"


async def test_an_smtp_outage_delays_the_mail_and_recovery_delivers_it_once(smtp_sink, tmp_path: Path) -> None:
    smtp_sink.refuse = True
    config = _config(smtp_sink.port)
    async with open_test_engine(config, plugins=[Voice(), email_plugin], data_dir=tmp_path) as engine:
        first = await leave_voicemail(engine, "+34911000555")

        async def attempts() -> int:
            row = await engine.store.fetchone("SELECT max(attempts) AS n FROM msg_outbox WHERE channel='email-voicemail'")
            return int(row["n"] or 0) if row else 0

        with trio.fail_after(30):
            while await attempts() < 2:
                await trio.sleep(0.05)
        assert smtp_sink.received() == []
        smtp_sink.refuse = False
        await wait_until(smtp_sink.received, timeout=30)

        async def outbox_empty() -> bool:
            row = await engine.store.fetchone("SELECT count(*) AS n FROM msg_outbox WHERE channel='email-voicemail'")
            return row["n"] == 0

        with trio.fail_after(30):
            while not await outbox_empty():
                await trio.sleep(0.05)
        assert len(smtp_sink.received()) == 1
    # A restart (its catch-up scan looks for messages never mailed) sends nothing again; a new message
    # is mailed, and only after the scan, so by then the scan is known to have run.
    async with open_test_engine(config, plugins=[Voice(), email_plugin], data_dir=tmp_path) as engine:
        second = await leave_voicemail(engine, "+34911000666")
        await wait_until(lambda: len(smtp_sink.received()) >= 2, timeout=30)
        mails = [parsed(raw) for _, _, raw in smtp_sink.received()]
        assert len(mails) == 2
        bodies = [m.get_body(("plain",)).get_content() for m in mails]
        assert first["id"] in bodies[0] and second["id"] in bodies[1]


async def test_without_the_email_section_the_event_is_published_and_one_line_says_why_no_mail(
    smtp_sink, tmp_path: Path, caplog
) -> None:
    caplog.set_level("WARNING", logger="centralita.voicemail")
    config = _config(smtp_sink.port, email_section=False)
    async with open_test_engine(config, plugins=[Voice(), email_plugin], data_dir=tmp_path) as engine:
        async with engine.bus.subscribe("t") as events:
            await leave_voicemail(engine, "+34911000777")
            await leave_voicemail(engine, "+34911000888")
            waiting = []
            with trio.fail_after(10):
                async for event in events:
                    if event.event == "MessageWaiting":
                        waiting.append(event.fields["New"])
                        if len(waiting) == 2:
                            break
        assert waiting == [1, 2]
    warnings = [r for r in caplog.records if "sales-team@example.com" in r.getMessage()]
    assert len(warnings) == 1 and "email plugin is not configured" in warnings[0].getMessage()
    assert smtp_sink.received() == []


def test_the_mail_keeps_hostile_caller_ids_on_one_line_and_leaves_out_large_audio() -> None:
    notice = VoicemailNotice(box="sales", message="abc123", caller="+3491\nSubject: free money",
                             caller_name="Eve\u202e\r\nX-Evil: 1" + "x" * 500, created=0.0, seconds=12.4)
    mail = build_voicemail_mail(notice, sender="vm@example.com", sender_name="VM", recipient="team@example.com",
                                message_id="<vm.1@example.com>", audio=None, too_large=True)
    again = parsed(bytes(mail))
    assert again["X-Evil"] is None and len(again.get_all("Subject")) == 1
    assert "free money" in again["Subject"] and len(str(again["Subject"])) < 200
    assert list(again.iter_attachments()) == []
    assert "too large to attach" in again.get_body(("plain",)).get_content()
