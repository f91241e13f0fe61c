"""Parse one complete SIP message (a UDP datagram, or one message cut out by :class:`StreamFramer`).

The outcome for every input is a :class:`Request`/:class:`Response` or a :class:`SipParseError` whose
``status`` is the answer RFC 3261 / RFC 4475 call for (``None``: drop silently, as for any broken
response). Hostile input costs bounded time and memory: limits are checked before work is done.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import SipParseError
from ._grammar import is_token
from ._headers import _CANON_CACHE, _NAMES, Headers, canonical_name, split_values
from ._address import NameAddr, Via
from ._message import Request, Response, _cseq, _expires, _max_forwards, _vias
from ._uri import GenericUri, SipUri, Uri

__all__ = ["ParseLimits", "parse_message", "DEFAULT_LIMITS"]


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what a peer may make us parse."""

    max_message: int = 65536  #: bytes in one message (start line, headers and body)
    max_headers: int = 256  #: header lines (after unfolding)
    max_header_line: int = 8192  #: characters in one unfolded header line or the start line
    max_content_length_digits: int = 10


DEFAULT_LIMITS = ParseLimits()

#: exceptions of ours turned into a 400 by :func:`parse_message` (should stay empty)
INTERNAL_ERRORS: dict[str, int] = {}

# Header fields that may appear at most once (RFC 3261 §20 and §7.3.1): a second one is a 400.
_SINGLE = ("call-id", "cseq", "from", "to", "max-forwards", "content-length", "content-type", "expires")
_REQUIRED_REQUEST = ("via", "from", "to", "call-id", "cseq")
_SCHEMES = ("sip", "sips", "tel")
_NO_REQUIRE_CHECK = ("ACK", "CANCEL")
_KNOWN_NAMES = frozenset(k for k, _ in _NAMES.values())


class _Failure(Exception):
    def __init__(self, reason: str, status: int | None = 400) -> None:
        self.reason = reason
        self.status = status


def parse_message(
    data: bytes,
    *,
    limits: ParseLimits = DEFAULT_LIMITS,
    supported: frozenset[str] | set[str] = frozenset(),
) -> Request | Response:
    """Parse one complete message.

    ``supported`` lists the option tags we implement; a request whose Require names another one is
    refused with 420 and an ``Unsupported`` header (RFC 3261 §8.2.2.3). Extra octets after the
    Content-Length in a datagram are ignored (RFC 3261 §18.3).
    """
    try:
        return _parse(bytes(data), limits, supported)
    except SipParseError:
        raise
    except (ValueError, IndexError, KeyError, UnicodeError, OverflowError, RecursionError) as exc:
        # Defence in depth: a peer must never crash the reader. Counted, because each one is a bug of ours
        # (the property tests assert that the count stays at zero).
        INTERNAL_ERRORS[type(exc).__name__] = INTERNAL_ERRORS.get(type(exc).__name__, 0) + 1
        raise SipParseError(f"malformed message ({type(exc).__name__})", 400) from None


def _parse(data: bytes, limits: ParseLimits, supported: frozenset[str] | set[str]) -> Request | Response:
    start = 0
    n = len(data)
    while data.startswith(b"\r\n", start):  # RFC 3261 §7.5: ignore CRLFs before the start line
        start += 2
    is_response = data.startswith(b"SIP/", start)
    # A broken response is never answered: every early failure of one is a silent drop.
    drop_or = (lambda status: None) if is_response else (lambda status: status)
    if start >= n:
        raise SipParseError("empty message", None)
    too_large = n - start > limits.max_message
    if too_large:
        # Still read a header section that fits, so the 513 can be answered; the body is not looked at.
        end = data.find(b"\r\n\r\n", start, start + limits.max_message)
        if end < 0 or is_response:
            raise SipParseError("message too large", drop_or(513))
    else:
        end = data.find(b"\r\n\r\n", start)
    missing_blank_line = end < 0
    if missing_blank_line:
        # Truncated or sloppy: still read the header fields, so the 400 can be answered.
        raw_head = data[start:].removesuffix(b"\r\n")
        body = b""
    else:
        raw_head = data[start:end]
        body = data[end + 4 :]

    try:
        head = raw_head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header section is not valid UTF-8", drop_or(400)) from None
    if "\x00" in head and not _nuls_are_quoted(head):
        raise SipParseError("NUL byte in the header section", drop_or(400))
    if head.count("\n") != head.count("\r\n") or head.count("\r") != head.count("\r\n"):
        raise SipParseError("bare CR or LF in the header section", drop_or(400))
    if "\r\n " in head or "\r\n\t" in head:
        head = _unfold(head)
    lines = head.split("\r\n")
    first_error: _Failure | None = None
    if too_large:
        first_error = _Failure("message too large", 513)
        body = b""
    if missing_blank_line:
        first_error = _Failure("no empty line after the header fields")
    if len(lines) - 1 > limits.max_headers:
        first_error = _Failure("too many header fields", 513)
        lines = lines[: limits.max_headers + 1]

    start_line = lines[0]
    if len(start_line) > limits.max_header_line:
        raise SipParseError("start line too long", drop_or(414))

    max_line = limits.max_header_line
    items: list[tuple[str, str, str]] = []
    index: dict[str, list[str]] = {}
    cache_get = _CANON_CACHE.get
    index_get = index.get
    append = items.append
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            first_error = first_error or _Failure("header line without a name and colon")
            continue
        canon = cache_get(name)  # only valid token names are cached
        if canon is None:  # not a name seen before exactly as written (e.g. "TO " or a new extension)
            name = name.rstrip(" \t")
            canon = cache_get(name) or canonical_name(name)
            if canon[0] not in _KNOWN_NAMES and not is_token(name):
                first_error = first_error or _Failure(f"invalid header name {name[:40]!r}")
                continue
        if len(line) > max_line:
            first_error = first_error or _Failure("header line too long", 513)
            continue
        key = canon[0]
        value = value.strip(" \t")
        known = index_get(key)
        if known is None:
            known = index[key] = []
        if "," in value:
            for v in split_values(key, value):
                append((key, canon[1], v))
                known.append(v)
        else:
            append((key, canon[1], value))
            known.append(value)
    headers = Headers._from_parsed(items, index)

    if is_response:
        return _finish_response(start_line, headers, body, first_error, limits)
    return _finish_request(start_line, headers, body, first_error, limits, supported)


def _nuls_are_quoted(head: str) -> bool:
    """A NUL is allowed only as a quoted-pair (``\\`` NUL) inside a quoted string (RFC 3261 §25.1)."""
    for line in head.split("\r\n"):
        if "\x00" not in line:
            continue
        quoted = False
        i = 0
        while i < len(line):
            ch = line[i]
            if quoted and ch == "\\":
                i += 2  # a quoted-pair: any octet may follow, NUL included
                continue
            if ch == '"':
                quoted = not quoted
            elif ch == "\x00":
                return False
            i += 1
    return True


def _unfold(head: str) -> str:
    """Replace each line fold (CRLF followed by SP/HT) by a single space (RFC 3261 §7.3.1)."""
    lines = head.split("\r\n")
    out = [lines[0]]
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and len(out) > 1:
            out[-1] = out[-1].rstrip(" \t") + " " + line.lstrip(" \t")
        else:
            out.append(line)
    return "\r\n".join(out)


def _body(headers: Headers, body: bytes, limits: ParseLimits) -> bytes:
    value = headers.get("Content-Length")
    if value is None:
        return body  # a datagram without Content-Length: the body runs to the end (RFC 3261 §18.3)
    if not value.isdigit() or not value.isascii():
        raise _Failure(f"invalid Content-Length {value[:40]!r}")
    if len(value) > limits.max_content_length_digits:
        raise _Failure("Content-Length too large")
    length = int(value)
    if length > len(body):
        raise _Failure("Content-Length is larger than the message body")
    return body[:length]


def _finish_response(
    start_line: str, headers: Headers, body: bytes, error: _Failure | None, limits: ParseLimits
) -> Response:
    # Any broken response is dropped: nobody can be told (RFC 4475 §3.1.2.5, §3.1.2.19).
    parts = start_line.split(" ", 2)
    if len(parts) < 2:
        raise SipParseError("malformed status line", None)
    version, code = parts[0], parts[1]
    reason = parts[2] if len(parts) == 3 else ""
    if version.upper() != "SIP/2.0":
        raise SipParseError(f"unsupported version {version[:20]!r}", None)
    if len(code) != 3 or not code.isdigit() or not code.isascii() or not 100 <= int(code) <= 699:
        raise SipParseError(f"invalid status code {code[:20]!r}", None)
    if error is not None:
        raise SipParseError(error.reason, None)
    try:
        index = headers._get_index()
        for key in _REQUIRED_REQUEST:
            if key not in index:
                raise _Failure(f"missing {key}")
        for key in _SINGLE:
            if len(index.get(key, ())) > 1:
                raise _Failure(f"more than one {key}")
        body = _body(headers, body, limits)
        headers.parsed("cseq", _cseq)
        headers.parsed("via", _vias)
    except (_Failure, SipParseError) as exc:
        raise SipParseError(exc.reason, None) from None
    return Response(int(code), reason, headers, body, "SIP/2.0")


def _finish_request(
    start_line: str,
    headers: Headers,
    body: bytes,
    error: _Failure | None,
    limits: ParseLimits,
    supported: frozenset[str] | set[str],
) -> Request:
    parts = start_line.split(" ")
    method = parts[0] if parts else ""
    uri_text = parts[1] if len(parts) > 1 else ""
    version = parts[2] if len(parts) > 2 else "SIP/2.0"
    uri: Uri | None = None

    def fail(reason: str, status: int = 400, extra: tuple[tuple[str, str], ...] = ()) -> SipParseError:
        usable = all(k in headers for k in ("via", "cseq", "call-id")) and is_token(method)
        partial = None
        if usable:
            partial = Request(method, uri or GenericUri("x-invalid", "uri"), headers, b"", "SIP/2.0")
        return SipParseError(reason, status, partial=partial, headers=extra)

    if len(parts) != 3 or not all(parts):
        error = error or _Failure("malformed request line (exactly one SP between its three parts)")
    elif not is_token(method):
        error = error or _Failure(f"invalid method {method[:40]!r}")
    if error is not None:
        raise fail(error.reason, error.status or 400)
    if version.upper() != "SIP/2.0":
        if not version.upper().startswith("SIP/"):
            raise fail(f"malformed SIP version {version[:20]!r}")
        raise fail(f"SIP version {version[:20]!r} not supported", 505)
    index = headers._get_index()
    cache = headers._cache
    try:
        for key in _REQUIRED_REQUEST:
            if key not in index:
                raise _Failure(f"missing {canonical_name(key)[1]} header field")
        for key in _SINGLE:
            values = index.get(key)
            if values is not None and len(values) > 1:
                raise _Failure(f"more than one {canonical_name(key)[1]} header field")
        # The views below are parsed here once (to refuse what is malformed) and cached for later use.
        number, cseq_method = cache["cseq"] = _cseq(headers)
        if cseq_method != method:
            raise _Failure("CSeq method does not match the request method")
        cache["via"] = [Via.parse(v) for v in index["via"]]
        cache["from"] = NameAddr.parse(index["from"][0])
        cache["to"] = NameAddr.parse(index["to"][0])
        if "max-forwards" in index:
            cache["max-forwards"] = _max_forwards(headers)
        if "expires" in index:
            cache["expires"] = _expires(headers)
        if "contact" in index:
            contacts = cache["contact"] = [NameAddr.parse(v) for v in index["contact"]]
            if len(contacts) > 1 and any(c.is_wildcard for c in contacts):
                raise _Failure("Contact: * mixed with other contacts")
        if "content-length" in index:
            body = _body(headers, body, limits)
    except _Failure as exc:
        raise fail(exc.reason, exc.status or 400) from None
    except SipParseError as exc:
        raise fail(exc.reason, exc.status or 400) from None

    scheme = uri_text.partition(":")[0].lower()
    if uri_text.startswith("<"):
        raise fail("Request-URI enclosed in <>")
    if scheme in _SCHEMES:
        try:
            uri = SipUri.parse(uri_text)
        except SipParseError as exc:
            raise fail(exc.reason) from None
        if uri.headers:
            raise fail("Request-URI carries header fields")  # RFC 4475 §3.1.2.11
    else:
        try:
            uri = GenericUri.parse(uri_text)
        except SipParseError as exc:
            raise fail(exc.reason) from None
        raise fail(f"URI scheme {uri.scheme[:20]!r} not supported", 416)

    if method not in _NO_REQUIRE_CHECK and "require" in index:
        unknown = [tag for tag in headers.get_all("Require") if tag.strip().lower() not in supported]
        if unknown:
            raise fail("Bad Extension", 420, (("Unsupported", ", ".join(unknown)),))
    return Request(method, uri, headers, body, "SIP/2.0")

