"""The pure MIME side of the email channel: what an agent reads, what is stored, what is refused."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.email import HeaderInjectionError, build_message, html_to_text, parse_email, reply_subject
from plugins.email._mime import safe_filename


def _mail(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Ana <ana@customer.test>")
    msg["To"] = headers.pop("To", "support@example.com")
    msg["Subject"] = headers.pop("Subject", "Hello")
    msg["Message-ID"] = headers.pop("Message_ID", "<m1@customer.test>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def test_plain_text_mail_gives_sender_body_and_ids() -> None:
    msg = _mail(In_Reply_To="<a@x>", References="<root@x> <a@x>")
    msg.set_content("Mi pedido no llegó.\n")
    parsed = parse_email(bytes(msg))
    assert parsed.from_addr == "ana@customer.test"
    assert parsed.from_name == "Ana"
    assert parsed.to_addrs == ["support@example.com"]
    assert parsed.message_id == "<m1@customer.test>"
    assert parsed.text.strip() == "Mi pedido no llegó."
    assert parsed.thread_ids == ["<a@x>", "<root@x>"]
    assert parsed.problems == []


def test_html_only_mail_is_reduced_to_text_and_scripts_never_survive() -> None:
    msg = _mail()
    msg.set_content(
        "<html><head><style>p{color:red}</style><script>alert('x')</script></head>"
        "<body><p>Hola &amp; gracias</p><img src=x onerror=alert(1)><script>steal()</script>"
        "<div>Second line</div></body></html>",
        subtype="html",
    )
    parsed = parse_email(bytes(msg))
    assert "Hola & gracias" in parsed.text
    assert "Second line" in parsed.text
    for leftover in ("alert", "steal", "<", "color:red", "onerror"):
        assert leftover not in parsed.text


def test_plain_alternative_is_preferred_over_html() -> None:
    msg = _mail()
    msg.set_content("plain version")
    msg.add_alternative("<p>html version</p>", subtype="html")
    assert parse_email(bytes(msg)).text.strip() == "plain version"


def test_unknown_charset_is_decoded_with_replacements_and_reported() -> None:
    raw = (
        b"From: a@customer.test\r\nTo: support@example.com\r\nSubject: x\r\nMessage-ID: <c@x>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-klingon-42\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nqapla\xff' batlh\r\n"
    )
    parsed = parse_email(raw)
    assert "qapla" in parsed.text and "batlh" in parsed.text
    assert any("x-klingon-42" in p for p in parsed.problems)


def test_broken_mime_boundary_keeps_what_is_readable() -> None:
    raw = (
        b"From: a@customer.test\r\nTo: support@example.com\r\nSubject: broken\r\nMessage-ID: <b@x>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n"
        b"--XYZ\r\nContent-Type: text/plain\r\n\r\nvisible text\r\n--XYZ\r\nContent-Type: application/pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n%%%not base64%%%\r\n"  # no closing boundary
    )
    parsed = parse_email(raw)
    assert "visible text" in parsed.text
    assert parsed.from_addr == "a@customer.test"


def test_attachment_over_the_limit_is_described_not_kept() -> None:
    msg = _mail()
    msg.set_content("see attached")
    msg.add_attachment(b"A" * 5000, maintype="application", subtype="octet-stream", filename="../../etc/passwd")
    msg.add_attachment(b"small", maintype="text", subtype="plain", filename="note.txt")
    parsed = parse_email(bytes(msg), max_attachment_bytes=1000)
    big, small = parsed.attachments
    assert big.data is None and big.size == 5000 and big.filename == "passwd"
    assert small.data == b"small" and small.filename == "note.txt"
    assert any("over the 1000-byte limit" in p for p in parsed.problems)


def test_attachment_over_ten_megabytes_is_refused_and_body_kept() -> None:
    # (A 50 MB mail never reaches the parser: the channel fetches only its headers; see the channel tests.)
    encoded = base64.encodebytes(bytes(11 * 1024 * 1024))
    raw = (
        b"From: a@customer.test\r\nTo: support@example.com\r\nSubject: big\r\nMessage-ID: <big@x>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nhuge one attached\r\n"
        b'--b\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename="big.zip"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--b--\r\n"
    )
    parsed = parse_email(raw, max_attachment_bytes=10 * 1024 * 1024)
    assert parsed.text.strip() == "huge one attached"
    (attachment,) = parsed.attachments
    assert attachment.data is None and attachment.size == 11 * 1024 * 1024


def test_bounce_report_names_the_message_that_failed() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.test (Mail Delivery System)\r\nTo: support@example.com\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce1@mx.test>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="bnd"\r\n\r\n'
        b"--bnd\r\nContent-Type: text/plain\r\n\r\nI could not deliver your message.\r\n"
        b"--bnd\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\n"
        b"Final-Recipient: rfc822; nobody@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        b"--bnd\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: support@example.com\r\nMessage-ID: <out-1@example.com>\r\nSubject: Re: x\r\n\r\nour reply\r\n"
        b"--bnd--\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.is_bounce
    assert parsed.bounce_of == ["<out-1@example.com>"]
    assert "our reply" not in parsed.text


def test_auto_replies_are_recognised() -> None:
    msg = _mail(Auto_Submitted="auto-replied")
    msg.set_content("I am on holiday")
    assert parse_email(bytes(msg)).auto_submitted
    msg2 = _mail()
    msg2.set_content("a person wrote this")
    assert not parse_email(bytes(msg2)).auto_submitted


def test_encoded_header_with_line_break_cannot_inject_headers_into_a_reply() -> None:
    raw = (
        b"From: a@customer.test\r\nTo: support@example.com\r\nMessage-ID: <i@x>\r\n"
        b"Subject: =?utf-8?q?hi=0D=0ABcc=3A_victim=40evil.test?=\r\n\r\nbody\r\n"
    )
    parsed = parse_email(raw)
    assert "\n" not in parsed.subject and "\r" not in parsed.subject
    reply = build_message(
        sender="support@example.com", recipient=parsed.from_addr, subject=reply_subject(parsed.subject, "0123456789"),
        body="ok", message_id="<r@example.com>",
    )
    assert reply["Bcc"] is None
    assert b"\r\nBcc:" not in bytes(reply)


@pytest.mark.parametrize("field", ["subject", "recipient", "sender_name"])
def test_building_a_mail_with_a_line_break_in_a_header_is_refused(field: str) -> None:
    values = {"sender": "support@example.com", "recipient": "c@x.test", "subject": "s", "sender_name": "n"}
    values[field] = values[field] + "\r\nBcc: victim@evil.test"
    with pytest.raises(HeaderInjectionError):
        build_message(body="b", message_id="<m@x>", **values)


def test_reply_subject_keeps_one_tag_and_one_re() -> None:
    first = reply_subject("Broken router", "0123456789")
    assert first == "Re: Broken router [#0123456789]"
    assert reply_subject(first, "0123456789") == first


def test_safe_filename_never_leaves_the_folder() -> None:
    for hostile in ("../../x", "/etc/shadow", "..", "a\\..\\b", ".hidden", "\0evil"):
        name = safe_filename(hostile)
        assert "/" not in name and "\\" not in name and not name.startswith(".")


def test_html_to_text_is_bounded() -> None:
    assert len(html_to_text("<p>" + "x" * 1_000_000 + "</p>", limit=1000)) <= 1000


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_parse_without_raising(raw: bytes) -> None:
    parsed = parse_email(raw)
    assert isinstance(parsed.text, str)
    assert "\n" not in parsed.subject


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200))
def test_any_headers_and_body_parse_without_raising(subject: str, body: str) -> None:
    raw = f"From: a@b.test\r\nSubject: {subject}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{body}".encode(
        "utf-8", "surrogatepass"
    )
    parsed = parse_email(raw)
    assert "<script" not in parsed.text.lower() or "<script" in body.lower()
