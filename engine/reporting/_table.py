"""A report as one flat table (for CSV export): one row per figure set, a ``breakdown`` column naming
what the row is about (queue, agent, interval, channel, campaign) and one column per figure."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

LEAD = ("breakdown", "name", "interval_start")


def _when(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _dt.datetime.fromtimestamp(value, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return ""


def _cell(value: Any) -> Any:
    if isinstance(value, Mapping):  # state_seconds: "available=250.0;busy=120.0"
        return ";".join(f"{k}={v}" for k, v in value.items())
    return value


def report_table(report: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) for a report as :meth:`Engine.report` returns it; times in UTC."""
    rows: list[tuple[str, str, str, Mapping[str, Any]]] = []
    for section, breakdown in (("queues", "queue"), ("agents", "agent"), ("channels", "channel"), ("campaigns", "campaign")):
        for name, figures in (report.get(section) or {}).items():
            rows.append((breakdown, str(name), "", figures))
    for figures in report.get("intervals") or []:
        rows.append(("interval", str(figures.get("queue", "")), _when(figures.get("start")), figures))
    columns: list[str] = []
    for _, _, _, figures in rows:
        for key in figures:
            if key not in columns and key not in ("queue", "start"):
                columns.append(key)
    header = [*LEAD, *columns]
    return header, [[b, n, when, *(_cell(f.get(c)) for c in columns)] for b, n, when, f in rows]
