"""Registrar for ``[[sip.users]]`` (RFC 3261 §10.3) with digest auth, persisted bindings and qualify.

A binding remembers the contact URI *and* the address the REGISTER came from (transport, host, port):
requests to the phone go to that address, which is what works through NAT (the Contact a phone behind
NAT advertises is usually unreachable). Bindings are written to the store (component ``sip``) so a
restarted engine still reaches registered phones; expired ones are dropped on load.

Qualify: every ``qualify_interval`` each binding gets an OPTIONS; one that does not answer within
``qualify_timeout`` is unreachable (no offers ring it) until it answers again or re-registers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine._events import safe_text

from ._auth import AuthOutcome, DigestServer
from ._core import ServerTransaction, new_branch, new_tag
from ._timers import TimerHandle
from ._transport import ListenAddress, Peer
from .sansio import Headers, NameAddr, Request, Response, SipPeerError, SipUri

if TYPE_CHECKING:
    from ._channel import SipChannel

__all__ = ["Binding", "Registrar", "MIGRATIONS_SQL"]

log = logging.getLogger("centralita.sip.registrar")

MIGRATIONS_SQL = [
    """
    CREATE TABLE sip_contacts (
        user TEXT NOT NULL,
        contact TEXT NOT NULL,
        transport TEXT NOT NULL,
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        local TEXT NOT NULL DEFAULT '',
        expires_at REAL NOT NULL,
        call_id TEXT NOT NULL DEFAULT '',
        cseq INTEGER NOT NULL DEFAULT 0,
        user_agent TEXT NOT NULL DEFAULT '',
        registered_at REAL NOT NULL,
        PRIMARY KEY (user, contact)
    )
    """
]


#: At most this many contacts are listed in the channel's statistics (the devices page).
STATUS_CONTACTS_MAX = 200


@dataclass
class Binding:
    user: str
    contact: str
    peer: Peer
    expires_at: float  # wall clock (time.time()), so it survives a restart
    call_id: str = ""
    cseq: int = 0
    user_agent: str = ""
    registered_at: float = 0.0
    reachable: bool = True
    qualify_sent: float | None = None
    #: Round trip of the last answered OPTIONS qualify, in milliseconds (None until one is answered).
    rtt_ms: float | None = None
    expiry: TimerHandle | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "contact": self.contact,
            "source": str(self.peer),
            "expires_in": max(0, round(self.expires_at - time.time())),
            "transport": self.peer.transport,
            "reachable": self.reachable,
            "rtt_ms": self.rtt_ms,
            "user_agent": self.user_agent,
        }


def endpoint_user(endpoint: str) -> str | None:
    """``sip:1001`` (CONTRACT.md's agent endpoint form) or ``sip:1001@host`` -> ``1001``."""
    if not endpoint.lower().startswith("sip:"):
        return None
    rest = endpoint[4:]
    return rest.split("@", 1)[0] or None


class Registrar:
    def __init__(self, channel: SipChannel, store: Any) -> None:
        self.channel = channel
        self.store = store
        settings = channel.settings
        self.timers = settings.timers
        self.users = {u.name: u for u in settings.users}
        self.digest = DigestServer(
            settings.realm,
            nonce_ttl=settings.timers.nonce_ttl,
            clock=channel.core.clock,
            algorithms=tuple(settings.digest_algorithms),
        )
        self.bindings: dict[str, list[Binding]] = {}
        self.stats = {"registered": 0, "unregistered": 0, "challenged": 0, "auth_failed": 0, "expired": 0}
        channel.core.handlers["REGISTER"] = self._register
        self._qualify_timer: TimerHandle | None = None

    # ------------------------------------------------------------------------------------------ public

    def reachable(self, endpoint: str) -> bool:
        user = endpoint_user(endpoint)
        now = time.time()
        return any(b.reachable and b.expires_at > now for b in self.bindings.get(user or "", ()))

    def contacts(self, user: str) -> list[Binding]:
        now = time.time()
        return [b for b in self.bindings.get(user, ()) if b.expires_at > now and b.reachable]

    def statistics(self) -> dict[str, Any]:
        return {
            **self.stats,
            "users_registered": sum(1 for v in self.bindings.values() if v),
            "bindings": sum(len(v) for v in self.bindings.values()),
            # The devices page lists each contact; bounded so a huge registrar cannot bloat every status call.
            "contacts": self.snapshot()[:STATUS_CONTACTS_MAX],
        }

    def snapshot(self) -> list[dict[str, Any]]:
        return [b.to_json() for bindings in self.bindings.values() for b in bindings]

    # -------------------------------------------------------------------------------------- authentication

    def authenticate(self, request: Request, txn: ServerTransaction, *, proxy: bool) -> str | None:
        """Check the digest credentials of ``request``; answers the challenge itself and returns None
        unless they are good, in which case it returns the authenticated user name."""
        core = self.channel.core
        guard = core.guard
        result = self.digest.verify(request, self._password_of, proxy=proxy)
        now = core.clock()
        if result.outcome is AuthOutcome.OK and guard.is_user_locked(result.username, now):
            result = type(result)(AuthOutcome.FAILED, result.username, result.known_user)
        if result.outcome is AuthOutcome.OK:
            guard.auth_succeeded(txn.source, result.username)
            return result.username
        if result.outcome is AuthOutcome.FAILED:
            self.stats["auth_failed"] += 1
            for event in guard.auth_failed(txn.source, result.username, now, known_user=result.known_user):
                self.channel._security_event(event)
        self.stats["challenged"] += 1
        status, name = (407, "Proxy-Authenticate") if proxy else (401, "WWW-Authenticate")
        stale = result.outcome is AuthOutcome.STALE
        core.respond(txn, status, headers=[(name, value) for value in self.digest.challenges(stale=stale)])
        return None

    def _password_of(self, username: str) -> str | None:
        user = self.users.get(username)
        return user.password if user is not None else None

    # ------------------------------------------------------------------------------------------ REGISTER

    def _register(self, request: Request, txn: ServerTransaction) -> None:
        core = self.channel.core
        username = self.authenticate(request, txn, proxy=False)
        if username is None:
            return
        to_uri = request.to.uri
        aor = getattr(to_uri, "user", None)
        if aor != username:
            core.respond(txn, 403, "Authenticated user does not match the To user")
            return
        user = self.users[username]
        contacts = request.contact
        header_expires = request.expires
        default = self.timers.register_default_expires if header_expires is None else header_expires
        now = time.time()
        current = self.bindings.setdefault(username, [])
        changes: list[tuple[str, Binding]] = []
        if any(c.is_wildcard for c in contacts):
            if len(contacts) != 1 or header_expires != 0:
                core.respond(txn, 400, "Wildcard Contact needs Expires: 0 and no other Contact")
                return
            for binding in list(current):
                changes.append(("delete", binding))
            current.clear()
        else:
            for contact in contacts:
                expires = default
                if "expires" in contact.params:
                    raw = contact.params.get("expires") or ""
                    if not raw.isdigit() or len(raw) > 10:
                        core.respond(txn, 400, "Invalid Contact expires")
                        return
                    expires = int(raw)
                if 0 < expires < self.timers.register_min_expires:
                    core.respond(txn, 423, headers=[("Min-Expires", str(self.timers.register_min_expires))])
                    return
                expires = min(expires, self.timers.register_max_expires)
                uri = str(contact.uri)
                existing = next((b for b in current if b.contact == uri), None)
                if existing is not None and existing.call_id == (request.call_id or "") and request.cseq[0] <= existing.cseq:
                    core.respond(txn, 500, "Out of order REGISTER", headers=[("Retry-After", "1")])
                    return
                if existing is not None:
                    current.remove(existing)
                    self._cancel_expiry(existing)
                if expires == 0:
                    if existing is not None:
                        changes.append(("delete", existing))
                    continue
                binding = Binding(
                    username,
                    uri,
                    txn.peer,
                    now + expires,
                    request.call_id or "",
                    request.cseq[0],
                    (request.user_agent or "")[:200],
                    now,
                )
                current.append(binding)
                changes.append(("upsert", binding))
                while len(current) > user.max_contacts:
                    oldest = min(current, key=lambda b: b.registered_at)
                    current.remove(oldest)
                    self._cancel_expiry(oldest)
                    changes.append(("delete", oldest))
        for kind, binding in changes:
            if kind == "upsert":
                self._schedule_expiry(binding)
                self.stats["registered"] += 1
            else:
                self.stats["unregistered"] += 1
        headers = [("Contact", f"<{b.contact}>;expires={max(0, round(b.expires_at - now))}") for b in current]
        headers.append(("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))))
        core.respond(txn, 200, headers=headers)
        if changes:
            self.channel.spawn(self._persist, changes)
            self._announce(username)

    def _announce(self, username: str) -> None:
        endpoint = f"sip:{username}"
        engine = getattr(self.channel.context, "engine", None)
        changed = getattr(engine, "endpoint_state_changed", None)
        if changed is not None:
            changed(endpoint, self.reachable(endpoint))
            return
        bus = getattr(self.channel.context, "bus", None)
        if bus is not None:
            bus.publish("DeviceStateChange", Device=endpoint, State="NOT_INUSE" if self.reachable(endpoint) else "UNAVAILABLE")

    # -------------------------------------------------------------------------------------------- expiry

    def _schedule_expiry(self, binding: Binding) -> None:
        core = self.channel.core
        delay = max(0.0, binding.expires_at - time.time())
        binding.expiry = core.scheduler.call_at(core.clock() + delay, lambda now, b=binding: self._expire(b))
        self._ensure_qualify()

    def _cancel_expiry(self, binding: Binding) -> None:
        if binding.expiry is not None:
            binding.expiry.cancel()

    def _expire(self, binding: Binding) -> None:
        current = self.bindings.get(binding.user, [])
        if binding in current:
            current.remove(binding)
            self.stats["expired"] += 1
            self.channel.spawn(self._persist, [("delete", binding)])
            self._announce(binding.user)

    async def _persist(self, changes: list[tuple[str, Binding]]) -> None:
        if self.store is None:
            return
        statements = []
        for kind, b in changes:
            if kind == "delete":
                statements.append(("DELETE FROM sip_contacts WHERE user = ? AND contact = ?", (b.user, b.contact)))
            else:
                statements.append(
                    (
                        "INSERT OR REPLACE INTO sip_contacts(user, contact, transport, host, port, local, expires_at, "
                        "call_id, cseq, user_agent, registered_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            b.user, b.contact, b.peer.transport, b.peer.host, b.peer.port,
                            str(b.peer.local) if b.peer.local else "", b.expires_at, b.call_id, b.cseq,
                            b.user_agent, b.registered_at,
                        ),
                    )
                )
        try:
            await self.store.write_many(statements)
        except Exception:
            log.exception("sip: could not save registrations")

    async def load(self) -> None:
        """Restore unexpired bindings of configured users from the store (after a restart)."""
        if self.store is None:
            return
        now = time.time()
        try:
            await self.store.write("DELETE FROM sip_contacts WHERE expires_at <= ?", (now,))
            rows = await self.store.fetchall("SELECT * FROM sip_contacts ORDER BY registered_at")
        except Exception:
            log.exception("sip: could not load saved registrations")
            return
        for row in rows:
            if row["user"] not in self.users or row["transport"] not in ("udp", "tcp"):
                continue
            local = None
            if row["local"]:
                try:
                    local = ListenAddress.parse(row["local"])
                except ValueError:
                    local = None
            # The socket may have a different port after a restart with port 0: send from the current one.
            if local is not None and local not in self.channel.transports.bound:
                local = None
            peer = Peer(row["transport"], row["host"], int(row["port"]), local)
            binding = Binding(
                row["user"], row["contact"], peer, row["expires_at"], row["call_id"], row["cseq"], row["user_agent"], row["registered_at"]
            )
            self.bindings.setdefault(binding.user, []).append(binding)
            self._schedule_expiry(binding)
        if rows:
            log.info("sip: restored %d registrations", len(rows))

    # ------------------------------------------------------------------------------------------- qualify

    def _ensure_qualify(self) -> None:
        interval = self.timers.qualify_interval
        if interval <= 0 or self._qualify_timer is not None:
            return
        core = self.channel.core
        self._qualify_timer = core.scheduler.call_at(core.clock() + interval, self._qualify_all)

    def _qualify_all(self, now: float) -> None:
        self._qualify_timer = None
        wall = time.time()
        any_left = False
        for bindings in self.bindings.values():
            for binding in bindings:
                if binding.expires_at > wall:
                    any_left = True
                    self.qualify(binding)
        if any_left:
            self._ensure_qualify()

    def qualify(self, binding: Binding) -> None:
        core = self.channel.core
        try:
            uri = SipUri.parse(binding.contact)
        except SipPeerError:
            return
        headers = Headers()
        headers.add("From", f"<sip:centralita@{core.local[binding.peer.transport].host}>;tag={new_tag()}" if binding.peer.transport in core.local else f"<sip:centralita@localhost>;tag={new_tag()}")
        headers.add("To", f"<{binding.contact}>")
        headers.add("Call-ID", new_branch()[7:] + "@centralita")
        headers.add("CSeq", "1 OPTIONS")
        request = Request("OPTIONS", uri, headers)
        sent = core.clock()
        binding.qualify_sent = sent

        def answered(response: Response | None, txn: Any, binding: Binding = binding) -> None:
            if response is not None and binding.qualify_sent == sent:
                binding.qualify_sent = None
                # Any final answer (even 405/404) proves the phone is there; the round trip is the point.
                binding.rtt_ms = round((core.clock() - sent) * 1000.0, 1)
                if not binding.reachable:
                    binding.reachable = True
                    log.info("sip: %s is reachable again at %s", binding.user, safe_text(binding.peer))
                    self._announce(binding.user)

        def timed_out(now: float, binding: Binding = binding) -> None:
            if binding.qualify_sent == sent and binding.reachable:
                binding.reachable = False
                log.info("sip: %s does not answer OPTIONS at %s", binding.user, safe_text(binding.peer))
                self._announce(binding.user)

        core.request(request, binding.peer, answered)
        core.scheduler.call_at(sent + self.timers.qualify_timeout, timed_out)
