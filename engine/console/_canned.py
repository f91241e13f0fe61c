"""Canned responses: texts supervisors keep for agents to insert in a reply, global or per queue.

A body may hold placeholders, ``{customer_name}``, ``{agent_name}``, ``{queue}``, ``{interaction}``.
:func:`fill` puts plain text in them (never markup: the result goes into a reply, which every channel
sends as text) and leaves unknown ``{words}`` as they were, so a typo is visible rather than eaten.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from .._registry import Migration

MAX_TITLE = 80
MAX_BODY = 4000
MAX_RESPONSES = 2000  # a runaway script cannot fill the store
PLACEHOLDERS = ("customer_name", "agent_name", "queue", "interaction")
_PLACEHOLDER = re.compile(r"\{([a-z_]{1,32})\}")
_QUEUE = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")

MIGRATIONS = [
    Migration(
        "console_canned",
        1,
        """
        CREATE TABLE console_canned (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            queue TEXT,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            author TEXT NOT NULL,
            updated REAL NOT NULL
        );
        CREATE INDEX console_canned_queue ON console_canned(queue);
        """,
    )
]


class CannedError(ValueError):
    """Input a supervisor got wrong (the API answers 400 with the message)."""


def _plain(value: Any, limit: int) -> str:
    """One line of text: control characters (and newlines) out, bounded."""
    text = "" if value is None else str(value)
    return "".join(c for c in text if c >= " " and c != "\x7f")[:limit]


def check(title: Any, body: Any, queue: Any) -> tuple[str, str, str | None]:
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
        raise CannedError(f"'title' must be a string of 1 to {MAX_TITLE} characters")
    if not isinstance(body, str) or not body.strip() or len(body) > MAX_BODY:
        raise CannedError(f"'body' must be a string of 1 to {MAX_BODY} characters")
    if queue is not None and queue != "" and (not isinstance(queue, str) or not _QUEUE.match(queue)):
        raise CannedError("'queue' must be a queue name (letters, digits, _ . : @ -) or empty for every queue")
    cleaned_body = "".join(c for c in body if c in "\n\t" or (c >= " " and c != "\x7f"))
    return _plain(title, MAX_TITLE).strip(), cleaned_body, queue or None


def fill(body: str, values: Mapping[str, Any]) -> str:
    """Replace known placeholders with plain one-line text; unknown ones stay as typed."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in PLACEHOLDERS:
            return match.group(0)
        return _plain(values.get(key), 200)

    return _PLACEHOLDER.sub(replace, body)


async def list_canned(store: Any, queue: str | None = None, *, all_queues: bool = False) -> list[dict[str, Any]]:
    """Global responses and ``queue``'s (or every one, for the management page), title order."""
    if all_queues:
        return await store.fetchall("SELECT id, queue, title, body, author, updated FROM console_canned ORDER BY title, id")
    return await store.fetchall(
        "SELECT id, queue, title, body, author, updated FROM console_canned WHERE queue IS NULL OR queue = ? "
        "ORDER BY queue IS NOT NULL DESC, title, id", (queue or "",))


async def get_canned(store: Any, canned_id: int) -> dict[str, Any]:
    row = await store.fetchone("SELECT id, queue, title, body, author, updated FROM console_canned WHERE id = ?", (canned_id,))
    if row is None:
        raise KeyError(f"canned response {canned_id}")
    return row


async def add_canned(store: Any, title: Any, body: Any, queue: Any, author: str) -> dict[str, Any]:
    title, body, queue = check(title, body, queue)
    count = await store.fetchone("SELECT COUNT(*) AS n FROM console_canned")
    if count is not None and count["n"] >= MAX_RESPONSES:
        raise CannedError(f"there are already {MAX_RESPONSES} canned responses; delete some first")
    new_id = await store.insert("INSERT INTO console_canned(queue, title, body, author, updated) VALUES (?,?,?,?,?)",
                                (queue, title, body, author[:64], time.time()))
    return await get_canned(store, new_id)


async def update_canned(store: Any, canned_id: int, title: Any, body: Any, queue: Any, author: str) -> dict[str, Any]:
    await get_canned(store, canned_id)
    title, body, queue = check(title, body, queue)
    await store.write("UPDATE console_canned SET queue = ?, title = ?, body = ?, author = ?, updated = ? WHERE id = ?",
                      (queue, title, body, author[:64], time.time(), canned_id))
    return await get_canned(store, canned_id)


async def delete_canned(store: Any, canned_id: int) -> None:
    await get_canned(store, canned_id)
    await store.write("DELETE FROM console_canned WHERE id = ?", (canned_id,))
