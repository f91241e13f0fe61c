"""Address header values (``name-addr`` / ``addr-spec`` with parameters) and Via values."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ._errors import SipParseError
from ._grammar import Params, format_params, is_token, parse_params, quote, scan_quoted, unquote
from ._uri import GenericUri, SipUri, Uri, is_plain_sip_uri, parse_uri

__all__ = ["NameAddr", "Via"]

_WS = " \t"
_WILDCARD_URI = GenericUri("*", "")
_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_PARAMS_FAST = rf"((?:;{_TOKEN}(?:=(?:[A-Za-z0-9\-.!%*_+`'~\[\]:]+|\"[^\"\\;]*\"))?)*)"
# Common, plainly valid forms take these; everything else goes through the general parser.
_NAME_ADDR_FAST = re.compile(
    rf"(?:\"([^\"\\\x00-\x1f]*)\" ?|({_TOKEN}(?: {_TOKEN})*) ?)?<([^<>\"\s]+)>{_PARAMS_FAST}"
)
_VIA_FAST = re.compile(
    r"SIP/2\.0/([A-Za-z]+) ([A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?|\[[0-9A-Fa-f:.]+\])"
    rf"(?::([0-9]{{1,5}}))?{_PARAMS_FAST}"
)


def _fast_params(text: str) -> Params:
    params: Params = {}
    for piece in text[1:].split(";"):
        name, eq, value = piece.partition("=")
        params[name.lower()] = value if eq else None
    return params


class NameAddr:
    """``"Display Name" <uri>;param=value`` as found in From, To, Contact, Route...

    Treat instances as immutable; use :meth:`with_tag` / :meth:`replace` to derive new ones. A
    ``Contact: *`` parses to a NameAddr whose :attr:`is_wildcard` is true. (A plainly valid URI found
    while parsing is checked at once but only built into a :class:`SipUri` when ``.uri`` is first read.)
    """

    __slots__ = ("_uri", "_uri_text", "display_name", "params")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, uri: Uri | str, display_name: str | None = None, params: Params | None = None) -> None:
        self._uri: Uri | None = parse_uri(uri) if isinstance(uri, str) else uri
        self._uri_text: str | None = None
        self.display_name = display_name
        self.params: Params = {} if params is None else params

    @classmethod
    def _lazy(cls, uri_text: str, display_name: str | None, params: Params) -> NameAddr:
        self = cls.__new__(cls)
        self._uri = None
        self._uri_text = uri_text
        self.display_name = display_name
        self.params = params
        return self

    @property
    def uri(self) -> Uri:
        if self._uri is None:
            self._uri = parse_uri(self._uri_text or "")
        return self._uri

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NameAddr):
            return NotImplemented
        return (self.display_name, self.params, self.uri) == (other.display_name, other.params, other.uri)

    def __repr__(self) -> str:
        return f"NameAddr(uri={self.uri!r}, display_name={self.display_name!r}, params={self.params!r})"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def is_wildcard(self) -> bool:
        return self._uri is _WILDCARD_URI

    def with_tag(self, tag: str) -> NameAddr:
        return self.replace(params={**self.params, "tag": tag})

    def replace(self, **changes: object) -> NameAddr:
        """A copy with ``uri``, ``display_name`` or ``params`` changed."""
        unknown = set(changes) - {"uri", "display_name", "params"}
        if unknown:
            raise TypeError(f"unknown NameAddr fields {sorted(unknown)}")
        new = NameAddr.__new__(NameAddr)
        new._uri, new._uri_text = self._uri, self._uri_text
        if "uri" in changes:
            uri = changes["uri"]
            new._uri, new._uri_text = (parse_uri(uri) if isinstance(uri, str) else uri), None  # type: ignore[assignment]
        new.display_name = changes.get("display_name", self.display_name)  # type: ignore[assignment]
        new.params = changes.get("params", self.params)  # type: ignore[assignment]
        return new

    @classmethod
    def wildcard(cls) -> NameAddr:
        return cls(_WILDCARD_URI)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse one address value; raises :class:`SipParseError` (400) if it is malformed."""
        text = text.strip(_WS)
        m = _NAME_ADDR_FAST.fullmatch(text)
        if m is not None:
            quoted, plain, uri, ptext = m.groups()
            display = quoted if quoted is not None else plain
            params = _fast_params(ptext) if ptext else {}
            if is_plain_sip_uri(uri):
                return cls._lazy(uri, display, params)
            return cls(parse_uri(uri), display, params)
        try:
            return cls._parse(text)
        except SipParseError:
            raise
        except ValueError as exc:
            raise SipParseError(f"invalid address {text[:80]!r}: {exc}", 400) from None

    @classmethod
    def _parse(cls, text: str) -> NameAddr:
        if text == "*":
            return cls(_WILDCARD_URI)
        display: str | None = None
        if text.startswith('"'):
            end = scan_quoted(text, 0)
            display = unquote(text[:end])
            rest = text[end:].lstrip(_WS)
            if not rest.startswith("<"):
                raise ValueError("quoted display name not followed by <uri>")
            lt = 0
            text = rest
        else:
            lt = text.find("<")
            if lt > 0:
                words = text[:lt].split()
                if not all(is_token(w) for w in words):
                    raise ValueError("display name has characters that need quoting")
                display = " ".join(words) or None
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise ValueError("missing '>'")
            inner = text[lt + 1 : gt]
            if not inner or inner[0] in _WS or inner[-1] in _WS:
                raise ValueError("whitespace inside <...>")
            uri = parse_uri(inner)
            params = parse_params(text[gt + 1 :])
        else:
            uritext, semi, ptext = text.partition(";")
            if "?" in uritext or "," in uritext:
                raise ValueError("a URI with '?' or ',' must be enclosed in <...>")
            uri = parse_uri(uritext)
            params = parse_params(semi + ptext)
        return cls(uri, display, params)

    def __str__(self) -> str:
        if self.is_wildcard:
            return "*"
        uri = self._uri_text if self._uri is None else self._uri
        out = f"<{uri}>" if self.display_name is None else f"{quote(self.display_name)} <{uri}>"
        return out + format_params(self.params) if self.params else out


_SENT_PROTOCOL_RE = re.compile(r"[ \t]*([^/ \t]+)[ \t]*/[ \t]*([^/ \t]+)[ \t]*/[ \t]*([^/ \t]+)[ \t]+(.*)", re.S)
_HOST_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?|\[[0-9A-Fa-f:.]+\]")


@dataclass(eq=True, slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...;received=...;rport``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one Via value; raises :class:`SipParseError` (400) if it is malformed."""
        fast = _VIA_FAST.fullmatch(text)
        if fast is not None:
            transport, host, port, ptext = fast.groups()
            if port is None or 0 < int(port) < 65536:
                return cls(transport.upper(), host.lower(), None if port is None else int(port),
                           _fast_params(ptext) if ptext else {}, "SIP/2.0")
        return cls._parse_general(text)

    @classmethod
    def _parse_general(cls, text: str) -> Via:
        m = _SENT_PROTOCOL_RE.fullmatch(text)
        if m is None:
            raise SipParseError(f"invalid Via {text[:80]!r}", 400)
        name, version, transport, rest = m.groups()
        if not (is_token(name) and is_token(version) and is_token(transport)):
            raise SipParseError(f"invalid Via protocol {text[:80]!r}", 400)
        sent_by, semi, ptext = rest.partition(";")
        sent_by = sent_by.strip(_WS)
        if sent_by.startswith("["):
            end = sent_by.find("]") + 1
            host, portpart = sent_by[:end], sent_by[end:]
        else:
            host, _, portpart = sent_by.partition(":")
            portpart = ":" + portpart if _ else ""
        port = None
        if portpart:
            digits = portpart[1:].strip(_WS)
            if not portpart.startswith(":") or not digits.isdigit() or not digits.isascii() or len(digits) > 5:
                raise SipParseError(f"invalid Via port {text[:80]!r}", 400)
            port = int(digits)
            if not 0 < port < 65536:
                raise SipParseError(f"invalid Via port {text[:80]!r}", 400)
        if not host or not _HOST_RE.fullmatch(host.strip(_WS)):
            raise SipParseError(f"invalid Via host {text[:80]!r}", 400)
        try:
            params = parse_params(semi + ptext)
        except ValueError as exc:
            raise SipParseError(f"invalid Via parameters: {exc}", 400) from None
        return cls(transport.upper(), host.strip(_WS).lower(), port, params, f"{name}/{version}".upper())

    def replace(self, **changes: object) -> Via:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_params(self, **params: str | None) -> Via:
        """A copy with parameters added or replaced (``received="1.2.3.4"``, ``rport="5060"``)."""
        return dataclasses.replace(self, params={**self.params, **params})

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def rport(self) -> int | bool | None:
        """``None`` if absent, ``True`` if present without a value (please fill it), else the port."""
        if "rport" not in self.params:
            return None
        value = self.params["rport"]
        if value is None:
            return True
        return int(value) if value.isdigit() and len(value) <= 5 else None

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"
