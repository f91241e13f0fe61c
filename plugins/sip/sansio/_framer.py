"""Cut a stream (TCP/TLS) into SIP messages using Content-Length (RFC 3261 §18.3).

On a stream, a missing, malformed or oversized Content-Length leaves no way to find the next message, so
it is a :class:`SipFramingError`: the connection must be closed. The buffer never holds more than
``max_message`` bytes of an incomplete message.
"""

from __future__ import annotations

from ._errors import SipFramingError

__all__ = ["StreamFramer"]

_CL_NAMES = (b"content-length", b"l")


class StreamFramer:
    """Feed it bytes as they arrive; it returns complete messages.

    Keep-alives between messages (RFC 5626 §3.5.1: a double CRLF "ping" or a single CRLF "pong") are
    skipped; :meth:`take_pings` tells how many pings arrived, so the shell can answer each with a CRLF.
    """

    def __init__(self, max_message: int = 65536, max_headers: int = 256, max_content_length_digits: int = 10):
        self.max_message = max_message
        self.max_headers = max_headers
        self.max_content_length_digits = max_content_length_digits
        self._buf = bytearray()
        self._scanned = 0  # the header terminator is not in _buf[:_scanned]
        self._need = -1  # total length of the message being completed, once its header is known
        self._pings = 0
        self._closed = False
        self.messages = 0
        self.keepalives = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return every message now complete, in order.

        On a framing error the exception's ``messages`` holds the messages completed before it.
        """
        if self._closed:
            raise SipFramingError("stream already broken")
        self._buf += data
        out: list[bytes] = []
        try:
            while self._next(out):
                pass
        except SipFramingError as exc:
            self._closed = True
            self._buf.clear()
            exc.messages = out  # complete messages that came before the break: handle, then close
            raise
        return out

    def _next(self, out: list[bytes]) -> bool:
        buf = self._buf
        if self._need < 0:
            # Skip keep-alives before a message.
            skipped = 0
            while buf.startswith(b"\r\n", skipped):
                if buf.startswith(b"\r\n\r\n", skipped):
                    self._pings += 1
                    self.keepalives += 1
                    skipped += 4
                else:
                    if len(buf) - skipped < 4 and b"\r\n\r\n".startswith(bytes(buf[skipped:])):
                        break  # could still become a ping
                    self.keepalives += 1
                    skipped += 2
            if skipped:
                del buf[:skipped]
                self._scanned = 0
            if buf and len(buf) < 4 and b"\r\n\r\n".startswith(bytes(buf)):
                return False
            end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
            if end < 0:
                self._scanned = len(buf)
                if len(buf) > self.max_message:
                    raise SipFramingError("header section larger than the message limit")
                return False
            self._need = end + 4 + self._content_length(bytes(buf[:end]))
            if self._need > self.max_message:
                raise SipFramingError("message larger than the limit")
        if len(buf) < self._need:
            return False
        out.append(bytes(buf[: self._need]))
        del buf[: self._need]
        self._need = -1
        self._scanned = 0
        self.messages += 1
        return True

    def _content_length(self, head: bytes) -> int:
        lines = head.split(b"\r\n")
        if len(lines) - 1 > self.max_headers:
            raise SipFramingError("too many header fields")
        found: int | None = None
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or name[:1] in (b" ", b"\t"):
                continue
            if name.strip(b" \t").lower() not in _CL_NAMES:
                continue
            value = value.strip(b" \t")
            if not value.isdigit() or len(value) > self.max_content_length_digits:
                raise SipFramingError("invalid Content-Length")
            if found is not None and found != int(value):
                raise SipFramingError("conflicting Content-Length header fields")
            found = int(value)
        if found is None:
            raise SipFramingError("missing Content-Length on a stream transport")
        return found

    def take_pings(self) -> int:
        """How many double-CRLF pings arrived since the last call (answer each with one CRLF)."""
        pings, self._pings = self._pings, 0
        return pings

    def buffered(self) -> int:
        return len(self._buf)

    def statistics(self) -> dict[str, int]:
        return {"messages": self.messages, "keepalives": self.keepalives, "buffered": len(self._buf)}
