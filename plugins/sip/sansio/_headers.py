"""An ordered, case-insensitive, multi-valued header collection.

Each stored item is one *value*: a ``Via: a, b`` line is kept as two ``Via`` items, because RFC 3261 §7.3.1
makes the two forms equivalent for the header fields whose grammar is a comma-separated list. Compact forms
(``v``, ``i``, ``m``...) are stored under their full names. Parsed views of some values (From, To, Via...)
are cached here and dropped whenever the collection changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable, TypeVar

from ._grammar import is_token, split_outside

__all__ = ["Headers", "canonical_name"]

T = TypeVar("T")
_MISSING = object()

# RFC 3261 §7.3.3 and later RFCs' compact forms.
COMPACT_FORMS = {
    "i": "Call-ID",
    "m": "Contact",
    "f": "From",
    "t": "To",
    "v": "Via",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
    "n": "Identity-Info",
}

_KNOWN = [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Authentication-Info",
    "Authorization", "Call-ID", "Call-Info", "Contact", "Content-Disposition", "Content-Encoding",
    "Content-Language", "Content-Length", "Content-Type", "CSeq", "Date", "Error-Info", "Expires", "From",
    "In-Reply-To", "Max-Forwards", "MIME-Version", "Min-Expires", "Organization", "Priority",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "Record-Route", "Reply-To", "Require",
    "Retry-After", "Route", "Server", "Subject", "Supported", "Timestamp", "To", "Unsupported",
    "User-Agent", "Via", "Warning", "WWW-Authenticate", "RSeq", "RAck", "Event", "Allow-Events",
    "Subscription-State", "Refer-To", "Referred-By", "Replaces", "Session-Expires", "Min-SE", "Path",
    "Service-Route", "P-Asserted-Identity", "P-Preferred-Identity", "Privacy", "Reason", "History-Info",
    "Accept-Contact", "Reject-Contact", "Request-Disposition", "Identity", "Identity-Info", "Diversion",
]

# lower-case spelling (full or compact) -> (key, display name)
_NAMES: dict[str, tuple[str, str]] = {n.lower(): (n.lower(), n) for n in _KNOWN}
_NAMES.update({k: (v.lower(), v) for k, v in COMPACT_FORMS.items()})

# Header fields whose grammar is a comma-separated list (RFC 3261 §7.3.1 and §25, RFC 3325, 3326, 3327).
LIST_HEADERS = frozenset(
    n.lower()
    for n in (
        "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Call-Info", "Contact",
        "Content-Encoding", "Content-Language", "Error-Info", "In-Reply-To", "Proxy-Require",
        "Record-Route", "Require", "Route", "Supported", "Unsupported", "Via", "Warning", "Allow-Events",
        "Path", "Service-Route", "P-Asserted-Identity", "P-Preferred-Identity", "Reason", "History-Info",
    )
)
# In these, an empty element is an error the parser must see, so it is kept.
_KEEP_EMPTY = frozenset(("via", "contact", "route", "record-route"))


_CANON_CACHE: dict[str, tuple[str, str]] = {}
_CANON_CACHE_MAX = 4096  # bounded: header names are peer-chosen


def canonical_name(name: str) -> tuple[str, str]:
    """``(key, display)`` for a header name: compact forms expanded, known names in RFC spelling."""
    hit = _CANON_CACHE.get(name)
    if hit is not None:
        return hit
    lower = name.lower()
    result = _NAMES.get(lower) or (lower, name)
    # Only valid names are cached: the parser trusts a cache hit to be a token (CVE-2016-9938 shape).
    if len(_CANON_CACHE) < _CANON_CACHE_MAX and is_token(name):
        _CANON_CACHE[name] = result
    return result


def split_values(key: str, value: str) -> list[str]:
    """Split a list-valued header into its elements (quotes and ``<...>`` respected)."""
    if key not in LIST_HEADERS or "," not in value:
        return [value]
    if key == "contact" and value.strip() == "*":
        return [value]
    parts = [p.strip(" \t") for p in split_outside(value, ",")]
    if key in _KEEP_EMPTY:
        return parts
    return [p for p in parts if p]


_INJECTION = re.compile("[\r\n\x00]")


def _checked(display: str, value: object) -> str:
    """Header values we write must not smuggle extra lines (header injection)."""
    text = value if type(value) is str else str(value)
    if _INJECTION.search(text) is not None:
        from ._errors import SipLocalError

        raise SipLocalError(f"header {display} value contains CR, LF or NUL")
    return text


class Headers:
    """Ordered, case-insensitive, multi-valued header fields.

    Iteration yields ``(name, value)`` pairs in order, one per value. ``get`` returns the first value,
    ``get_all`` every value of a name.
    """

    __slots__ = ("_items", "_cache", "_index")

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] | Headers | None = None) -> None:
        self._items: list[tuple[str, str, str]] = []  # (key, display name, value)
        self._cache: dict[str, Any] = {}
        self._index: dict[str, list[str]] | None = None  # key -> values, rebuilt after changes
        if items is None:
            return
        if isinstance(items, Headers):
            self._items = list(items._items)
            return
        if isinstance(items, Mapping):
            items = items.items()
        for name, value in items:
            self.add(name, value)

    @classmethod
    def _from_parsed(
        cls, items: list[tuple[str, str, str]], index: dict[str, list[str]] | None = None
    ) -> Headers:
        h = cls.__new__(cls)
        h._items = items
        h._cache = {}
        h._index = index
        return h

    def _get_index(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for key, _, value in self._items:
                if key in index:
                    index[key].append(value)
                else:
                    index[key] = [value]
            self._index = index
        return index

    # -- reading -----------------------------------------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        values = (self._index or self._get_index()).get(canonical_name(name)[0])
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        return list((self._index or self._get_index()).get(canonical_name(name)[0], ()))

    def count(self, name: str) -> int:
        return len((self._index or self._get_index()).get(canonical_name(name)[0], ()))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return canonical_name(name)[0] in (self._index or self._get_index())

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((n, v) for _, n, v in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def copy(self) -> Headers:
        return Headers(self)

    # -- writing -----------------------------------------------------------------------------------
    def add(self, name: str, value: str) -> None:
        """Append a value (a comma-separated list value is stored as its elements)."""
        key, display = canonical_name(name)
        value = _checked(display, value).strip(" \t")
        # Only this field's parsed view goes stale; the index is kept up to date in place (a response
        # gets several fields added, and each rebuild or re-parse of the others would be wasted).
        if self._cache:
            self._cache.pop(key, None)
        values = [value] if "," not in value else split_values(key, value)
        for v in values:
            self._items.append((key, display, v))
        index = self._index
        if index is not None:
            known = index.get(key)
            if known is None:
                index[key] = list(values)
            else:
                known.extend(values)

    def set(self, name: str, value: str) -> None:
        """Replace every value of ``name`` by ``value``, keeping the position of the first one."""
        key, display = canonical_name(name)
        pos = next((i for i, (k, _, _) in enumerate(self._items) if k == key), None)
        self.remove(name)
        if pos is None:
            self.add(name, value)
            return
        tail = self._items[pos:]
        del self._items[pos:]
        self.add(name, value)
        self._items.extend(tail)

    def remove(self, name: str) -> None:
        key = canonical_name(name)[0]
        self._cache.pop(key, None)
        if self._index is not None:
            self._index.pop(key, None)
        self._items = [item for item in self._items if item[0] != key]

    def replace_first(self, name: str, value: str) -> None:
        """Replace the first value of ``name`` in place (e.g. the top Via after adding ``received``)."""
        key, display = canonical_name(name)
        value = _checked(display, value)
        for i, (k, n, _) in enumerate(self._items):
            if k == key:
                self._items[i] = (k, n, value)
                # Only this field's view is stale: stamping ``received`` on the top Via of every request
                # must not throw away the From/To/CSeq the parser already checked and cached.
                self._cache.pop(key, None)
                if self._index is not None:
                    self._index[key][0] = value
                return
        self.add(name, value)

    def insert_first(self, name: str, value: str) -> None:
        """Put a value before every other value of the same name (a new top Via, a Record-Route)."""
        key, display = canonical_name(name)
        value = _checked(display, value)
        pos = next((i for i, (k, _, _) in enumerate(self._items) if k == key), len(self._items))
        self._cache.pop(key, None)
        self._index = None
        self._items[pos:pos] = [(key, display, v) for v in split_values(key, value)]

    # -- parsed views ------------------------------------------------------------------------------
    def parsed(self, key: str, parse: Callable[[Headers], T]) -> T:
        """The parsed view ``parse(self)`` of a header, cached until the headers change."""
        value = self._cache.get(key, _MISSING)
        if value is _MISSING:
            value = self._cache[key] = parse(self)
        return value  # type: ignore[no-any-return]
