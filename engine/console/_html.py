"""HTML building with escaping by default.

Every value from outside (caller ids, display names, message text, user names) goes through :func:`esc`;
markup is only ever built from :class:`Markup` pieces. A Content-Security-Policy that forbids inline
script is the second line of defence should an escape ever be missed.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from ._http import Response

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class Markup(str):
    """Text that is already safe HTML."""


def esc(value: Any) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def tag(name: str, *children: Any, **attributes: Any) -> Markup:
    attrs = "".join(
        f" {key.rstrip('_').replace('_', '-')}" if value is True else f' {key.rstrip("_").replace("_", "-")}="{esc(value)}"'
        for key, value in attributes.items()
        if value is not None and value is not False
    )
    inner = "".join(esc(child) for child in children)
    return Markup(f"<{name}{attrs}>{inner}</{name}>")


def join(parts: Iterable[Any]) -> Markup:
    return Markup("".join(esc(p) for p in parts))


def table(headers: list[str], rows: Iterable[list[Any]], **attributes: Any) -> Markup:
    head = tag("thead", tag("tr", *(tag("th", h) for h in headers)))
    body = tag("tbody", *(tag("tr", *(tag("td", cell) for cell in row)) for row in rows))
    return tag("table", head, body, **attributes)


def csrf_field(token: str) -> Markup:
    return Markup(f'<input type="hidden" name="csrf_token" value="{esc(token)}">')


def post_button(action: str, label: str, csrf: str, **fields: str) -> Markup:
    hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in fields.items())
    return Markup(
        f'<form method="post" action="{esc(action)}" class="inline">{csrf_field(csrf)}{hidden}'
        f'<button type="submit">{esc(label)}</button></form>'
    )


NAV = [("/", "Dashboard", "supervisor"), ("/wallboard", "Wallboard", "supervisor"), ("/desk", "Agent desk", "agent"),
       ("/agents", "Agents", "supervisor"), ("/supervise", "Supervise", "supervisor"), ("/canned", "Canned", "supervisor"),
       ("/queues", "Queues", "supervisor"), ("/reports", "Reports", "supervisor"),
       ("/recordings", "Recordings", "supervisor"), ("/voicemail", "Voicemail", "supervisor"),
       ("/devices", "Devices", "admin"), ("/config", "Configuration", "admin"), ("/backup", "Backup", "admin"),
       ("/plugins", "Plugins", "admin"), ("/logs", "Logs", "admin"), ("/users", "Users", "admin")]  # fmt: skip


def page(title: str, body: Any, *, principal: Any = None, status: int = 200, page_id: str = "") -> Response:
    nav = Markup("")
    meta = Markup("")
    if principal is not None and not principal.must_change:
        links = [tag("a", label, href=href) for href, label, role in NAV if principal.has_role(role)]
        logout = post_button("/logout", f"Log out {principal.name}", principal.csrf)
        nav = tag("nav", *links, logout)
    if principal is not None and principal.csrf:
        meta = Markup(f'<meta name="csrf-token" content="{esc(principal.csrf)}">')
    document = Markup(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{esc(title)} · Centralita</title>"
        '<link rel="stylesheet" href="/static/console.css">'
        '<script src="/static/console.js" defer></script></head>'
        f'<body data-page="{esc(page_id)}" data-user="{esc(principal.name if principal else "")}"><header><strong>Centralita</strong>{nav}</header>'
        f"<main><h1>{esc(title)}</h1>{esc(body)}</main></body></html>"
    )
    return Response(
        status,
        document.encode(),
        "text/html; charset=utf-8",
        [("content-security-policy", CSP), ("x-frame-options", "DENY"), ("referrer-policy", "same-origin")],
    )
