"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), and opaque URIs of other schemes.

Components are stored unescaped; ``str(uri)`` re-escapes them, except that a URI that was parsed and not
changed prints exactly as it was received (so forwarding never rewrites what a peer sent).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ._errors import SipParseError
from ._grammar import (
    HEADER_SAFE,
    PARAM_SAFE,
    PASSWORD_SAFE,
    USER_SAFE,
    escape,
    unescape,
)

__all__ = ["SipUri", "GenericUri", "Uri", "parse_uri"]

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?")
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_TEL_RE = re.compile(r"[0-9A-Fa-f*#+\-.()pPwW]+")
_OPAQUE_BAD = frozenset(' \t\r\n<>"')
# The common case (no escapes, no URI headers) in one match; anything else takes the general path.
_SIP_FAST = re.compile(
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/]+)(?::([A-Za-z0-9\-_.!~*'()&=+$,]*))?@)?"
    r"([A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+(?:=[A-Za-z0-9\-_.!~*'()\[\]/:&+$]*)?)*)",
    re.I,
)


def _bad(what: str) -> SipParseError:
    return SipParseError(f"invalid URI: {what}", 400)


@dataclass(eq=True, slots=True)
class SipUri:
    """A ``sip:``, ``sips:`` or ``tel:`` URI.

    For ``tel:`` the number is in ``user`` and ``host`` is empty. ``params`` maps lower-cased names to
    values (``None`` for a flag such as ``lr``); ``headers`` holds the ``?name=value`` part.
    """

    scheme: str = "sip"
    user: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    password: str | None = None
    _raw: str | None = field(default=None, compare=False, repr=False)

    __hash__ = None  # type: ignore[assignment]  # params are mutable dicts

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a sip/sips/tel URI; anything else raises :class:`SipParseError` (400)."""
        text = text.strip(" \t")
        m = _SIP_FAST.fullmatch(text)
        if m is not None:
            scheme, user, password, host, port, ptext = m.groups()
            if port is None or int(port) <= 65535:
                return cls(scheme.lower(), user, host.lower(), None if port is None else int(port),
                           _parse_uri_params(ptext[1:]) if ptext else {}, {}, password, text)
        return cls._parse_general(text)

    @classmethod
    def _parse_general(cls, text: str) -> SipUri:
        scheme, colon, rest = text.partition(":")
        lscheme = scheme.lower()
        if not colon or lscheme not in ("sip", "sips", "tel"):
            raise _bad(f"not a sip/sips/tel URI: {text[:80]!r}")
        if not rest or not _OPAQUE_BAD.isdisjoint(rest):
            raise _bad("empty or contains spaces/brackets/quotes")
        try:
            if lscheme == "tel":
                return cls._parse_tel(rest, text)
            return cls._parse_sip(lscheme, rest, text)
        except ValueError as exc:
            raise _bad(str(exc)) from None

    @classmethod
    def _parse_tel(cls, rest: str, raw: str) -> SipUri:
        number, _, ptext = rest.partition(";")
        if not _TEL_RE.fullmatch(number):
            raise ValueError("bad telephone number")
        return cls("tel", number, "", None, _parse_uri_params(ptext), {}, None, raw)

    @classmethod
    def _parse_sip(cls, scheme: str, rest: str, raw: str) -> SipUri:
        user = password = None
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            u, colon, p = userinfo.partition(":")
            if not u:
                raise ValueError("empty user part")
            user = unescape(u)
            if colon:
                password = unescape(p)
        rest, qmark, htext = rest.partition("?")
        hostport, _, ptext = rest.partition(";")
        if hostport.startswith("["):
            end = hostport.find("]")
            if end < 0:
                raise ValueError("unterminated IPv6 reference")
            host, portpart = hostport[: end + 1], hostport[end + 1 :]
            if not _IPV6_RE.fullmatch(host):
                raise ValueError("bad IPv6 reference")
            if portpart and not portpart.startswith(":"):
                raise ValueError("junk after IPv6 reference")
            portstr = portpart[1:] if portpart else None
        else:
            host, colon, portstr = hostport.partition(":")
            if not colon:
                portstr = None
            if not _HOSTNAME_RE.fullmatch(host):
                raise ValueError(f"bad host {host[:80]!r}")
        port = None
        if portstr is not None:
            if not portstr.isdigit() or not portstr.isascii() or len(portstr) > 5 or int(portstr) > 65535:
                raise ValueError("bad port")
            port = int(portstr)
        headers: dict[str, str] = {}
        if qmark:
            for piece in htext.split("&"):
                name, eq, value = piece.partition("=")
                if not name or not eq:
                    raise ValueError("bad URI header")
                headers[unescape(name)] = unescape(value)
        return cls(scheme, user, host.lower(), port, _parse_uri_params(ptext), headers, password, raw)

    def replace(self, **changes: object) -> SipUri:
        """A copy with some components changed (it prints from its components, not the received text)."""
        return dataclasses.replace(self, _raw=None, **changes)  # type: ignore[arg-type]

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.upper() if value else None

    @property
    def hostport(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        if self._raw is not None:
            return self._raw
        if self.scheme == "tel":
            out = ["tel:", self.user or ""]
        else:
            out = [self.scheme, ":"]
            if self.user is not None:
                out.append(escape(self.user, USER_SAFE))
                if self.password is not None:
                    out += [":", escape(self.password, PASSWORD_SAFE)]
                out.append("@")
            out.append(self.hostport)
        for k, v in self.params.items():
            out.append(f";{escape(k, PARAM_SAFE)}")
            if v is not None:
                out.append(f"={escape(v, PARAM_SAFE)}")
        if self.headers:
            out.append("?")
            out.append(
                "&".join(f"{escape(k, HEADER_SAFE)}={escape(v, HEADER_SAFE)}" for k, v in self.headers.items())
            )
        return "".join(out)


def _parse_uri_params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    if not text:
        return params
    for piece in text.split(";"):
        name, eq, value = piece.partition("=")
        if not name:
            raise ValueError("empty URI parameter")
        params[unescape(name).lower()] = unescape(value) if eq else None
    return params


@dataclass(eq=True, slots=True)
class GenericUri:
    """A URI of a scheme we do not interpret (``http:``, ``urn:``, ``isbn:``...), kept as text."""

    scheme: str
    opaque: str

    @classmethod
    def parse(cls, text: str) -> GenericUri:
        text = text.strip(" \t")
        scheme, colon, rest = text.partition(":")
        if not colon or not _SCHEME_RE.fullmatch(scheme) or not rest or not _OPAQUE_BAD.isdisjoint(rest):
            raise _bad(f"not an absolute URI: {text[:80]!r}")
        return cls(scheme, rest)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | GenericUri


def is_plain_sip_uri(text: str) -> bool:
    """Whether ``text`` is a sip/sips URI of the common form (no escapes, no headers) that parses."""
    m = _SIP_FAST.fullmatch(text)
    return m is not None and (m.group(5) is None or int(m.group(5)) <= 65535)


def parse_uri(text: str) -> Uri:
    """Parse any absolute URI: sip/sips/tel as :class:`SipUri`, others as :class:`GenericUri`."""
    head = text[:5].lower().lstrip(" \t")
    if head.startswith(("sip:", "sips:", "tel:")):
        return SipUri.parse(text)
    return GenericUri.parse(text)
