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


def calls_per_hour(rows: Iterable[Mapping[str, Any]], *, now: float, hours: int = 24) -> Markup:
    """CDRs of the last ``hours`` hours by hour (UTC), answered vs not."""
    end_hour = int(now // 3600)
    first = end_hour - hours + 1
    answered = [0.0] * hours
    other = [0.0] * hours
    for row in rows:
        start = row.get("start")
        if not isinstance(start, int | float) or isinstance(start, bool):
            continue
        slot = int(start // 3600) - first
        if 0 <= slot < hours:
            (answered if row.get("disposition") == "ANSWERED" else other)[slot] += 1
    labels = [_dt.datetime.fromtimestamp((first + i) * 3600, _dt.UTC).strftime("%H") for i in range(hours)]
    return stacked_bars(f"Calls per hour, last {hours} h (UTC)", labels, {"answered": answered, "not answered": other})
