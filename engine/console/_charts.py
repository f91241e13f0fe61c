"""Small server-rendered SVG charts (no script, no library; CSP-safe presentation attributes only)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._html import Markup, esc

#: colour per series, readable on white and for the common colour-vision deficiencies
PALETTE = ("#0b5cad", "#d9822b", "#a3261b", "#5f6b7a", "#2e8540")


def stacked_bars(
    title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], *, width: int = 720, height: int = 180
) -> Markup:
    """Bars per label, stacked by series, with a legend; all text escaped."""
    names = list(series)
    totals = [sum(series[n][i] for n in names) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    left, bottom, right = 32, 22, 8
    plot_w, plot_h = width - left - right, height - bottom - 8
    slot = plot_w / max(len(labels), 1)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height + 18}" width="100%" '
        f'aria-label="{esc(title)}" xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>',
        f'<text x="{left - 4}" y="14" text-anchor="end" font-size="10" fill="#5f6b7a">{esc(_short(top))}</text>',
        f'<line x1="{left}" y1="{8 + plot_h}" x2="{width - right}" y2="{8 + plot_h}" stroke="#d9dee5"/>',
    ]
    for i, label in enumerate(labels):
        x = left + i * slot + slot * 0.15
        y = 8 + plot_h
        for index, name in enumerate(names):
            value = series[name][i]
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[index % len(PALETTE)]}"><title>{esc(label)} {esc(name)}: {esc(_short(value))}</title></rect>'
            )
        if len(labels) <= 24 or i % 2 == 0:
            parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{height - 4}" text-anchor="middle" font-size="10" '
                         f'fill="#5f6b7a">{esc(label)}</text>')  # fmt: skip
    for index, name in enumerate(names):
        lx = left + index * 130
        parts.append(f'<rect x="{lx}" y="{height + 6}" width="10" height="10" fill="{PALETTE[index % len(PALETTE)]}"/>'
                     f'<text x="{lx + 14}" y="{height + 15}" font-size="11" fill="#1d2430">{esc(name)}</text>')  # fmt: skip
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


MESSAGE_KINDS = ("chat", "sms", "email")


def _hour_slots(now: float, hours: int) -> tuple[int, list[str]]:
    first = int(now // 3600) - hours + 1
    return first, [_dt.datetime.fromtimestamp((first + i) * 3600, _dt.UTC).strftime("%H") for i in range(hours)]


def _start(row: Mapping[str, Any]) -> float | None:
    start = row.get("start")
    return float(start) if isinstance(start, int | float) and not isinstance(start, bool) else None


def calls_per_hour(rows: Iterable[Mapping[str, Any]], *, now: float, hours: int = 24) -> Markup:
    """Voice CDRs of the last ``hours`` hours by hour (UTC), answered vs not (messages are charted apart)."""
    first, labels = _hour_slots(now, hours)
    answered = [0.0] * hours
    other = [0.0] * hours
    for row in rows:
        start = _start(row)
        if start is None or row.get("userfield") in MESSAGE_KINDS:
            continue
        slot = int(start // 3600) - first
        if 0 <= slot < hours:
            (answered if row.get("disposition") == "ANSWERED" else other)[slot] += 1
    return stacked_bars(f"Calls per hour, last {hours} h (UTC)", labels, {"answered": answered, "not answered": other})


def messages_per_hour(rows: Iterable[Mapping[str, Any]], *, now: float, hours: int = 24) -> Markup:
    """Chat, SMS and email conversations (their CDRs, by start) per hour of the last ``hours`` hours."""
    first, labels = _hour_slots(now, hours)
    series = {kind: [0.0] * hours for kind in MESSAGE_KINDS}
    for row in rows:
        start, kind = _start(row), row.get("userfield")
        if start is None or kind not in series:
            continue
        slot = int(start // 3600) - first
        if 0 <= slot < hours:
            series[str(kind)][slot] += 1
    return stacked_bars(f"Messages per hour, last {hours} h (UTC)", labels, series)


def percent_bars(
    title: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]], *, target: float | None = None,
    width: int = 720, height: int = 180,
) -> Markup:
    """Side-by-side bars on a fixed 0-100 % scale (no bar where a value is None), an optional target line."""
    names = list(series)
    left, bottom, right = 32, 22, 8
    plot_w, plot_h = width - left - right, height - bottom - 8
    slot = plot_w / max(len(labels), 1)
    bar = slot * 0.8 / max(len(names), 1)
    base = 8 + plot_h
    parts = [
        (f'<svg class="chart" role="img" viewBox="0 0 {width} {height + 18}" width="100%" '
         f'aria-label="{esc(title)}" xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>'),
        f'<text x="{left - 4}" y="14" text-anchor="end" font-size="10" fill="#5f6b7a">100%</text>',
        f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="#d9dee5"/>',
    ]
    if target is not None:
        y = base - plot_h * min(max(target, 0.0), 1.0)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#2e8540" '
                     f'stroke-dasharray="4 3"><title>target {esc(_short(target * 100))}%</title></line>')  # fmt: skip
    for i, label in enumerate(labels):
        x0 = left + i * slot + slot * 0.1
        for index, name in enumerate(names):
            value = series[name][i]
            if value is None:
                continue
            h = plot_h * min(max(float(value), 0.0), 1.0)
            parts.append(
                f'<rect x="{x0 + index * bar:.1f}" y="{base - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[index % len(PALETTE)]}"><title>{esc(label)} {esc(name)}: {esc(_short(value * 100))}%</title></rect>'
            )
        if len(labels) <= 24 or i % 4 == 0:
            parts.append(f'<text x="{x0 + slot * 0.4:.1f}" y="{height - 4}" text-anchor="middle" font-size="10" '
                         f'fill="#5f6b7a">{esc(label)}</text>')  # fmt: skip
    for index, name in enumerate(names):
        lx = left + index * 160
        parts.append(f'<rect x="{lx}" y="{height + 6}" width="10" height="10" fill="{PALETTE[index % len(PALETTE)]}"/>'
                     f'<text x="{lx + 14}" y="{height + 15}" font-size="11" fill="#1d2430">{esc(name)}</text>')  # fmt: skip
    parts.append("</svg>")
    return Markup("".join(parts))


def service_by_half_hour(intervals: Iterable[Mapping[str, Any]], *, title: str, target: float | None = 0.8) -> Markup:
    """Service level and abandon rate per half hour over all queues, from the report's intervals."""
    slots: dict[float, list[float]] = {}
    for item in intervals:
        start = item.get("start")
        if not isinstance(start, int | float) or isinstance(start, bool):
            continue
        sums = slots.setdefault(float(start), [0.0, 0.0, 0.0, 0.0])  # in threshold, SL base, abandoned, rate base
        answered, abandoned = _count(item, "answered"), _count(item, "abandoned")
        in_threshold = _count(item, "answered_in_threshold")
        after = _count(item, "abandoned_after_threshold")
        sums[0] += in_threshold
        sums[1] += answered + after
        sums[2] += abandoned
        sums[3] += _count(item, "offered") - _count(item, "short_abandoned")
    ordered = sorted(slots.items())
    labels = [_dt.datetime.fromtimestamp(start, _dt.UTC).strftime("%H:%M") for start, _ in ordered]
    level = [s[0] / s[1] if s[1] else None for _, s in ordered]
    abandon = [s[2] / s[3] if s[3] > 0 else None for _, s in ordered]
    return percent_bars(title, labels, {"service level": level, "abandoned": abandon}, target=target)


def _count(item: Mapping[str, Any], key: str) -> float:
    value = item.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


#: the order agent states are stacked in, from working to away
AGENT_STATES = ("busy", "wrapup", "ringing", "available", "paused", "logged_out")


def agent_states_today(agents: Mapping[str, Mapping[str, Any]], *, limit: int = 40) -> Markup:
    """Hours each agent spent in each state today (the report's ``state_seconds``), one bar per agent."""
    names = [name for name, figures in sorted(agents.items()) if (figures or {}).get("state_seconds")][:limit]
    series = {state: [_count(agents[n]["state_seconds"], state) / 3600 for n in names] for state in AGENT_STATES}
    series = {state: values for state, values in series.items() if any(values)}
    return stacked_bars("Agent states today (hours, UTC day)", names, series or {"no data": [0.0] * len(names)})
