"""Business hours per IANA time zone, with holidays. Pure: the time is an argument (Unix seconds).

TOML shape (used by a queue's ``hours`` and by the IVR ``schedule`` node)::

    hours = { tz = "Europe/Madrid", "mon-fri" = "09:00-18:00", sat = ["10:00-14:00"],
              holidays = ["2026-12-25", "2027-01-01"] }

Day keys are ``mon``..``sun`` or ranges like ``mon-fri``; a value is one ``HH:MM-HH:MM`` span or a
list of them; ``24:00`` ends a span at midnight. Days not named are closed. A holiday is closed all day.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Schedule", "ScheduleError", "parse_schedule"]

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class ScheduleError(ValueError):
    """The schedule table is invalid; ``key`` names the offending key inside it."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


@dataclass(frozen=True)
class Schedule:
    zone: str
    #: weekday (0 = Monday) -> list of (start minute, end minute)
    spans: dict[int, tuple[tuple[int, int], ...]]
    holidays: frozenset[dt.date]

    def is_open(self, now: float) -> bool:
        local = dt.datetime.fromtimestamp(now, ZoneInfo(self.zone))
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.spans.get(local.weekday(), ()))


def _day_indexes(key: str) -> list[int]:
    if key in _DAYS:
        return [_DAYS.index(key)]
    if "-" in key:
        first, _, last = key.partition("-")
        if first in _DAYS and last in _DAYS:
            a, b = _DAYS.index(first), _DAYS.index(last)
            return list(range(a, b + 1)) if a <= b else list(range(a, 7)) + list(range(0, b + 1))
    raise ScheduleError(key, "expected a day (mon..sun) or a range like mon-fri")


def _span(key: str, text: Any) -> tuple[int, int]:
    match = _SPAN.match(text) if isinstance(text, str) else None
    if not match:
        raise ScheduleError(key, f"expected a span like \"09:00-18:00\", got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60 or end <= start:
        raise ScheduleError(key, f"expected a span within one day with start < end, got {text!r}")
    return start, end


def parse_schedule(table: Any) -> Schedule:
    """Build a :class:`Schedule` from its TOML table or raise :class:`ScheduleError`."""
    if not isinstance(table, dict):
        raise ScheduleError("", f"expected a table, got {type(table).__name__}")
    zone = table.get("tz", "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError("tz", f"unknown IANA time zone {zone!r}") from None
    spans: dict[int, list[tuple[int, int]]] = {}
    holidays: set[dt.date] = set()
    for key, value in table.items():
        if key == "tz":
            continue
        if key == "holidays":
            if not isinstance(value, list):
                raise ScheduleError(key, "expected a list of dates like \"2026-12-25\"")
            for item in value:
                try:
                    holidays.add(item if isinstance(item, dt.date) else dt.date.fromisoformat(str(item)))
                except ValueError:
                    raise ScheduleError(key, f"expected a date like \"2026-12-25\", got {item!r}") from None
            continue
        values = value if isinstance(value, list) else [value]
        for day in _day_indexes(key):
            spans.setdefault(day, []).extend(_span(key, v) for v in values)
    return Schedule(zone, {d: tuple(sorted(s)) for d, s in spans.items()}, frozenset(holidays))
