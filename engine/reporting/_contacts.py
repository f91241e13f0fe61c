"""Finished interactions from the ``Hangup`` rows of the queue log: contacts, answers and handle time
per channel and per campaign, and first-contact resolution (FCR).

FCR definition (docs/api.md): an *answered* interaction is resolved at first contact when the same
customer (the same phone number, email address or chat id, compared without case or surrounding
space) has no further interaction, on any channel, that ends within ``fcr_window`` seconds after it
ended. A contact is *judged* once a repeat is seen or its window has closed by ``now``; FCR is
resolved / judged. Contacts whose window is still open and that have no repeat yet are counted as
``fcr_pending`` and left out.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_FCR_WINDOW = 7 * 86400.0


@dataclass
class Contact:
    ended: float
    answered: float | None
    kind: str
    campaign: str
    customer: str
    agent: str


@dataclass
class ContactFigures:
    contacts: int = 0
    answered: int = 0
    handle_total: float = 0.0
    fcr_resolved: int = 0
    fcr_repeated: int = 0
    fcr_pending: int = 0

    def as_json(self) -> dict[str, Any]:
        judged = self.fcr_resolved + self.fcr_repeated
        return {
            "contacts": self.contacts,
            "contacts_answered": self.answered,
            "handle_time": round(self.handle_total / self.answered, 2) if self.answered else None,
            "fcr": round(self.fcr_resolved / judged, 4) if judged else None,
            "fcr_resolved": self.fcr_resolved,
            "fcr_repeated": self.fcr_repeated,
            "fcr_pending": self.fcr_pending,
        }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def contacts_from(events: Iterable[Mapping[str, Any]]) -> list[Contact]:
    out = []
    for row in events:
        if row.get("event") != "Hangup":
            continue
        ts = _number(row.get("ts"))
        if ts is None:
            continue
        fields = row.get("fields") or {}
        out.append(Contact(
            ended=ts,
            answered=_number(fields.get("Answered")),
            kind=_text(fields.get("Kind"), 32) or "unknown",
            campaign=_text(fields.get("Campaign"), 128),
            customer=_text(fields.get("Customer"), 256).strip().lower(),
            agent=_text(fields.get("Agent"), 128),
        ))
    return out


def contact_figures(
    events: Iterable[Mapping[str, Any]],
    *,
    now: float,
    fcr_window: float = DEFAULT_FCR_WINDOW,
    since: float | None = None,
    later: Iterable[Mapping[str, Any]] = (),
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(per channel, per campaign) figures for contacts that ended in ``events`` (at or after ``since``).

    ``later`` holds rows after the report's period: they count only as repeats for FCR.
    """
    reported = [c for c in contacts_from(events) if since is None or c.ended >= since]
    every = sorted(reported + contacts_from(later), key=lambda c: c.ended)
    ends_by_customer: dict[str, list[float]] = defaultdict(list)
    for contact in every:
        if contact.customer:
            ends_by_customer[contact.customer].append(contact.ended)
    channels: dict[str, ContactFigures] = defaultdict(ContactFigures)
    campaigns: dict[str, ContactFigures] = defaultdict(ContactFigures)
    for contact in reported:
        targets = [channels[contact.kind]] + ([campaigns[contact.campaign]] if contact.campaign else [])
        answered = contact.answered is not None
        repeated = resolved = pending = False
        if answered and contact.customer:
            ends = ends_by_customer[contact.customer]  # sorted: one customer with many contacts stays cheap
            after = bisect.bisect_right(ends, contact.ended)
            repeated = after < len(ends) and ends[after] <= contact.ended + fcr_window
            resolved = not repeated and now >= contact.ended + fcr_window
            pending = not repeated and not resolved
        for t in targets:
            t.contacts += 1
            if answered:
                t.answered += 1
                t.handle_total += max(0.0, contact.ended - (contact.answered or contact.ended))
            t.fcr_repeated += repeated
            t.fcr_resolved += resolved
            t.fcr_pending += pending
    return ({k: f.as_json() for k, f in sorted(channels.items())},
            {k: f.as_json() for k, f in sorted(campaigns.items())})
