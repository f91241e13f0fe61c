"""An IMAP server that misbehaves (huge literal, garbage, silence): the channel reports it, reconnects with
backoff and keeps the engine healthy."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from engine.testing import open_test_engine
from plugins.email import plugin as email_plugin


class HostileImap:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections = 0
        self.port = 0

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self.serve, listeners)

    async def serve(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        buffer = b""
        try:
            await stream.send_all(b"* OK [CAPABILITY IMAP4rev1 IDLE] hostile server ready\r\n")
            while True:
                data = await stream.receive_some(4096)
                if not data:
                    return
                buffer += data
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    tag, _, command = line.partition(b" ")
                    verb = command.split(b" ", 2)[:2]
                    if self.mode == "silent" and verb[0].upper() != b"LOGIN":
                        continue  # never answers anything after the login
                    if verb[0].upper() == b"SELECT":
                        await stream.send_all(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 42] ok\r\n" + tag + b" OK done\r\n")
                    elif verb == [b"UID", b"FETCH"] and self.mode == "huge":
                        await stream.send_all(b"* 1 FETCH (UID 7 RFC822.SIZE 10 BODY[] {999999999999}\r\n")
                    elif verb == [b"UID", b"FETCH"] and self.mode == "garbage":
                        await stream.send_all(b"\xff\xfe" * 40000 + b"\r\n")
                    else:
                        await stream.send_all(tag + b" OK done\r\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


@pytest.mark.parametrize("mode", ["huge", "garbage", "silent"])
async def test_misbehaving_imap_server_is_survived(mode: str, nursery, tmp_path: Path) -> None:
    server = HostileImap(mode)
    await nursery.start(server.run)
    config = f"""
[email]
imap = "imap://support:pw@127.0.0.1:{server.port}/INBOX"
smtp = "smtp://127.0.0.1:9"
address = "support@example.com"
timeout = 0.5
reconnect_backoff = 0.05
reconnect_backoff_max = 0.1
"""
    async with open_test_engine(config, plugins=[email_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["email"]
        with trio.fail_after(30):
            while server.connections < 3:
                await trio.sleep(0.02)
        assert channel.imap_errors >= 2
        assert channel.received == 0 and not engine.interactions
        assert engine.ready()[0]
        stored = await engine.store.fetchone("SELECT value FROM msg_marks WHERE key='uid'")
        assert stored is None or stored["value"] == "0"  # nothing was skipped over
