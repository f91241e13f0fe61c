"""The persistent outbox's schema, its states and the retry schedule (pure parts, no I/O).

A record is written to the store *before* any delivery is tried, so a CRM outage (or a restart) delays it
but never loses it. States::

    pending --2xx--------------------------> delivered   (never sent again)
    pending --refused for good (4xx)-------> dead        (reported; ``redeliver_dead`` puts it back)
    pending --failed, attempts < max-------> pending     (next try after exponential backoff)
    pending --failed, attempts = max-------> dead
    dead    --redeliver_dead()-------------> pending     (attempts start again)

A delivery that reached the CRM but whose 2xx was not recorded (power cut in between) is sent again after
the restart with the same ``X-Centralita-Delivery`` id, so the CRM can drop the duplicate.
"""

from __future__ import annotations

import json
import math
from typing import Any

from engine import Migration

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({PENDING, DELIVERED, DEAD}),
    DELIVERED: frozenset(),
    DEAD: frozenset({PENDING}),
}

#: client errors that a later retry can cure (timeout, too early, rate limited); other 4xx are final
RETRYABLE_CLIENT_ERRORS = frozenset({408, 409, 425, 429})
MAX_ATTRIBUTE_STRING = 1024

MIGRATIONS = [
    Migration(
        "crm_webhook",
        1,
        """
        CREATE TABLE crm_webhook_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, delivery TEXT NOT NULL UNIQUE,
                                         event TEXT NOT NULL, body TEXT NOT NULL, created REAL NOT NULL,
                                         state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
                                         next_attempt REAL NOT NULL, last_error TEXT, finished REAL);
        CREATE INDEX crm_webhook_outbox_state ON crm_webhook_outbox(state, id);
        """,
    )
]


def backoff_delay(failures: int, *, base: float, cap: float) -> float:
    """Seconds to wait after the ``failures``-th failed attempt: base, 2*base, 4*base ... at most ``cap``."""
    if failures <= 0:
        return 0.0
    exponent = min(failures - 1, 60)  # 2**60 * base is far beyond any cap; avoids float overflow
    return float(min(cap, base * (2**exponent)))


def outcome_for_status(status: int) -> str:
    """What an HTTP status from the push URL means for the record: delivered, retry, or dead."""
    if 200 <= status < 300:
        return DELIVERED
    if 400 <= status < 500 and status not in RETRYABLE_CLIENT_ERRORS:
        return DEAD
    return PENDING


def record_body(delivery: str, event: str, interaction: dict[str, Any], disposition: str | None,
                attributes: dict[str, Any]) -> str:
    """The exact JSON text that is stored, signed and sent (compact, ASCII, keys sorted: stable bytes)."""
    payload = {
        "id": delivery,
        "event": event,
        "interaction": interaction,
        "disposition": disposition,
        "attributes": safe_attributes(attributes),
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def safe_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Only plain scalar attributes travel (other plugins may keep objects there)."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or key.startswith("_"):
            continue
        if isinstance(value, str):
            out[key] = value[:MAX_ATTRIBUTE_STRING]
        elif value is None or isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
            out[key] = value
    return out
