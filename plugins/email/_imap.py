"""A small IMAP4rev1 client on trio streams (the I/O shell around :mod:`._imap_proto`).

Why our own and not ``imaplib`` in a thread: Python 3.11's imaplib has no IDLE, and a blocked worker
thread cannot be cancelled; on trio streams every read has a deadline, cancellation is clean, and the
response reader bounds memory against a hostile server.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

import trio

from ._imap_proto import (
    CommandBuilder,
    FetchItem,
    ImapServerError,
    Response,
    ResponseReader,
    capabilities,
    exists_count,
    fetch_item,
    quote,
    response_code,
    search_uids,
)

log = logging.getLogger("centralita.email.imap")


@dataclass(frozen=True)
class ImapUrl:
    tls: bool  # imaps:// (TLS from the first byte); imap:// upgrades with STARTTLS when offered
    host: str
    port: int
    user: str
    password: str
    mailbox: str

    @classmethod
    def parse(cls, url: str) -> ImapUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps"):
            raise ValueError(f"expected imap:// or imaps://, got {url.split(':', 1)[0]!r}")
        tls = parts.scheme == "imaps"
        return cls(
            tls=tls,
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (993 if tls else 143),
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
        )


@dataclass(frozen=True)
class Mailbox:
    uidvalidity: int
    uidnext: int | None
    exists: int


class ImapClient:
    def __init__(self, url: ImapUrl, *, timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None,
                 max_message_bytes: int = 64 * 1024 * 1024) -> None:
        self.url = url
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.reader = ResponseReader(max_literal=max_message_bytes + 1024)
        self.commands = CommandBuilder()
        self.stream: trio.abc.Stream | None = None
        self.caps: set[str] = set()
        self.pending: list[Response] = []  # untagged responses that arrived outside a command

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def connect(self) -> None:
        with trio.fail_after(self.timeout):
            stream: trio.abc.Stream = await trio.open_tcp_stream(self.url.host, self.url.port)
            if self.url.tls:
                stream = trio.SSLStream(stream, self.ssl_context, server_hostname=self.url.host)
            self.stream = stream
            greeting = await self._read()
            if greeting.status() not in ("OK", "PREAUTH"):
                raise ImapServerError("server refused the connection", greeting.text)
            self.caps = capabilities(greeting) or set()
            if not self.caps:
                await self.command("CAPABILITY")
            if not self.url.tls and "STARTTLS" in self.caps:
                await self.command("STARTTLS")
                self.stream = trio.SSLStream(stream, self.ssl_context, server_hostname=self.url.host)
                self.reader = ResponseReader(max_literal=self.reader.max_literal)
                await self.command("CAPABILITY")
            if greeting.status() != "PREAUTH":
                await self.command("LOGIN", quote(self.url.user), quote(self.url.password), secret=True)
                await self.command("CAPABILITY")

    async def aclose(self) -> None:
        if self.stream is not None:
            stream, self.stream = self.stream, None
            with trio.move_on_after(2) as scope:
                scope.shield = True
                try:
                    _tag, data = self.commands.build("LOGOUT")
                    await stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
                await stream.aclose()

    async def _read(self) -> Response:
        assert self.stream is not None
        while True:
            response = self.reader.next_response()
            if response is not None:
                return response
            data = await self.stream.receive_some(65536)
            if not data:
                raise ImapServerError("server closed the connection")
            self.reader.feed(data)

    async def command(self, name: str, *args: bytes, secret: bool = False) -> list[Response]:
        """Send one command, return its untagged responses; raise :class:`ImapServerError` on NO/BAD."""
        assert self.stream is not None, "not connected"
        tag, data = self.commands.build(name, *args)
        log.debug("C: %s", f"{tag} {name} ***" if secret else data[:200])
        untagged: list[Response] = []
        with trio.fail_after(self.timeout):
            await self.stream.send_all(data)
            while True:
                response = await self._read()
                if response.tag == tag:
                    if response.status() != "OK":
                        raise ImapServerError(f"{name} refused", response.text)
                    caps = capabilities(response)
                    if caps:
                        self.caps = caps
                    return untagged
                if response.tag == "*":
                    caps = capabilities(response)
                    if caps:
                        self.caps = caps
                    if response.status() == "BYE":
                        raise ImapServerError("server said BYE", response.text)
                    untagged.append(response)
                # "+" continuations are not expected outside IDLE/literals: ignore them.

    async def select(self, mailbox: str) -> Mailbox:
        responses = await self.command("SELECT", quote(mailbox))
        uidvalidity = None
        uidnext = None
        exists = 0
        for response in responses:
            code = response_code(response)
            if code and code[0] == "UIDVALIDITY":
                uidvalidity = int(code[1])
            elif code and code[0] == "UIDNEXT":
                uidnext = int(code[1])
            count = exists_count(response)
            if count is not None:
                exists = count
        if uidvalidity is None:
            raise ImapServerError("SELECT did not report UIDVALIDITY")
        return Mailbox(uidvalidity, uidnext, exists)

    async def uids_after(self, last_uid: int) -> list[tuple[int, int | None]]:
        """``(uid, size)`` of every message with a UID above ``last_uid``, ascending."""
        responses = await self.command("UID FETCH", f"{last_uid + 1}:*".encode(), b"(UID RFC822.SIZE)")
        items = [item for r in responses if (item := fetch_item(r)) is not None]
        return sorted({(i.uid, i.size) for i in items if i.uid > last_uid})

    async def fetch(self, uid: int, section: str = "") -> FetchItem | None:
        responses = await self.command("UID FETCH", str(uid).encode(), f"(UID BODY.PEEK[{section}])".encode())
        for response in responses:
            item = fetch_item(response)
            if item is not None and item.uid == uid and item.body is not None:
                return item
        return None

    async def fetch_many(self, uids: list[int]) -> dict[int, bytes]:
        """Whole messages for ``uids`` in one round trip (the caller bounds the total size)."""
        if not uids:
            return {}
        wanted = set(uids)
        responses = await self.command("UID FETCH", ",".join(map(str, uids)).encode(), b"(UID BODY.PEEK[])")
        out: dict[int, bytes] = {}
        for response in responses:
            item = fetch_item(response)
            if item is not None and item.uid in wanted and item.body is not None:
                out[item.uid] = item.body
        return out

    async def search_all(self) -> list[int]:
        for response in await self.command("UID SEARCH", b"ALL"):
            uids = search_uids(response)
            if uids is not None:
                return uids
        return []

    async def append(self, mailbox: str, message: bytes) -> None:
        """Put ``message`` into ``mailbox`` (tests and the Sent folder use this)."""
        assert self.stream is not None
        tag, head = self.commands.build("APPEND", quote(mailbox), b"{" + str(len(message)).encode() + b"}")
        with trio.fail_after(self.timeout):
            await self.stream.send_all(head)
            while True:
                response = await self._read()
                if response.tag == "+":
                    break
                if response.tag == tag:
                    raise ImapServerError("APPEND refused", response.text)
            await self.stream.send_all(message + b"\r\n")
            while True:
                response = await self._read()
                if response.tag == tag:
                    if response.status() != "OK":
                        raise ImapServerError("APPEND refused", response.text)
                    return

    async def idle(self, max_wait: float) -> bool:
        """IDLE (RFC 2177) until the mailbox changes or ``max_wait`` passes; True if something arrived."""
        assert self.stream is not None
        tag, data = self.commands.build("IDLE")
        with trio.fail_after(self.timeout):
            await self.stream.send_all(data)
            while True:
                response = await self._read()
                if response.tag == "+":
                    break
                if response.tag == tag:
                    raise ImapServerError("IDLE refused", response.text)
        changed = False
        with trio.move_on_after(max_wait):
            while not changed:
                response = await self._read()
                if response.tag == "*" and (exists_count(response) is not None or b"RECENT" in response.line.upper()):
                    changed = True
                elif response.tag == "*" and response.status() == "BYE":
                    raise ImapServerError("server said BYE during IDLE", response.text)
        with trio.fail_after(self.timeout):
            await self.stream.send_all(b"DONE\r\n")
            while True:
                response = await self._read()
                if response.tag == tag:
                    return changed
                if response.tag == "*" and exists_count(response) is not None:
                    changed = True
