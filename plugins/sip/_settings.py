"""The ``[sip]`` configuration section: its schema, validated by the engine with file and line numbers.

Every timer is configurable (tests use short values). CONTRACT.md fixes ``[sip] listen``,
``[[sip.users]]`` (``name``, ``password``) and ``[[sip.trunks]]`` (``name``, ``server``, ``username``,
``password``, ``register``, ``match``, ``outbound``); everything else here is ours.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

__all__ = [
    "SipSecuritySettings",
    "SipSettings",
    "SipTimers",
    "SipTrunkSettings",
    "SipUserSettings",
]


def _check_listen(values: list[str]) -> str | None:
    from ._transport import ListenAddress

    for value in values:
        try:
            ListenAddress.parse(value)
        except ValueError as exc:
            return str(exc)
    return None


def _check_networks(values: list[str]) -> str | None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"expected an address or network like 203.0.113.0/24, got {value!r}"
    return None


def _check_sip_uri(value: str) -> str | None:
    if not value.lower().startswith(("sip:", "sips:")):
        return f"expected a SIP URI like sip:203.0.113.5:5060, got {value!r}"
    return None


_DTMF_METHODS = ("rfc4733", "inband", "info", "auto")


def _check_dtmf(value: str) -> str | None:
    if value and value not in _DTMF_METHODS:
        return f"expected one of {', '.join(_DTMF_METHODS)} (or nothing: the [media] dtmf default), got {value!r}"
    return None


def _check_user_name(value: str) -> str | None:
    if not value or not all(c.isalnum() or c in "-_.!~*'()+" for c in value):
        return f"expected a SIP user part of letters, digits and -_.+, got {value!r}"
    return None


@dataclass(frozen=True)
class SipUserSettings:
    """A phone that registers with the engine (an agent's desk phone, a softphone)."""

    name: str = field(metadata={"check": _check_user_name})
    password: str = field(metadata={"check": lambda v: None if v else "expected a non-empty password"})
    #: how many devices may register under this name at once (the oldest binding is replaced)
    max_contacts: int = field(default=3, metadata={"min": 1, "max": 100})
    #: numbers this phone may call through a trunk (dialplan patterns); internal users are always allowed
    dial: list[str] = field(default_factory=list)
    display_name: str = ""
    #: the number shown to the called party when this phone calls out through a trunk ("+" and digits;
    #: empty: the trunk's own from_user/username)
    caller_id: str = ""
    #: how this phone's digits are heard: rfc4733 | inband | info | auto; empty: ``[media] dtmf``
    dtmf: str = field(default="", metadata={"check": _check_dtmf})


@dataclass(frozen=True)
class SipTrunkSettings:
    """A provider the engine registers to, or accepts calls from, and calls out through."""

    name: str
    server: str = field(metadata={"check": _check_sip_uri})
    username: str = ""
    password: str = ""
    register: bool = False
    match: list[str] = field(default_factory=list, metadata={"check": _check_networks})
    outbound: bool = False
    #: registration lifetime we ask for (the provider may shorten it, or demand more with 423)
    expires: int = field(default=3600, metadata={"min": 10})
    #: outbound dial strings allowed through this trunk (dialplan patterns). The default allows
    #: national numbers only: no "+", no "00" international prefix, no premium "90x" ranges.
    dial: list[str] = field(default_factory=lambda: ["_[1-8]XXXXX."])
    #: digits prepended to (and "+" stripped from) the dialled number before it reaches the provider
    prefix: str = ""
    from_user: str = ""
    realm: str = ""
    transport: str = field(default="udp", metadata={"check": lambda v: None if v in ("udp", "tcp") else "expected udp or tcp"})
    #: how callers' digits through this trunk are heard: rfc4733 | inband | info | auto; empty: ``[media] dtmf``
    dtmf: str = field(default="", metadata={"check": _check_dtmf})


@dataclass(frozen=True)
class SipTimers:
    """Every protocol timer, in seconds."""

    t1: float = field(default=0.5, metadata={"min": 0.001})
    t2: float = field(default=4.0, metadata={"min": 0.001})
    t4: float = field(default=5.0, metadata={"min": 0.001})
    #: REGISTER: shortest lifetime accepted (shorter gets 423), longest granted, and the default
    register_min_expires: int = field(default=60, metadata={"min": 1})
    register_max_expires: int = field(default=3600, metadata={"min": 1})
    register_default_expires: int = field(default=3600, metadata={"min": 1})
    #: OPTIONS keep-alive to registered contacts (0 disables); a contact that does not answer within
    #: ``qualify_timeout`` is considered unreachable until it answers again
    qualify_interval: float = field(default=60.0, metadata={"min": 0})
    qualify_timeout: float = field(default=5.0, metadata={"min": 0.01})
    #: how long an offer rings an agent's phone before it counts as not answered
    ring_timeout: float = field(default=30.0, metadata={"min": 0.01})
    #: trunk registration: re-register when this fraction of the granted lifetime has passed
    reregister_fraction: float = field(default=0.8, metadata={"min": 0.1, "max": 0.95})
    #: trunk registration failures back off from ``retry`` doubling up to ``retry_max``
    trunk_retry: float = field(default=30.0, metadata={"min": 0.01})
    trunk_retry_max: float = field(default=600.0, metadata={"min": 0.01})
    #: digest nonces are valid this long (then answered with stale=true)
    nonce_ttl: float = field(default=300.0, metadata={"min": 1})
    #: TCP: idle connection cut-off; time allowed to finish a started message
    tcp_idle_timeout: float = field(default=600.0, metadata={"min": 0.01})
    tcp_message_timeout: float = field(default=10.0, metadata={"min": 0.01})
    #: calls: session refresh is not negotiated; a call with no media and no signalling is not cut


@dataclass(frozen=True)
class SipSecuritySettings:
    rate: float = field(default=50.0, metadata={"min": 0.1})
    burst: float = field(default=200.0, metadata={"min": 1})
    max_failures_per_source: int = field(default=10, metadata={"min": 1})
    max_failures_per_user: int = field(default=20, metadata={"min": 1})
    failure_window: float = field(default=300.0, metadata={"min": 0.01})
    ban_time: float = field(default=300.0, metadata={"min": 0.01})
    user_lock_time: float = field(default=300.0, metadata={"min": 0.01})
    max_message_size: int = field(default=16384, metadata={"min": 512, "max": 65535})
    max_headers: int = field(default=100, metadata={"min": 10, "max": 1000})
    max_transactions_per_source: int = field(default=200, metadata={"min": 1})
    max_tcp_connections: int = field(default=1024, metadata={"min": 1})
    max_tcp_connections_per_source: int = field(default=32, metadata={"min": 1})
    #: extra scanner User-Agent substrings (the built-in list is always used)
    scanner_user_agents: list[str] = field(default_factory=list)
    #: addresses never rate limited or banned (trunk servers are added automatically)
    trusted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SipSettings:
    listen: list[str] = field(
        default_factory=lambda: ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"], metadata={"check": _check_listen}
    )
    #: digest realm of our challenges
    realm: str = "centralita"
    #: algorithms offered in challenges (one WWW-Authenticate each); answers with either are accepted
    digest_algorithms: list[str] = field(
        default_factory=lambda: ["MD5"],
        metadata={"check": lambda v: None if v and all(a.upper() in ("MD5", "SHA-256") for a in v) else "expected a non-empty list of \"MD5\" and/or \"SHA-256\""},
    )
    #: host put in Contact and SDP when the listen address is not what peers should use (NAT)
    external_host: str = ""
    user_agent: str = "Centralita"
    users: list[SipUserSettings] = field(default_factory=list)
    trunks: list[SipTrunkSettings] = field(default_factory=list)
    timers: SipTimers = field(default_factory=SipTimers)
    security: SipSecuritySettings = field(default_factory=SipSecuritySettings)
    #: put every bridged call's media through the engine's media framework (both legs face an RTP
    #: endpoint of ours), not only calls the IVR answered; needed for recording queue calls
    anchor_media: bool = False
    #: phones calling outside numbers: with a prefix (e.g. "0"), only numbers dialled with it go out
    #: through a trunk (the prefix is stripped first); empty: any number no [[routes]] entry matches
    outbound_prefix: str = field(default="", metadata={"check": lambda v: None if v == "" or (v.isascii() and v.isdigit() and len(v) <= 4) else "expected up to 4 digits"})
