"""Helpers shared by the SIP shell tests (imported by module name; conftest puts this folder on sys.path)."""

from __future__ import annotations

import secrets
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"
RFC4475_DIR = SHARED / "testdata" / "rfc4475"

#: Short timers so nothing in the tests waits for real-life durations.
FAST_TIMERS = """
[sip.timers]
t1 = 0.05
t2 = 0.4
t4 = 0.5
qualify_interval = 0
ring_timeout = 5
trunk_retry = 0.2
trunk_retry_max = 1
tcp_message_timeout = 1
"""


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is needed for this test: apt-get install -y {package}")
    return path


class UdpPeer:
    """A raw SIP peer on a UDP socket of its own (port picked by the OS)."""

    def __init__(self) -> None:
        self.sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.port = 0

    async def bind(self) -> UdpPeer:
        await self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        return self

    async def send(self, data: bytes, port: int) -> None:
        await self.sock.sendto(data, ("127.0.0.1", port))

    async def receive(self, timeout: float = 10.0) -> bytes:
        with trio.fail_after(timeout):
            data, _ = await self.sock.recvfrom(65536)
        return data

    async def receive_until(self, predicate: Callable[[bytes], bool], timeout: float = 10.0) -> list[bytes]:
        """Every datagram up to and including the first one ``predicate`` accepts."""
        seen: list[bytes] = []
        with trio.fail_after(timeout):
            while True:
                data, _ = await self.sock.recvfrom(65536)
                seen.append(data)
                if predicate(data):
                    return seen

    def close(self) -> None:
        self.sock.close()


def options(peer_port: int, *, call_id: str | None = None, user: str = "anything", transport: str = "UDP") -> bytes:
    call_id = call_id or secrets.token_hex(6)
    return (
        f"OPTIONS sip:{user}@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{peer_port};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def status_of(data: bytes) -> int | None:
    if not data.startswith(b"SIP/2.0 "):
        return None
    return int(data[8:11])


def header(data: bytes, name: str) -> str | None:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower().encode():
            return value.strip().decode()
    return None
