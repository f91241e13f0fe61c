"""SIP requests and responses: data, convenience views and the serializer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ._address import NameAddr, Via
from ._errors import SipLocalError, SipParseError
from ._headers import Headers
from ._uri import Uri, parse_uri

__all__ = ["Request", "Response", "make_response", "make_ack_for_failure", "make_cancel", "REASON_PHRASES"]

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 202: "Accepted", 300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service", 400: "Bad Request",
    401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 423: "Interval Too Brief", 429: "Too Many Requests",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
    483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending",
    493: "Undecipherable", 500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

HeadersLike = Headers | Iterable[tuple[str, str]] | Mapping[str, str]


def _as_headers(headers: HeadersLike | None) -> Headers:
    if isinstance(headers, Headers):
        return headers
    return Headers(headers)


def _cseq(h: Headers) -> tuple[int, str]:
    value = h.get("CSeq")
    if value is None:
        raise SipParseError("missing CSeq", 400)
    parts = value.split()
    if len(parts) != 2 or not parts[0].isdigit() or not parts[0].isascii() or len(parts[0]) > 10:
        raise SipParseError(f"invalid CSeq {value[:40]!r}", 400)
    number = int(parts[0])
    if number >= 2**31:
        raise SipParseError("CSeq number too large", 400)
    return number, parts[1]


def _vias(h: Headers) -> list[Via]:
    return [Via.parse(v) for v in h.get_all("Via")]


def _one_addr(name: str) -> Callable[[Headers], NameAddr]:
    def parse(h: Headers) -> NameAddr:
        value = h.get(name)
        if value is None:
            raise SipParseError(f"missing {name}", 400)
        return NameAddr.parse(value)

    return parse


_from = _one_addr("From")
_to = _one_addr("To")


def _contacts(h: Headers) -> list[NameAddr]:
    return [NameAddr.parse(v) for v in h.get_all("Contact")]


def _small_int(name: str, limit: int) -> Callable[[Headers], int | None]:
    def parse(h: Headers) -> int | None:
        value = h.get(name)
        if value is None:
            return None
        value = value.strip()
        if not value.isdigit() or not value.isascii() or len(value) > 10 or int(value) > limit:
            raise SipParseError(f"invalid {name} {value[:40]!r}", 400)
        return int(value)

    return parse


_max_forwards = _small_int("Max-Forwards", 255)
_expires = _small_int("Expires", 2**32 - 1)


def _same_headers(a: Headers, b: Headers) -> bool:
    # Content-Length is derived from the body by the serializer, so it does not make messages differ.
    return [(k, v) for k, _, v in a._items if k != "content-length"] == [
        (k, v) for k, _, v in b._items if k != "content-length"
    ]


class _Message:
    __slots__ = ("headers", "body", "version")

    headers: Headers
    body: bytes
    version: str

    def _set_common(self, headers: HeadersLike | None, body: bytes, version: str) -> None:
        self.headers = _as_headers(headers)
        if not isinstance(body, (bytes, bytearray)):
            raise SipLocalError("body must be bytes")
        self.body = bytes(body)
        self.version = version

    def _first_line_fields(self) -> tuple[object, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Message)
        return (
            self._first_line_fields() == other._first_line_fields()
            and self.version == other.version
            and _same_headers(self.headers, other.headers)
            and self.body == other.body
        )

    __hash__ = None  # type: ignore[assignment]

    # -- views (parsed on first use, cached until the headers change) -------------------------------
    @property
    def call_id(self) -> str | None:
        return self.headers.get("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        """``(number, method)``; raises :class:`SipParseError` if missing or malformed."""
        return self.headers.parsed("cseq", _cseq)

    @property
    def via(self) -> list[Via]:
        """Every Via value, top first."""
        return list(self.headers.parsed("via", _vias))

    @property
    def top_via(self) -> Via | None:
        vias = self.headers.parsed("via", _vias)
        return vias[0] if vias else None

    @property
    def from_(self) -> NameAddr:
        return self.headers.parsed("from", _from)

    @property
    def to(self) -> NameAddr:
        return self.headers.parsed("to", _to)

    @property
    def contact(self) -> list[NameAddr]:
        """Every Contact value (``Contact: *`` gives one NameAddr whose ``is_wildcard`` is true)."""
        return list(self.headers.parsed("contact", _contacts))

    @property
    def max_forwards(self) -> int | None:
        return self.headers.parsed("max-forwards", _max_forwards)

    @property
    def expires(self) -> int | None:
        return self.headers.parsed("expires", _expires)

    @property
    def user_agent(self) -> str | None:
        return self.headers.get("User-Agent")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @property
    def media_type(self) -> str | None:
        """The Content-Type without parameters, lower-cased (``application/sdp``)."""
        value = self.headers.get("Content-Type")
        return None if value is None else value.partition(";")[0].strip().lower()

    # -- serializer ---------------------------------------------------------------------------------
    def _start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The wire form; Content-Length is set from the body (in place if present, else last)."""
        body = self.body
        lines = [self._start_line()]
        length_done = False
        for key, name, value in self.headers._items:
            if key == "content-length":
                if length_done:
                    continue
                value = str(len(body))
                length_done = True
            lines.append(f"{name}: {value}")
        if not length_done:
            lines.append(f"Content-Length: {len(body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", errors="surrogateescape") + body

    def __bytes__(self) -> bytes:
        return self.to_bytes()


class Request(_Message):
    """A SIP request. ``uri`` may be given as text; it is parsed."""

    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: Uri | str,
        headers: HeadersLike | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        self.method = method
        self.uri: Uri = parse_uri(uri) if isinstance(uri, str) else uri
        self._set_common(headers, body, version)

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def _first_line_fields(self) -> tuple[object, ...]:
        return (self.method, self.uri)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call-id={self.call_id!r}>"


class Response(_Message):
    """A SIP response."""

    __slots__ = ("status", "reason")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: HeadersLike | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        if not 100 <= status <= 699:
            raise SipLocalError(f"status {status} is outside 100-699")
        self.status = status
        self.reason = REASON_PHRASES.get(status, "") if reason is None else reason
        self._set_common(headers, body, version)

    def _start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def _first_line_fields(self) -> tuple[object, ...]:
        return (self.status, self.reason)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} call-id={self.call_id!r}>"


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: HeadersLike = (),
    body: bytes = b"",
) -> Response:
    """Build a response to ``request`` (RFC 3261 §8.2.6.2).

    Copies every Via (in order), From, Call-ID, CSeq and To, adding ``to_tag`` to To unless it already has
    a tag or the status is 100; a 100 also copies Timestamp. ``headers`` are appended.
    """
    out: list[tuple[str, str, str]] = []
    for key, name, value in request.headers._items:
        if key in ("via", "from", "call-id", "cseq") or (key == "timestamp" and status == 100):
            out.append((key, name, value))
        elif key == "to":
            if to_tag is not None and status != 100:
                try:
                    has_tag = request.to.tag is not None
                except SipParseError:
                    has_tag = ";tag=" in value.replace(" ", "").lower()
                if not has_tag:
                    value = f"{value};tag={to_tag}"
            out.append((key, name, value))
    response = Response(status, reason, Headers._from_parsed(out), body)
    for name, value in _as_headers(headers) if not isinstance(headers, Headers) else headers:
        response.headers.add(name, value)
    return response


def _same_transaction_request(invite: Request, method: str, to: str) -> Request:
    """An ACK or CANCEL for ``invite``: its top Via (same branch), Route set, From, Call-ID and Request-URI,
    the CSeq number with ``method``, and ``to`` as the To header field (RFC 3261 §9.1, §17.1.1.3)."""
    number, _ = invite.cseq
    headers = Headers()
    top = invite.headers.get("Via")
    if top is not None:
        headers.add("Via", top)
    for value in invite.headers.get_all("Route"):
        headers.add("Route", value)
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", to)
    headers.add("Call-ID", invite.call_id or "")
    headers.add("CSeq", f"{number} {method}")
    headers.add("Max-Forwards", "70")
    return Request(method, invite.uri, headers)


def make_ack_for_failure(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 3xx-6xx (RFC 3261 §17.1.1.3): the To of the response."""
    return _same_transaction_request(invite, "ACK", response.headers.get("To") or invite.headers.get("To") or "")


def make_cancel(invite: Request) -> Request:
    """A CANCEL for a pending INVITE (RFC 3261 §9.1): same branch, Request-URI, Call-ID, From, To, CSeq no."""
    return _same_transaction_request(invite, "CANCEL", invite.headers.get("To") or "")
