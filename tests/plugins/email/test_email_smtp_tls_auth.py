"""SMTP out with STARTTLS, implicit TLS and AUTH against aiosmtpd on loopback (certificate made by openssl)."""

from __future__ import annotations

import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from engine.messaging import DeliveryError
from plugins.email._smtp import SmtpSender, classify


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is missing: apt-get install -y openssl")
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Sink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(bytes(envelope.original_content or envelope.content))
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"agent", b"pa:ss@word")
    return AuthResult(success=ok)


def _serve(certificate, *, implicit: bool) -> Iterator[tuple[int, _Sink]]:
    from aiosmtpd.controller import Controller

    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = _Sink()
    port = _free_port()
    kwargs = {"hostname": "127.0.0.1", "port": port, "authenticator": _authenticator, "auth_required": True}
    if implicit:
        controller = Controller(sink, ssl_context=context, auth_require_tls=False, **kwargs)
    else:
        controller = Controller(sink, tls_context=context, require_starttls=True, **kwargs)
    if implicit:
        # aiosmtpd's readiness probe speaks plain TCP; give it a client context for the implicit-TLS port.
        controller._trigger_server = lambda: _tls_probe(port, cert)  # type: ignore[method-assign]
    controller.start()
    try:
        yield port, sink
    finally:
        controller.stop()


def _tls_probe(port: int, cert: Path) -> None:
    context = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.recv(100)


@pytest.fixture
def starttls_server(certificate):
    yield from _serve(certificate, implicit=False)


@pytest.fixture
def implicit_tls_server(certificate):
    yield from _serve(certificate, implicit=True)


def _message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "support@example.com"
    msg["To"] = "c@customer.test"
    msg["Subject"] = "Re: x"
    msg["Message-ID"] = "<t1@example.com>"
    msg.set_content("over TLS")
    return msg


async def test_starttls_and_auth(starttls_server, certificate) -> None:
    port, sink = starttls_server
    context = ssl.create_default_context(cafile=str(certificate[0]))
    sender = SmtpSender(f"smtp://agent:pa%3Ass%40word@127.0.0.1:{port}", timeout=10, ssl_context=context)
    await sender.send(_message(), "support@example.com", ["c@customer.test"])
    assert len(sink.messages) == 1 and b"over TLS" in sink.messages[0]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # it is TLS: implicit, from the first byte
async def test_implicit_tls_and_auth(implicit_tls_server, certificate) -> None:
    port, sink = implicit_tls_server
    context = ssl.create_default_context(cafile=str(certificate[0]))
    sender = SmtpSender(f"smtps://agent:pa%3Ass%40word@127.0.0.1:{port}", timeout=10, ssl_context=context)
    await sender.send(_message(), "support@example.com", ["c@customer.test"])
    assert len(sink.messages) == 1


def test_smtp_errors_are_classified_by_who_can_fix_them() -> None:
    assert not classify(smtplib.SMTPAuthenticationError(535, b"bad credentials")).permanent  # config: fix and retry
    assert classify(smtplib.SMTPRecipientsRefused({"x@y": (550, b"no such user")})).permanent
    assert not classify(smtplib.SMTPRecipientsRefused({"x@y": (450, b"mailbox busy")})).permanent
    assert classify(smtplib.SMTPDataError(554, b"rejected as spam")).permanent
    assert not classify(smtplib.SMTPDataError(451, b"try later")).permanent
    assert not classify(ConnectionRefusedError(111, "refused")).permanent


async def test_untrusted_certificate_is_refused(starttls_server) -> None:
    port, sink = starttls_server
    sender = SmtpSender(f"smtp://agent:pa%3Ass%40word@127.0.0.1:{port}", timeout=10)
    with pytest.raises(DeliveryError) as info:
        await sender.send(_message(), "support@example.com", ["c@customer.test"])
    assert not info.value.permanent
    assert sink.messages == []
