"""Hostile and unusual mail through the real channel (Dovecot + aiosmtpd): bounded, logged, nothing lost."""

from __future__ import annotations

import email
import email.policy
import json
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
idle_timeout = 5.0
retry_first = 0.2
max_message_bytes = 200000
max_attachment_bytes = 50000
auto_acknowledge = true
acknowledge_text = "We got your message."
"""


async def _append(dovecot, *messages: bytes) -> None:
    async with ImapClient(ImapUrl.parse(dovecot.url("support"))) as client:
        for raw in messages:
            await client.append("INBOX", raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def _mail(sender: str, subject: str, message_id: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


async def _wait(predicate, timeout: float = 30.0):
    with trio.fail_after(timeout):
        while not (value := await predicate()):
            await trio.sleep(0.02)
        return value


async def test_hostile_mail_is_bounded_and_nothing_valid_is_lost(dovecot, smtp_sink, tmp_path: Path) -> None:
    html = _mail("eve@customer.test", "HTML", "<html@customer.test>")
    html.set_content("<p>Click</p><script>document.cookie</script><p>here</p>", subtype="html")
    attached = _mail("bob@customer.test", "Invoice", "<att@customer.test>")
    attached.set_content("two files")
    attached.add_attachment(b"%PDF small", maintype="application", subtype="pdf", filename="../../../invoice.pdf")
    attached.add_attachment(bytes(60000), maintype="application", subtype="zip", filename="big.zip")
    huge = _mail("zed@customer.test", "Huge", "<huge@customer.test>")
    huge.set_content("see the video")
    huge.add_attachment(bytes(400000), maintype="video", subtype="mp4", filename="v.mp4")
    robot = _mail("noreply@shop.test", "Out of office", "<ooo@shop.test>", Auto_Submitted="auto-replied")
    robot.set_content("I am away")
    ours = _mail("support@example.com", "loop", "<loop@example.com>")
    ours.set_content("our own mail must not start a conversation")
    await _append(dovecot, bytes(html), bytes(attached), bytes(huge), bytes(robot), bytes(ours))

    async with open_test_engine(_config(dovecot, smtp_sink), plugins=[email_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["email"]

        async def all_read():
            return channel.received == 4

        await _wait(all_read)
        rows = {r["external_id"]: r for r in await engine.store.fetchall(
            "SELECT external_id, body, meta FROM msg_messages WHERE direction='inbound'")}
        assert set(rows) == {"<html@customer.test>", "<att@customer.test>", "<huge@customer.test>", "<ooo@shop.test>"}
        assert "Click" in rows["<html@customer.test>"]["body"] and "cookie" not in rows["<html@customer.test>"]["body"]
        files = json.loads(rows["<att@customer.test>"]["meta"])["attachments"]
        assert [f["filename"] for f in files] == ["invoice.pdf", "big.zip"]
        assert (tmp_path / files[0]["path"]).read_bytes() == b"%PDF small"
        assert "path" not in files[1] and "refused" in files[1]
        assert Path(tmp_path / files[0]["path"]).resolve().is_relative_to(tmp_path.resolve())
        huge_meta = json.loads(rows["<huge@customer.test>"]["meta"])
        assert any("body not fetched" in p for p in huge_meta["problems"])
        assert len(engine.interactions) == 4

        # Acknowledgements go to people, not to auto-replies (no mail loops).
        async def acks():
            got = smtp_sink.received()
            return got if len(got) == 3 else None

        got = await _wait(acks)
        assert sorted(r[1][0] for r in got) == ["bob@customer.test", "eve@customer.test", "zed@customer.test"]
        ack = email.message_from_bytes(got[0][2], policy=email.policy.default)
        assert ack["Auto-Submitted"] == "auto-replied"

        # A bounce for one of our messages marks it failed.
        bounced_id = next(email.message_from_bytes(r[2], policy=email.policy.default)["Message-ID"]
                          for r in got if r[1] == ["eve@customer.test"])
        bounce = (
            "From: MAILER-DAEMON@mx.test\r\nTo: support@example.com\r\nSubject: Undelivered\r\n"
            "Message-ID: <b1@mx.test>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="x"\r\n\r\n'
            "--x\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
            "--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\n"
            "Final-Recipient: rfc822; eve@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
            f"--x\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {bounced_id}\r\nSubject: x\r\n\r\n--x--\r\n"
        ).encode()
        await _append(dovecot, bounce)

        async def marked_failed():
            row = await engine.store.fetchone(
                "SELECT status FROM msg_messages WHERE external_id=?", (bounced_id,))
            return row == {"status": "failed"}

        await _wait(marked_failed)
        assert len(engine.interactions) == 4  # a bounce is not a customer conversation
