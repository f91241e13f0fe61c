"""HMAC-SHA256 webhook signatures (pure).

The signed message is ``<timestamp>.<body>``: the timestamp header is inside the signature, so a captured
request cannot be replayed later with a fresh timestamp, and the receiver refuses timestamps older than
its tolerance. The header value is ``sha256=<hex>`` over the exact bytes sent.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Centralita-Signature"
TIMESTAMP_HEADER = "X-Centralita-Timestamp"
#: the outbox record's id; the same on every retry, so a receiver can drop a duplicate it already stored
DELIVERY_HEADER = "X-Centralita-Delivery"
DEFAULT_TOLERANCE = 300.0


class SignatureError(ValueError):
    """A webhook failed verification (who sent it cannot be trusted); the text says why."""


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Centralita-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, str(int(timestamp)).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: str | bytes, timestamp: int, body: bytes, delivery: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        DELIVERY_HEADER: delivery,
    }


def verify(
    secret: str | bytes, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: float = DEFAULT_TOLERANCE
) -> None:
    """What a receiving CRM does: raise :class:`SignatureError` unless the request is genuine and fresh.

    ``headers`` is looked up case-insensitively.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    stamp = lower.get(TIMESTAMP_HEADER.lower(), "")
    given = lower.get(SIGNATURE_HEADER.lower(), "")
    if not stamp.isdigit() or len(stamp) > 12:
        raise SignatureError("missing or malformed timestamp")
    if abs(now - int(stamp)) > tolerance:
        raise SignatureError(f"timestamp {stamp} is outside the {tolerance:.0f} s tolerance (replay?)")
    if not hmac.compare_digest(given.encode(), sign(secret, int(stamp), body).encode()):
        raise SignatureError("signature does not match")
