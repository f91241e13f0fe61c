"""The webhook CRM: lookups over HTTP within a budget, interaction records pushed from a durable outbox."""

from __future__ import annotations

import logging
import math
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from engine import Contact, Interaction
from engine.abc import CrmBackend, Service

from ._cache import LookupCache
from ._mapping import MAX_RESPONSE_BYTES, CrmResponseError, contact_from_body
from ._outbox import DEAD, DELIVERED, PENDING, backoff_delay, outcome_for_status, record_body
from ._signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signed_headers

log = logging.getLogger("centralita.crm.webhook")

#: records handed over by the (non-blocking) interaction-ended hook before they are in the store
HANDOVER_QUEUE = 1000
BATCH = 50
#: lookups that missed the budget go on in the background (to fill the cache for the next caller), this many at once
MAX_BACKGROUND_REFRESHES = 4
PRUNE_EVERY = 3600.0
#: an idle outbox is read again this often, to pick up records re-queued from the command line
IDLE_POLL = 30.0


def _http_url(value: str) -> str | None:
    if value == "":
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http:// or https:// URL, got {value!r}"
    return None


@dataclass(frozen=True)
class WebhookCrmSettings:
    """``[crm_webhook]``: where the external CRM is, how long it may take, how pushes are retried."""

    lookup_url: str = field(default="", metadata={"check": _http_url})
    push_url: str = field(default="", metadata={"check": _http_url})
    #: HMAC-SHA256 key shared with the CRM; required when ``push_url`` is set
    secret: str = ""
    #: or a file holding it (first line), so the key stays out of the config shown in the console
    secret_file: str = ""
    #: lookup budget in seconds; keep it below the engine's 2 s CRM budget for IVR flows
    timeout: float = field(default=1.0, metadata={"min": 0.01, "max": 30.0})
    push_timeout: float = field(default=10.0, metadata={"min": 0.1, "max": 300.0})
    cache_ttl: float = field(default=60.0, metadata={"min": 0.0})
    #: how long an old answer may still be served when the CRM is slow or down
    cache_stale_ttl: float = field(default=3600.0, metadata={"min": 0.0})
    cache_size: int = field(default=10_000, metadata={"min": 0, "max": 1_000_000})
    max_attempts: int = field(default=15, metadata={"min": 1, "max": 1000})
    backoff: float = field(default=2.0, metadata={"min": 0.001})
    backoff_max: float = field(default=600.0, metadata={"min": 0.001})
    keep_delivered_days: float = field(default=7.0, metadata={"min": 0.0})


class WebhookCrmConfigError(ValueError):
    """The ``[crm_webhook]`` section cannot work as written (the operator's to fix)."""


def _read_secret(settings: WebhookCrmSettings) -> str:
    if settings.secret and settings.secret_file:
        raise WebhookCrmConfigError("[crm_webhook] set secret or secret_file, not both")
    if not settings.secret_file:
        return settings.secret
    try:
        with open(settings.secret_file, encoding="utf-8") as file:
            return file.readline(4096).strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise WebhookCrmConfigError(f"[crm_webhook] cannot read secret_file {settings.secret_file}: {exc}") from None


class _LookupFailed(Exception):
    """The CRM answered with an HTTP error or could not be reached."""


class WebhookCrm(CrmBackend, Service):
    name = "crm-webhook"

    def __init__(self, store: Any, settings: WebhookCrmSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._secret = _read_secret(settings)
        if settings.push_url and not self._secret:
            raise WebhookCrmConfigError("[crm_webhook] push_url is set but secret is empty: webhooks must be signed")
        self.store = store
        self.settings = settings
        self._clock = clock
        self._lookup_http: httpx.AsyncClient | None = None
        self._push_http: httpx.AsyncClient | None = None
        self._cache = LookupCache(ttl=settings.cache_ttl, stale_ttl=settings.cache_stale_ttl,
                                  max_entries=settings.cache_size)
        self._send, self._receive = trio.open_memory_channel[tuple[dict[str, Any], str | None, dict[str, Any]]](
            HANDOVER_QUEUE)
        self._wake = trio.Event()
        self._ready = False
        #: set once ``run`` was cancelled (the engine stopped); not after a crash, which a restart follows
        self.stopped = False
        self._last_prune = -math.inf
        self._nursery: trio.Nursery | None = None
        self._refreshing: set[tuple[str, str]] = set()
        self._counts = {PENDING: 0, DEAD: 0}
        self._stats = dict.fromkeys(
            ("lookups", "cache_hits", "stale_served", "lookup_timeouts", "lookup_errors", "refused_answers",
             "background_refreshes", "records_queued", "records_dropped", "delivered", "delivery_failures",
             "dead_lettered"), 0)

    # ------------------------------------------------------------------------------ service

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        await self._recount()
        self._ready = True
        self.stopped = False
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._store_handed_over)
                await self._deliver_forever()
        finally:
            # cancelled: the engine is stopping (a crash instead is followed by a restart)
            self.stopped = trio.current_effective_deadline() == -math.inf
            self._nursery = None
            with trio.CancelScope(shield=True) as leftovers:
                leftovers.deadline = trio.current_time() + 5.0
                await self._store_leftovers()

    async def aclose(self) -> None:
        clients = [c for c in (self._lookup_http, self._push_http) if c is not None]
        self._lookup_http = self._push_http = None  # a restarted service makes new ones
        with trio.CancelScope(shield=True):
            for client in clients:
                await client.aclose()

    def _lookup_client(self) -> httpx.AsyncClient:
        if self._lookup_http is None:
            # the caller's budget is enforced by a cancel scope; this long timeout is for background refreshes
            self._lookup_http = httpx.AsyncClient(timeout=httpx.Timeout(self.settings.push_timeout),
                                                  follow_redirects=False)
        return self._lookup_http

    def _push_client(self) -> httpx.AsyncClient:
        if self._push_http is None:
            self._push_http = httpx.AsyncClient(timeout=httpx.Timeout(self.settings.push_timeout), follow_redirects=False)
        return self._push_http

    def ready(self) -> bool:
        return self._ready

    def statistics(self) -> Mapping[str, Any]:
        return {**self._stats, "cache_entries": len(self._cache), "outbox_pending": self._counts[PENDING],
                "outbox_dead": self._counts[DEAD]}

    # ------------------------------------------------------------------------------ lookups

    async def lookup(self, *, phone: str | None = None, email: str | None = None) -> Contact | None:
        """Ask the CRM; within ``timeout`` seconds always, falling back to the cache (or None)."""
        if not self.settings.lookup_url:
            return None
        if phone and phone.strip():
            kind, value = "phone", phone.strip()
        elif email and email.strip():
            kind, value = "email", email.strip().lower()
        else:
            return None
        key = (kind, value)
        self._stats["lookups"] += 1
        fresh = self._cache.fresh(key, now=self._clock())
        if fresh is not None:
            self._stats["cache_hits"] += 1
            return fresh.contact
        with trio.move_on_after(self.settings.timeout) as budget:
            try:
                contact = await self._ask(kind, value)
            except CrmResponseError as exc:
                self._stats["refused_answers"] += 1
                log.warning("crm_webhook: refused the CRM's answer for %s %s: %s", kind, value, exc)
            except (_LookupFailed, httpx.HTTPError, OSError) as exc:
                self._stats["lookup_errors"] += 1
                log.warning("crm_webhook: lookup of %s %s failed: %s", kind, value, exc or type(exc).__name__)
            else:
                self._cache.put(key, contact, now=self._clock())
                return contact
        if budget.cancelled_caught:
            self._stats["lookup_timeouts"] += 1
            log.warning("crm_webhook: the CRM did not answer within %.2f s", self.settings.timeout)
            self._refresh_in_background(kind, value)
        stale = self._cache.stale(key, now=self._clock())
        if stale is not None:
            self._stats["stale_served"] += 1
            return stale.contact
        return None

    def _refresh_in_background(self, kind: str, value: str) -> None:
        """Ask again without a caller waiting, so the next lookup of this customer finds the cache filled."""
        key = (kind, value)
        if self._nursery is None or key in self._refreshing or len(self._refreshing) >= MAX_BACKGROUND_REFRESHES:
            return
        self._refreshing.add(key)
        self._nursery.start_soon(self._refresh, kind, value)

    async def _refresh(self, kind: str, value: str) -> None:
        try:
            with trio.move_on_after(self.settings.push_timeout):
                contact = await self._ask(kind, value)
                self._cache.put((kind, value), contact, now=self._clock())
                self._stats["background_refreshes"] += 1
        except (CrmResponseError, _LookupFailed, httpx.HTTPError, OSError) as exc:
            log.info("crm_webhook: background lookup of %s %s failed: %s", kind, value, exc or type(exc).__name__)
        finally:
            self._refreshing.discard((kind, value))

    async def _ask(self, kind: str, value: str) -> Contact | None:
        query = urllib.parse.urlencode({kind: value})
        url = self.settings.lookup_url + ("&" if "?" in self.settings.lookup_url else "?") + query
        headers = {"Accept": "application/json"}
        if self._secret:
            # signed over the query, so the CRM can tell the appliance from anyone probing for customers
            stamp = int(self._clock())
            headers |= {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign(self._secret, stamp, query.encode())}
        async with self._lookup_client().stream("GET", url, headers=headers) as response:
            if response.status_code == 404:
                return None
            if not 200 <= response.status_code < 300:
                raise _LookupFailed(f"HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                raise CrmResponseError(f"answer of {declared} bytes is larger than {MAX_RESPONSE_BYTES}")
            body = bytearray()
            async for chunk in response.aiter_bytes():  # decoded bytes: a compressed bomb is bounded too
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise CrmResponseError(f"answer is larger than {MAX_RESPONSE_BYTES} bytes")
        return contact_from_body(bytes(body))

    # ------------------------------------------------------------------------------ records

    def ended_nowait(self, interaction: Interaction) -> None:
        """From the interaction-ended hook: hand the record to our task; never blocks."""
        try:
            self._send.send_nowait((interaction.to_json(), interaction.attributes.get("disposition"),
                                    dict(interaction.attributes)))
        except trio.WouldBlock:
            self._stats["records_dropped"] += 1
            log.error("crm_webhook: hand-over queue full; record of %s not queued", interaction.id)

    async def record_interaction(self, interaction: Interaction, disposition: str | None = None) -> None:
        """Queue the record durably (returns once it is in the store); it is delivered in the background."""
        await self._queue(interaction.to_json(), disposition, dict(interaction.attributes))

    async def _store_handed_over(self) -> None:
        async for record, disposition, attributes in self._receive:
            try:
                await self._queue(record, disposition, attributes)
            except Exception:
                self._stats["records_dropped"] += 1
                log.exception("crm_webhook: could not store the record of %s", record.get("id"))

    async def _store_leftovers(self) -> None:
        """At shutdown: records handed over but not yet stored go to the store now, not to oblivion."""
        while True:
            try:
                record, disposition, attributes = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            try:
                await self._queue(record, disposition, attributes)
            except Exception:
                self._stats["records_dropped"] += 1
                log.exception("crm_webhook: could not store the record of %s at shutdown", record.get("id"))

    async def _queue(self, record: dict[str, Any], disposition: str | None, attributes: dict[str, Any]) -> None:
        if not self.settings.push_url:
            return
        delivery = uuid.uuid4().hex
        event = "interaction.disposition" if disposition else "interaction.ended"
        body = record_body(delivery, event, record, disposition, attributes)
        now = self._clock()
        await self.store.write(
            "INSERT INTO crm_webhook_outbox(delivery, event, body, created, state, attempts, next_attempt) "
            "VALUES (?,?,?,?,?,0,?)", (delivery, event, body, now, PENDING, now))
        self._stats["records_queued"] += 1
        self._counts[PENDING] += 1
        self._wake.set()

    async def _deliver_forever(self) -> None:
        while True:
            self._wake = trio.Event()  # made before reading, so a record queued meanwhile wakes us
            wait = await self._deliver_due()
            await self._prune()
            if wait is None or wait > 0:
                with trio.move_on_after(IDLE_POLL if wait is None else min(wait, IDLE_POLL)):
                    await self._wake.wait()
                if wait is None:
                    await self._recount()

    async def _deliver_due(self) -> float | None:
        """Deliver pending records in order; seconds until the head record is due again (None: empty)."""
        if not self.settings.push_url:
            return None
        while True:
            rows = await self.store.fetchall(
                "SELECT id, delivery, body, attempts, next_attempt FROM crm_webhook_outbox WHERE state = ? "
                "ORDER BY id LIMIT ?", (PENDING, BATCH))
            if not rows:
                return None
            for row in rows:
                due_in = row["next_attempt"] - self._clock()
                if due_in > self.settings.backoff_max:
                    due_in = 0  # never scheduled this far ahead: the wall clock went back (NTP at boot); go now
                if due_in > 0:
                    return due_in  # in order: later records wait behind the head one
                if not await self._deliver(row):
                    return backoff_delay(row["attempts"] + 1, base=self.settings.backoff, cap=self.settings.backoff_max)

    async def _deliver(self, row: dict[str, Any]) -> bool:
        """One attempt; True if the loop may go on to the next record (delivered or dead-lettered)."""
        body = row["body"].encode()
        headers = signed_headers(self._secret, int(self._clock()), body, row["delivery"])
        outcome, error = PENDING, f"no answer within {self.settings.push_timeout} s"
        # httpx's timeout is per read; this bounds the whole attempt against a CRM that trickles bytes
        with trio.move_on_after(self.settings.push_timeout):
            try:
                async with self._push_client().stream("POST", self.settings.push_url, content=body,
                                                      headers=headers) as response:
                    status = response.status_code  # the answer's body is not read: nothing in it matters to us
                outcome, error = outcome_for_status(status), f"HTTP {status}"
            except (httpx.HTTPError, OSError) as exc:
                outcome, error = PENDING, f"{type(exc).__name__}: {exc}"[:500]
        now = self._clock()
        attempts = row["attempts"] + 1
        if outcome == DELIVERED:
            await self.store.write(
                "UPDATE crm_webhook_outbox SET state = ?, attempts = ?, finished = ?, last_error = NULL WHERE id = ?",
                (DELIVERED, attempts, now, row["id"]))
            self._stats["delivered"] += 1
            self._counts[PENDING] -= 1
            return True
        self._stats["delivery_failures"] += 1
        if outcome == PENDING and attempts < self.settings.max_attempts:
            delay = backoff_delay(attempts, base=self.settings.backoff, cap=self.settings.backoff_max)
            log.warning("crm_webhook: delivery %s failed (%s); attempt %d of %d, next in %.1f s",
                        row["delivery"], error, attempts, self.settings.max_attempts, delay)
            await self.store.write(
                "UPDATE crm_webhook_outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?",
                (attempts, now + delay, error, row["id"]))
            return False
        log.error("crm_webhook: delivery %s given up after %d attempt(s) (%s); kept as a dead letter",
                  row["delivery"], attempts, error)
        await self.store.write(
            "UPDATE crm_webhook_outbox SET state = ?, attempts = ?, finished = ?, last_error = ? WHERE id = ?",
            (DEAD, attempts, now, error, row["id"]))
        self._stats["dead_lettered"] += 1
        self._counts[PENDING] -= 1
        self._counts[DEAD] += 1
        return True

    # ------------------------------------------------------------------------------ operators

    async def dead_letters(self) -> list[dict[str, Any]]:
        """Records given up on, oldest first: delivery id, event, attempts, last error, body."""
        return await self.store.fetchall(
            "SELECT delivery, event, attempts, last_error, created, finished, body FROM crm_webhook_outbox "
            "WHERE state = ? ORDER BY id", (DEAD,))

    async def redeliver_dead(self) -> int:
        """Put every dead letter back in the queue (after fixing the CRM or the secret); returns how many."""
        rows = await self.store.fetchall("SELECT count(*) AS n FROM crm_webhook_outbox WHERE state = ?", (DEAD,))
        await self.store.write(
            "UPDATE crm_webhook_outbox SET state = ?, attempts = 0, next_attempt = ?, finished = NULL WHERE state = ?",
            (PENDING, self._clock(), DEAD))
        await self._recount()
        self._wake.set()
        return int(rows[0]["n"])

    async def _recount(self) -> None:
        rows = await self.store.fetchall(
            "SELECT state, count(*) AS n FROM crm_webhook_outbox WHERE state IN (?, ?) GROUP BY state", (PENDING, DEAD))
        self._counts = {PENDING: 0, DEAD: 0} | {r["state"]: int(r["n"]) for r in rows}

    async def _prune(self) -> None:
        now = self._clock()
        if now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        await self.store.write("DELETE FROM crm_webhook_outbox WHERE state = ? AND finished < ?",
                               (DELIVERED, now - self.settings.keep_delivered_days * 86400))
