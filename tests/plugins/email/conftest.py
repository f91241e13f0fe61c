"""Real mail servers for the email tests: Dovecot (IMAP) and aiosmtpd (SMTP), on loopback.

Dovecot runs from a config of the test's own (NOTES.md recipe); aiosmtpd runs in its own thread and
hands every message it receives to the test through a thread-safe list.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOVECOT = "/usr/sbin/dovecot"
PASSWORD = "s3cret-pw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DovecotServer:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    def url(self, user: str = "support", mailbox: str = "INBOX") -> str:
        return f"imap://{user}:{PASSWORD}@127.0.0.1:{self.port}/{mailbox}"


def _dovecot_config(root: Path, port: int, uid: int, gid: int) -> str:
    return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = {uid}
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
    address = 127.0.0.1
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    if not os.path.exists(DOVECOT):
        pytest.fail("Dovecot is missing: apt-get install -y dovecot-imapd")
    user = pwd.getpwnam("dovecot")
    root = Path(tempfile.mkdtemp(prefix="centralita-dovecot-"))
    os.chmod(root, 0o755)
    (root / "mail").mkdir()
    os.chown(root / "mail", user.pw_uid, user.pw_gid)
    users = ["support", "customer", "other"]
    (root / "passwd").write_text(
        "".join(f"{u}:{{PLAIN}}{PASSWORD}:{user.pw_uid}:{user.pw_gid}::{root}/mail/{u}\n" for u in users)
    )
    process = None
    try:
        for _attempt in range(5):
            port = _free_port()
            config = root / "dovecot.conf"
            config.write_text(_dovecot_config(root, port, user.pw_uid, user.pw_gid))
            process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 20
            up = False
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                        up = s.recv(100).startswith(b"* OK")
                        break
                except OSError:
                    time.sleep(0.05)  # polling a child process's port: no event to wait on
            if up:
                break
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            process.kill()
            process.wait()
            process = None
            if "Address already in use" not in log:
                pytest.fail(f"dovecot did not start: {log[-2000:]}")
        assert process is not None, "dovecot never found a free port"
        yield DovecotServer(root, port, process)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class SmtpSink:
    port: int
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse: bool = False  # answer 451 to every DATA (a server in trouble)
    auth: tuple[str, str] | None = None

    def received(self) -> list[tuple[str, list[str], bytes]]:
        with self.lock:
            return list(self.messages)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        if self.sink.refuse:
            return "451 4.3.0 try again later"
        with self.sink.lock:
            self.sink.messages.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        pytest.fail("aiosmtpd is missing: .venv/bin/pip install aiosmtpd")
    sink = SmtpSink(port=0)
    # aiosmtpd checks readiness by connecting to the port it was given, so it cannot take port 0:
    # pick a free port and retry on the rare collision.
    for _attempt in range(5):
        sink.port = _free_port()
        controller = Controller(_Handler(sink), hostname="127.0.0.1", port=sink.port)
        try:
            controller.start()
            break
        except (OSError, RuntimeError):
            continue
    else:
        pytest.fail("aiosmtpd could not bind a loopback port")
    try:
        yield sink
    finally:
        controller.stop()
