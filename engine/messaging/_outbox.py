"""The outbox worker: delivers stored outbound messages, retrying transient failures with backoff.

A message reaches the outbox only after it is durable (see :meth:`MessageStore.queue_outbound`), so a
crash, an SMTP outage or a dropped SMPP link only delays it. Messages of one conversation go out in
order: when one fails transiently, later ones of the same conversation wait for it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ._messages import MessageStore, OutboundMessage
from ._retry import DeliveryError, RetryPolicy

log = logging.getLogger("centralita.messaging.outbox")

#: ``deliver(message) -> external id`` (the peer's id for it, e.g. a Message-ID or SMSC message_id).
Deliver = Callable[[OutboundMessage], Awaitable[str | None]]


class Outbox:
    def __init__(
        self,
        messages: MessageStore,
        deliver: Deliver,
        *,
        policy: RetryPolicy | None = None,
        batch: int = 50,
        on_delivered: Callable[[OutboundMessage, str | None], None] | None = None,
    ) -> None:
        self.messages = messages
        self.deliver = deliver
        self.policy = policy or RetryPolicy()
        self.batch = batch
        self.on_delivered = on_delivered
        self._wake = trio.Event()
        self._rng = random.Random()
        self.sent = 0
        self.retried = 0
        self.failed = 0
        self.last_error = ""

    def wake_nowait(self) -> None:
        """A new message was queued (or a link came back): look at the outbox now."""
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            self._wake = trio.Event()
            await self.drain_once()
            nxt = await self.messages.next_due()
            timeout = float("inf") if nxt is None else max(0.0, nxt - time.time())
            if timeout > 0:
                with trio.move_on_after(timeout):
                    await self._wake.wait()

    async def drain_once(self) -> int:
        """Try every message that is due now; returns how many were delivered."""
        delivered = 0
        blocked: set[str] = set()
        for message in await self.messages.due(time.time(), self.batch):
            if message.conversation in blocked:
                continue
            try:
                external = await self.deliver(message)
            except DeliveryError as exc:
                if exc.permanent:
                    self.failed += 1
                    log.warning("%s message %s failed for good: %s", self.messages.channel, message.id, exc.reason)
                    await self.messages.failed(message.id, exc.reason)
                    continue
                await self._retry(message, exc.reason)
                blocked.add(message.conversation)
                continue
            except Exception as exc:  # a bug or an unexpected peer reaction: keep the message, retry later
                log.exception("%s message %s: delivery raised", self.messages.channel, message.id)
                await self._retry(message, f"{type(exc).__name__}: {exc}")
                blocked.add(message.conversation)
                continue
            await self.messages.delivered(message.id, external)
            self.sent += 1
            delivered += 1
            if self.on_delivered is not None:
                self.on_delivered(message, external)
        return delivered

    async def _retry(self, message: OutboundMessage, reason: str) -> None:
        attempts = message.attempts + 1
        when = self.policy.next_attempt(attempts, time.time(), self._rng)
        self.retried += 1
        self.last_error = reason
        log.info(
            "%s message %s not delivered (attempt %d): %s; retrying in %.1fs",
            self.messages.channel, message.id, attempts, reason, when - time.time(),
        )
        await self.messages.retry_later(message.id, attempts, when, reason)

    def statistics(self) -> dict[str, Any]:
        return {"sent": self.sent, "retried": self.retried, "failed": self.failed, "last_error": self.last_error}
