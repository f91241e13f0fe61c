"""Email ingestion benchmark: messages per second from a real Dovecot mailbox into the engine.

Starts Dovecot on loopback (a config of its own, like the tests), APPENDs ``--mails`` messages, starts
the engine with the email channel and times until every message is recorded and has its interaction.
Also times the pure MIME parser alone.

    .venv/bin/python benchmarks/email_ingest.py [--mails 300]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PASSWORD = "bench-pw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_dovecot(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    user = pwd.getpwnam("dovecot")
    os.chmod(root, 0o755)
    (root / "mail").mkdir()
    os.chown(root / "mail", user.pw_uid, user.pw_gid)
    (root / "passwd").write_text(f"support:{{PLAIN}}{PASSWORD}:{user.pw_uid}:{user.pw_gid}::{root}/mail/support\n")
    port = _free_port()
    (root / "dovecot.conf").write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = {user.pw_uid}
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
""")
    process = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", str(root / "dovecot.conf")])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("dovecot did not start: " + (root / "dovecot.log").read_text()[-1000:])


def sample_mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n}@example.net>"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"Order {n} has not arrived"
    msg["Message-ID"] = f"<bench-{n}@example.net>"
    msg.set_content(("Hello, my order has not arrived yet and tracking shows nothing. " * 20) + f"\nRef {n}\n")
    msg.add_alternative(f"<html><body><p>Hello, my order {n} has not arrived.</p><script>x()</script></body></html>",
                        subtype="html")
    return bytes(msg).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def run(mails: int) -> dict[str, object]:
    from engine.testing import open_test_engine
    from plugins.email import ImapClient, ImapUrl, parse_email
    from plugins.email import plugin as email_plugin

    raw = [sample_mail(n) for n in range(mails)]
    start = time.perf_counter()
    for item in raw[: min(mails, 1000)]:
        parse_email(item)
    parse_rate = min(mails, 1000) / (time.perf_counter() - start)

    root = Path(tempfile.mkdtemp(prefix="centralita-bench-dovecot-"))
    process, port = start_dovecot(root)
    try:
        url = f"imap://support:{PASSWORD}@127.0.0.1:{port}/INBOX"
        async with ImapClient(ImapUrl.parse(url)) as client:
            for item in raw:
                await client.append("INBOX", item)
        config = f"""
[[agents]]
id = "alice"
endpoint = "sip:1001"
channels = {{ email = 1000 }}
[[queues]]
name = "support"
members = ["alice"]
[[routes]]
match = "support@example.com"
queue = "support"
[email]
imap = "{url}"
smtp = "smtp://127.0.0.1:9"
address = "support@example.com"
"""
        with tempfile.TemporaryDirectory() as data:
            begin = time.perf_counter()
            async with open_test_engine(config, plugins=[email_plugin], data_dir=Path(data)) as engine:
                channel = engine.channels["email"]
                with trio.fail_after(170):
                    while channel.received < mails:
                        await trio.sleep(0.01)
                elapsed = time.perf_counter() - begin
                interactions = len(engine.interactions)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(root, ignore_errors=True)
    return {
        "benchmark": "email",
        "mails": mails,
        "mail_bytes": len(raw[0]),
        "seconds_from_engine_start": round(elapsed, 3),
        "ingested_per_second": round(mails / elapsed, 1),
        "interactions": interactions,
        "parse_only_per_second": round(parse_rate, 1),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=300)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    print(json.dumps(trio.run(run, args.mails)))


if __name__ == "__main__":
    main()
