"""When to try delivering an outbound message again (pure: time is an argument).

An outage delays messages, it never drops them: a *transient* failure (server unreachable, 4xx reply,
link down) is retried forever with capped exponential backoff; only a *permanent* failure (the peer
refused this very message: SMTP 5xx for the recipient, an SMPP error for the number) ends in ``failed``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


class DeliveryError(Exception):
    """Raised by a channel's deliver function. ``permanent`` means retrying cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class RetryPolicy:
    first: float = 5.0
    factor: float = 2.0
    cap: float = 900.0
    jitter: float = 0.1  # +-10 %, so many queued messages do not retry in lock step

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1 = the first failure)."""
        base = min(self.cap, self.first * self.factor ** max(0, attempts - 1))
        if self.jitter and rng is not None:
            base *= 1.0 + rng.uniform(-self.jitter, self.jitter)
        return max(0.0, base)

    def next_attempt(self, attempts: int, now: float, rng: random.Random | None = None) -> float:
        return now + self.delay(attempts, rng)
