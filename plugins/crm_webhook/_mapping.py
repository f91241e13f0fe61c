"""Turn an external CRM's JSON answer into an :class:`engine.Contact` (pure: no I/O, no trio).

The CRM is a peer we do not control, so its answer is hostile input: the size is bounded before parsing
(the caller never reads more than ``MAX_RESPONSE_BYTES``), every value is type-checked, and every list and
string is bounded. A malformed answer raises :class:`CrmResponseError` (the CRM's fault) and never
produces a half-filled contact.

Accepted shapes (``200 OK``):

- ``{"contact": {...}}`` or the contact object itself: ``id`` (string or integer, required), ``name``,
  ``phones``/``emails`` (a string or a list of strings), ``segments`` or ``tags`` (same), ``fields``
  (an object of scalars: string, number, boolean, null).
- ``null``, ``{}``, ``{"contact": null}`` or ``[]``: no such contact.
"""

from __future__ import annotations

import json
import math
from typing import Any

from engine import Contact

MAX_RESPONSE_BYTES = 64 * 1024
MAX_STRING = 256
MAX_IDENTITIES = 20
MAX_SEGMENTS = 50
MAX_FIELDS = 100
MAX_FIELD_VALUE = 2048
#: JSON nesting deeper than this is refused before Python's recursion limit is anywhere near
MAX_DEPTH = 8


class CrmResponseError(ValueError):
    """The CRM answered something we cannot use (its fault, not ours); the text says what."""


def contact_from_body(body: bytes) -> Contact | None:
    """Parse a lookup answer's body; None when the CRM says it does not know the customer."""
    if len(body) > MAX_RESPONSE_BYTES:
        raise CrmResponseError(f"answer of {len(body)} bytes is larger than {MAX_RESPONSE_BYTES}")
    if _nesting(body) > MAX_DEPTH:
        raise CrmResponseError(f"answer nested deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CrmResponseError(f"answer is not JSON: {exc}") from None
    return contact_from_json(data)


def contact_from_json(data: Any) -> Contact | None:
    """Map already-parsed JSON to a Contact; raises :class:`CrmResponseError` on wrong types."""
    if data is None or data == [] or data == {}:
        return None
    if not isinstance(data, dict):
        raise CrmResponseError(f"answer is {_kind(data)}, expected an object")
    if "contact" in data:
        data = data["contact"]
        if data is None or data == {}:
            return None
        if not isinstance(data, dict):
            raise CrmResponseError(f"'contact' is {_kind(data)}, expected an object")
    raw_id = data.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or raw_id == "":
        raise CrmResponseError(f"'id' is {_kind(raw_id)}, expected a non-empty string or integer")
    contact_id = _bounded_string("id", str(raw_id))
    name = data.get("name", "")
    if name is None:
        name = ""
    if not isinstance(name, str):
        raise CrmResponseError(f"'name' is {_kind(name)}, expected a string")
    segments_key = "segments" if "segments" in data else "tags"
    return Contact(
        id=contact_id,
        name=_bounded_string("name", name),
        phones=_string_list(data, "phones", MAX_IDENTITIES),
        emails=_string_list(data, "emails", MAX_IDENTITIES),
        segments=_string_list(data, segments_key, MAX_SEGMENTS),
        fields=_fields(data.get("fields")),
    )


def _string_list(data: dict[str, Any], key: str, limit: int) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise CrmResponseError(f"'{key}' is {_kind(value)}, expected a list of strings")
    if len(value) > limit:
        raise CrmResponseError(f"'{key}' has {len(value)} entries, at most {limit} accepted")
    out: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise CrmResponseError(f"'{key}[{index}]' is {_kind(item)}, expected a string")
        item = _bounded_string(f"{key}[{index}]", item)
        if item and item not in out:
            out.append(item)
    return tuple(out)


def _fields(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CrmResponseError(f"'fields' is {_kind(value)}, expected an object")
    if len(value) > MAX_FIELDS:
        raise CrmResponseError(f"'fields' has {len(value)} keys, at most {MAX_FIELDS} accepted")
    out: dict[str, Any] = {}
    for key, item in value.items():
        key = _bounded_string("fields key", key)
        if item is None or isinstance(item, (bool, int)):
            out[key] = item
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise CrmResponseError(f"'fields.{key}' is not a finite number")
            out[key] = item
        elif isinstance(item, str):
            if len(item) > MAX_FIELD_VALUE:
                raise CrmResponseError(f"'fields.{key}' is {len(item)} characters, at most {MAX_FIELD_VALUE}")
            out[key] = item
        else:
            raise CrmResponseError(f"'fields.{key}' is {_kind(item)}, expected a string, number, boolean or null")
    return out


def _bounded_string(what: str, value: str) -> str:
    if len(value) > MAX_STRING:
        raise CrmResponseError(f"'{what}' is {len(value)} characters, at most {MAX_STRING} accepted")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        # control characters would end up in logs, CSV exports and SIP headers
        raise CrmResponseError(f"'{what}' contains control characters")
    return value


def _nesting(body: bytes) -> int:
    """Deepest bracket nesting outside strings, counted without parsing (cheap, bounded by the size)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise CrmResponseError(f"answer contains {name}, which is not JSON")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
