"""Trunks (``[[sip.trunks]]``): registration to the provider, recognising its calls, calling out.

Registration state per trunk:

=============  ======================================  ==========================================
state          on 200                                  on failure (4xx-6xx but 401/407/423, timeout)
=============  ======================================  ==========================================
unregistered   -> registered (re-register at a         -> failed, retry after ``trunk_retry``
               fraction of the granted lifetime)          doubling up to ``trunk_retry_max``
registering    same                                    same; 401/407 answered once per nonce; 423
                                                       raises our Expires to Min-Expires and retries
registered     stays (refreshed)                       -> failed, backoff as above
=============  ======================================  ==========================================

Inbound calls from a trunk (CONTRACT.md): a source whose address (and port, when ``server`` names
one) equals the server's, or that lies in ``match``, is the trunk and is not challenged.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine._dialplan import matches

from ._auth import answer_challenge
from ._core import ClientTransaction, new_branch, new_tag
from ._settings import SipTrunkSettings
from ._timers import TimerHandle
from ._transport import Peer
from .sansio import Headers, Request, Response, SipPeerError, SipUri

if TYPE_CHECKING:
    from ._channel import SipChannel

__all__ = ["Trunk", "TrunkManager", "DialRefused", "check_dial_string"]

log = logging.getLogger("centralita.sip.trunks")


class DialRefused(ValueError):
    """A dial string was refused before it reached a trunk (syntax, allowlist or a plugin's veto)."""


def check_dial_string(number: str) -> str:
    """The strict syntax every outbound number must have: an optional ``+`` then 1-20 digits.

    Anything else (``300&Zap/g1/...``, spaces, letters, ``;`` parameters, ``@`` hosts) is refused
    before routing ever sees it (AST-2010-002).
    """
    digits = number[1:] if number.startswith("+") else number
    if not digits or len(digits) > 20 or not digits.isascii() or not digits.isdigit():
        raise DialRefused(f"not a dialable number: {number[:40]!r}")
    return number


@dataclass
class Trunk:
    settings: SipTrunkSettings
    uri: SipUri
    state: str = "unregistered"
    expires: int = 3600
    granted: int = 0
    failures: int = 0
    last_status: int | None = None
    last_error: str = ""
    call_id: str = field(default_factory=lambda: new_branch()[7:] + "@centralita")
    cseq: int = 0
    from_tag: str = field(default_factory=new_tag)
    timer: TimerHandle | None = None
    networks: list[Any] = field(default_factory=list)
    #: OPTIONS ping ("qualify") of the provider: None until the first ping is answered or times out.
    reachable: bool | None = None
    rtt_ms: float | None = None
    qualify_sent: float | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def peer(self) -> Peer:
        transport = "tcp" if self.settings.transport == "tcp" or self.uri.params.get("transport") == "tcp" else "udp"
        return Peer(transport, self.uri.host.strip("[]"), self.uri.port or 5060)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "server": self.settings.server,
            "register": self.settings.register,
            "state": self.state if self.settings.register else "static",
            "granted_expires": self.granted,
            "failures": self.failures,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "reachable": self.reachable,
            "rtt_ms": self.rtt_ms,
        }


class TrunkManager:
    def __init__(self, channel: SipChannel) -> None:
        self.channel = channel
        self.timers = channel.settings.timers
        self.trunks: dict[str, Trunk] = {}
        self._qualify_timer: TimerHandle | None = None
        for settings in channel.settings.trunks:
            uri = SipUri.parse(settings.server)
            trunk = Trunk(settings, uri, expires=settings.expires)
            for net in settings.match:
                trunk.networks.append(ipaddress.ip_network(net, strict=False))
            self.trunks[settings.name] = trunk

    def start(self) -> None:
        for trunk in self.trunks.values():
            if trunk.settings.register:
                self.register(trunk)
        if self.timers.qualify_interval > 0 and self.trunks:
            self._qualify_all(self.channel.core.clock())

    def statistics(self) -> dict[str, Any]:
        return {name: t.to_json() for name, t in self.trunks.items()}

    # --------------------------------------------------------------------------------- inbound matching

    def trunk_for(self, peer: Peer) -> Trunk | None:
        for trunk in self.trunks.values():
            host = trunk.uri.host.strip("[]")
            if peer.host == host and (trunk.uri.port is None or trunk.uri.port == peer.port):
                return trunk
        try:
            address = ipaddress.ip_address(peer.host)
        except ValueError:
            return None
        for trunk in self.trunks.values():
            if any(address in net for net in trunk.networks):
                return trunk
        return None

    # --------------------------------------------------------------------------------------- outbound

    def outbound_trunk(self, number: str, name: str | None = None) -> Trunk:
        """The trunk that may carry a call to ``number`` (checked against its ``dial`` allowlist)."""
        check_dial_string(number)
        candidates = [self.trunks[name]] if name in self.trunks else [t for t in self.trunks.values() if t.settings.outbound]
        # A trunk whose registration is failing is tried last (the provider is probably unreachable).
        candidates.sort(key=lambda t: t.settings.register and t.state == "failed")
        if not candidates:
            raise DialRefused("no outbound trunk is configured")
        for trunk in candidates:
            if any(matches(pattern, number) for pattern in trunk.settings.dial):
                return trunk
        raise DialRefused(f"{number} is not allowed by any outbound trunk's dial allowlist")

    def request_uri(self, trunk: Trunk, number: str) -> str:
        digits = trunk.settings.prefix + (number[1:] if trunk.settings.prefix and number.startswith("+") else number)
        host = trunk.uri.host
        port = f":{trunk.uri.port}" if trunk.uri.port else ""
        return f"sip:{digits}@{host}{port}"

    # ----------------------------------------------------------------------------------- registration

    def register(self, trunk: Trunk, authorization: tuple[str, str] | None = None) -> None:
        core = self.channel.core
        if trunk.state != "registered":
            trunk.state = "registering"
        trunk.cseq += 1
        s = trunk.settings
        host = trunk.uri.host
        user = s.username or s.from_user or "centralita"
        headers = Headers()
        headers.add("From", f"<sip:{user}@{host}>;tag={trunk.from_tag}")
        headers.add("To", f"<sip:{user}@{host}>")
        headers.add("Call-ID", trunk.call_id)
        headers.add("CSeq", f"{trunk.cseq} REGISTER")
        headers.add("Contact", f"<{core.contact_uri(trunk.peer.transport, user)}>")
        headers.add("Expires", str(trunk.expires))
        if authorization is not None:
            headers.add(*authorization)
        port = f":{trunk.uri.port}" if trunk.uri.port else ""
        request = Request("REGISTER", f"sip:{host}{port}", headers)
        core.request(request, trunk.peer, lambda r, t, tr=trunk, auth=authorization is not None: self._registered(tr, r, t, auth))

    def _registered(self, trunk: Trunk, response: Response | None, txn: ClientTransaction, authed: bool) -> None:
        if response is not None and response.status < 200:
            return
        core = self.channel.core
        if response is None:
            self._failed(trunk, None, "no answer from the provider")
            return
        trunk.last_status = response.status
        status = response.status
        if status in (401, 407) and not authed:
            name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
            for challenge in response.headers.get_all(name):
                port = f":{trunk.uri.port}" if trunk.uri.port else ""
                value = answer_challenge(
                    challenge, "REGISTER", f"sip:{trunk.uri.host}{port}", trunk.settings.username, trunk.settings.password
                )
                if value is not None:
                    self.register(trunk, ("Authorization" if status == 401 else "Proxy-Authorization", value))
                    return
            self._failed(trunk, status, "cannot answer the provider's challenge")
            return
        if status == 423:
            raw = response.headers.get("Min-Expires") or ""
            if raw.isdigit() and len(raw) <= 7 and int(raw) > trunk.expires:
                trunk.expires = int(raw)
                self.register(trunk)
                return
            self._failed(trunk, status, "423 without a usable Min-Expires")
            return
        if 200 <= status < 300:
            granted = self._granted(trunk, response)
            trunk.granted = granted
            trunk.failures = 0
            trunk.last_error = ""
            changed = trunk.state != "registered"
            trunk.state = "registered"
            if changed:
                log.info("sip: trunk %s registered for %ds", trunk.name, granted)
                self._publish(trunk)
            delay = max(1.0, granted * self.timers.reregister_fraction)
            trunk.timer = core.scheduler.call_at(core.clock() + delay, lambda now, tr=trunk: self.register(tr))
            return
        self._failed(trunk, status, f"{status} {response.reason}"[:120])

    def _granted(self, trunk: Trunk, response: Response) -> int:
        try:
            ours = self.channel.core.contact_uri(trunk.peer.transport, trunk.settings.username or "centralita")
            for contact in response.contact:
                raw = contact.params.get("expires")
                if str(contact.uri) == ours and raw and raw.isdigit():
                    return int(raw)
            if response.expires is not None:
                return response.expires
        except SipPeerError:
            pass
        return trunk.expires

    def _failed(self, trunk: Trunk, status: int | None, error: str) -> None:
        core = self.channel.core
        trunk.failures += 1
        trunk.last_status = status
        trunk.last_error = error
        was = trunk.state
        trunk.state = "failed"
        delay = min(self.timers.trunk_retry * 2 ** (trunk.failures - 1), self.timers.trunk_retry_max)
        if was != "failed":
            log.warning("sip: trunk %s registration failed (%s); retrying in %.0fs", trunk.name, error, delay)
            self._publish(trunk)
        trunk.timer = core.scheduler.call_at(core.clock() + delay, lambda now, tr=trunk: self.register(tr))

    def _publish(self, trunk: Trunk) -> None:
        bus = getattr(self.channel.context, "bus", None)
        if bus is not None:
            bus.publish("SipTrunkStatus", Trunk=trunk.name, State=trunk.state, Status=trunk.last_status or 0, Error=trunk.last_error)

    # ---------------------------------------------------------------------------------------- qualify

    def _qualify_all(self, now: float) -> None:
        """Ping every trunk now and again after ``qualify_interval`` (the same timer as the registrar's)."""
        for trunk in self.trunks.values():
            self.qualify(trunk)
        core = self.channel.core
        self._qualify_timer = core.scheduler.call_at(core.clock() + self.timers.qualify_interval, self._qualify_all)

    def qualify(self, trunk: Trunk) -> None:
        """One OPTIONS to the provider; its round trip is the trunk's RTT, silence makes it unreachable."""
        core = self.channel.core
        host = trunk.uri.host
        port = f":{trunk.uri.port}" if trunk.uri.port else ""
        user = trunk.settings.username or trunk.settings.from_user or "centralita"
        headers = Headers()
        headers.add("From", f"<sip:{user}@{host}>;tag={new_tag()}")
        headers.add("To", f"<sip:{host}{port}>")
        headers.add("Call-ID", new_branch()[7:] + "@centralita")
        headers.add("CSeq", "1 OPTIONS")
        request = Request("OPTIONS", f"sip:{host}{port}", headers)
        sent = core.clock()
        trunk.qualify_sent = sent

        def answered(response: Response | None, txn: Any, trunk: Trunk = trunk) -> None:
            if trunk.qualify_sent != sent or (response is not None and response.status < 200):
                return
            trunk.qualify_sent = None
            if response is None:
                self._unreachable(trunk)
                return
            # Any final answer (a 405 or 404 too) shows the provider is there and how far away.
            trunk.rtt_ms = round((core.clock() - sent) * 1000.0, 1)
            if trunk.reachable is not True:
                trunk.reachable = True
                log.info("sip: trunk %s answers OPTIONS (%.1f ms)", trunk.name, trunk.rtt_ms)

        def timed_out(now: float, trunk: Trunk = trunk) -> None:
            if trunk.qualify_sent == sent:
                self._unreachable(trunk)

        core.request(request, trunk.peer, answered)
        core.scheduler.call_at(sent + self.timers.qualify_timeout, timed_out)

    def _unreachable(self, trunk: Trunk) -> None:
        if trunk.reachable is not False:
            trunk.reachable = False
            log.warning("sip: trunk %s does not answer OPTIONS", trunk.name)
