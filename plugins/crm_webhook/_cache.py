"""A bounded TTL cache of lookup answers (pure: the caller passes ``now``).

An entry younger than ``ttl`` answers without asking the CRM. An older one is kept (up to ``stale_ttl``)
as the fallback when the CRM is slow or down, because yesterday's name is better than none on a screen
pop. The least recently used entry goes first when the cache is full.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from engine import Contact

MISSING = object()


@dataclass(frozen=True)
class CacheEntry:
    contact: Contact | None
    stored: float


class LookupCache:
    def __init__(self, *, ttl: float, stale_ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.stale_ttl = max(stale_ttl, ttl)
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], CacheEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: tuple[str, str], contact: Contact | None, *, now: float) -> None:
        if self.max_entries <= 0:
            return
        self._entries[key] = CacheEntry(contact, now)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def fresh(self, key: tuple[str, str], *, now: float) -> CacheEntry | None:
        """The entry if it is younger than ``ttl`` (no need to ask the CRM)."""
        return self._get(key, now=now, max_age=self.ttl)

    def stale(self, key: tuple[str, str], *, now: float) -> CacheEntry | None:
        """The entry if it is younger than ``stale_ttl`` (the fallback when the CRM fails)."""
        return self._get(key, now=now, max_age=self.stale_ttl)

    def _get(self, key: tuple[str, str], *, now: float, max_age: float) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        age = now - entry.stored
        if age > self.stale_ttl or age < 0:  # expired, or the clock went backwards: do not trust it
            del self._entries[key]
            return None
        if age > max_age:
            return None
        self._entries.move_to_end(key)
        return entry
