"""Helpers shared by the console pages."""

from __future__ import annotations

import datetime as _dt
import urllib.parse
from typing import Any

from ._auth import Principal
from ._html import Markup, csrf_field, esc, join, post_button


def safe_next(target: str | None) -> str:
    """Only same-site paths: ``//evil.example`` or ``https://...`` would be an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if len(target) > 512 or any(ord(c) < 0x21 or ord(c) > 0x7E for c in target):
        return "/"  # control characters would split the Location header; keep it plain ASCII
    return target


def interaction_row(item: dict[str, Any]) -> list[Any]:
    return [item.get("id"), item.get("kind"), item.get("state"), item.get("from"), item.get("to"), item.get("queue"), item.get("agent")]


def member_summary(members: Any) -> str:
    """``{"alice": "available", "bob": "busy"}`` -> ``"available 1 · busy 1"``."""
    if isinstance(members, dict):
        counts: dict[str, int] = {}
        for status in members.values():
            key = str(status.get("status", status.get("state", "?")) if isinstance(status, dict) else status)
            counts[key] = counts.get(key, 0) + 1
        return " · ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    if isinstance(members, list):
        return f"{len(members)} members"
    return ""


def seconds(value: Any) -> str:
    return f"{float(value):.0f} s" if isinstance(value, int | float) else ""


INTERACTION_HEADERS = ["id", "kind", "state", "from", "to", "queue", "agent"]



def state_buttons(principal: Principal, agent: str, back: str) -> Markup:
    """Available / pause with a reason / log out, as forms that work without JavaScript."""
    path = f"/agents/{urllib.parse.quote(agent, safe='')}/state"
    return join(
        [
            post_button(path, "Available", principal.csrf, state="available", back=back),
            Markup(
                f'<form method="post" action="{esc(path)}" class="inline">{csrf_field(principal.csrf)}'
                f'<input type="hidden" name="state" value="paused"><input type="hidden" name="back" value="{esc(back)}">'
                '<input name="reason" placeholder="pause reason" maxlength="64"><button type="submit">Pause</button></form>'
            ),
            post_button(path, "Log out", principal.csrf, state="logged_out", back=back),
        ]
    )



def clock(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

