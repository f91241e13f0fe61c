"""The built-in CRM backend on the engine's store.

Lookups read the store; the routing priority hook (which must not do I/O) reads an in-memory index of
tags by identity that this object keeps current. Interaction history is written by this object's own
service task from a bounded queue fed by the ``centralita_interaction_ended`` notification.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from engine import Contact, Interaction, Migration
from engine.abc import CrmBackend, Service

from ._model import ContactRow, CrmInputError, normalise, parse_csv, to_csv

log = logging.getLogger("centralita.crm")

MIGRATIONS = [
    Migration(
        "crm",
        1,
        """
        CREATE TABLE crm_contacts (id TEXT PRIMARY KEY, name TEXT NOT NULL, fields TEXT NOT NULL DEFAULT '{}',
                                   created REAL NOT NULL, updated REAL NOT NULL);
        CREATE TABLE crm_identities (kind TEXT NOT NULL, value TEXT NOT NULL,
                                     contact TEXT NOT NULL REFERENCES crm_contacts(id) ON DELETE CASCADE,
                                     PRIMARY KEY (kind, value));
        CREATE TABLE crm_tags (contact TEXT NOT NULL REFERENCES crm_contacts(id) ON DELETE CASCADE, tag TEXT NOT NULL,
                               PRIMARY KEY (contact, tag));
        CREATE TABLE crm_notes (id INTEGER PRIMARY KEY AUTOINCREMENT,
                                contact TEXT NOT NULL REFERENCES crm_contacts(id) ON DELETE CASCADE,
                                author TEXT NOT NULL, text TEXT NOT NULL, created REAL NOT NULL);
        CREATE TABLE crm_history (id INTEGER PRIMARY KEY AUTOINCREMENT,
                                  contact TEXT NOT NULL REFERENCES crm_contacts(id) ON DELETE CASCADE,
                                  interaction TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, direction TEXT NOT NULL,
                                  started REAL NOT NULL, ended REAL, queue TEXT, agent TEXT, disposition TEXT);
        CREATE INDEX crm_history_contact ON crm_history(contact, started);
        """,
    )
]


@dataclass(frozen=True)
class CrmSettings:
    """``[crm]``: priorities by tag for routing, and whether unknown customers become contacts."""

    priority_tags: dict[str, int] = field(default_factory=dict)
    auto_create: bool = False


class SqliteCrm(CrmBackend, Service):
    name = "crm-sqlite"

    def __init__(self, store: Any, settings: CrmSettings | None = None) -> None:
        self.store = store
        self.settings = settings or CrmSettings()
        self._tags_by_identity: dict[tuple[str, str], frozenset[str]] = {}
        self._send, self._receive = trio.open_memory_channel[tuple[Interaction, str | None]](1000)
        self.dropped_history = 0
        self._ready = False

    # ------------------------------------------------------------------------------ service

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        await self._load_index()
        self._ready = True
        task_status.started()
        async for interaction, disposition in self._receive:
            try:
                await self.record_interaction(interaction, disposition)
            except Exception:
                log.exception("crm: recording interaction %s failed", interaction.id)

    def ready(self) -> bool:
        return self._ready

    def statistics(self) -> Mapping[str, Any]:
        return {"identities_indexed": len(self._tags_by_identity), "dropped_history": self.dropped_history}

    async def _load_index(self) -> None:
        rows = await self.store.fetchall(
            "SELECT i.kind, i.value, group_concat(t.tag, char(31)) AS tags FROM crm_identities i "
            "LEFT JOIN crm_tags t ON t.contact = i.contact GROUP BY i.kind, i.value"
        )
        self._tags_by_identity = {
            (r["kind"], r["value"]): frozenset((r["tags"] or "").split("\x1f")) - {""} for r in rows
        }

    # ------------------------------------------------------------------------- for routing

    def tags_for(self, interaction: Interaction) -> frozenset[str]:
        """Tags of the customer behind ``interaction`` from the in-memory index (no I/O)."""
        for kind in ("phone", "email", "chat"):
            try:
                key = (kind, normalise(kind, interaction.from_))
            except CrmInputError:
                continue
            if key in self._tags_by_identity:
                return self._tags_by_identity[key]
        return frozenset()

    def priority(self, interaction: Interaction) -> int | None:
        tags = self.tags_for(interaction)
        priorities = [p for tag, p in self.settings.priority_tags.items() if tag in tags]
        return max(priorities) if priorities else None

    def ended_nowait(self, interaction: Interaction) -> None:
        try:
            self._send.send_nowait((interaction, interaction.attributes.get("disposition")))
        except trio.WouldBlock:
            self.dropped_history += 1

    # ------------------------------------------------------------------------- CrmBackend

    async def lookup(self, *, phone: str | None = None, email: str | None = None) -> Contact | None:
        for kind, value in (("phone", phone), ("email", email)):
            if not value:
                continue
            try:
                key = normalise(kind, value)
            except CrmInputError:
                continue
            row = await self.store.fetchone("SELECT contact FROM crm_identities WHERE kind = ? AND value = ?", (kind, key))
            if row is not None:
                return await self.contact(row["contact"])
        return None

    async def contact(self, contact_id: str) -> Contact | None:
        row = await self.store.fetchone("SELECT id, name, fields FROM crm_contacts WHERE id = ?", (contact_id,))
        if row is None:
            return None
        identities = await self.store.fetchall("SELECT kind, value FROM crm_identities WHERE contact = ?", (contact_id,))
        tags = await self.store.fetchall("SELECT tag FROM crm_tags WHERE contact = ? ORDER BY tag", (contact_id,))
        return Contact(
            id=row["id"], name=row["name"],
            phones=tuple(i["value"] for i in identities if i["kind"] == "phone"),
            emails=tuple(i["value"] for i in identities if i["kind"] == "email"),
            segments=tuple(t["tag"] for t in tags),
            fields=json.loads(row["fields"]),
        )

    async def record_interaction(self, interaction: Interaction, disposition: str | None = None) -> None:
        kind = {"voice": "phone", "sms": "phone", "email": "email", "chat": "chat"}[interaction.kind.value]
        try:
            value = normalise(kind, interaction.from_ if interaction.direction.value == "inbound" else interaction.to)
        except CrmInputError:
            return
        row = await self.store.fetchone("SELECT contact FROM crm_identities WHERE kind = ? AND value = ?", (kind, value))
        if row is None:
            if not self.settings.auto_create:
                return
            contact_id = await self.create(ContactRow(name=interaction.caller_name or value,
                                                      **({"phones": [value]} if kind == "phone" else
                                                         {"emails": [value]} if kind == "email" else {})))
        else:
            contact_id = row["contact"]
        await self.store.write(
            "INSERT OR REPLACE INTO crm_history(contact, interaction, kind, direction, started, ended, queue, agent, "
            "disposition) VALUES (?,?,?,?,?,?,?,?,?)",
            (contact_id, interaction.id, interaction.kind.value, interaction.direction.value, interaction.created,
             interaction.ended, interaction.queue, interaction.agent, disposition),
        )

    # ------------------------------------------------------------------------- management

    async def create(self, row: ContactRow) -> str:
        """Store a new contact; raises :class:`CrmInputError` if one of its identities belongs to another."""
        contact_id = uuid.uuid4().hex[:16]
        now = time.time()
        identities = [("phone", p) for p in row.phones] + [("email", e) for e in row.emails]
        for kind, value in identities:
            taken = await self.store.fetchone("SELECT contact FROM crm_identities WHERE kind = ? AND value = ?", (kind, value))
            if taken is not None:
                raise CrmInputError(f"{value} already belongs to contact {taken['contact']}")
        statements: list[tuple[str, Sequence[Any]]] = [
            ("INSERT INTO crm_contacts(id, name, fields, created, updated) VALUES (?,?,?,?,?)",
             (contact_id, row.name, json.dumps(row.fields), now, now)),
            *[("INSERT INTO crm_identities(kind, value, contact) VALUES (?,?,?)", (k, v, contact_id)) for k, v in identities],
            *[("INSERT OR IGNORE INTO crm_tags(contact, tag) VALUES (?,?)", (contact_id, t)) for t in row.tags],
        ]
        await self.store.write_many(statements)
        for kind, value in identities:
            self._tags_by_identity[(kind, value)] = frozenset(row.tags)
        return contact_id

    async def tag(self, contact_id: str, tag: str) -> None:
        await self.store.write("INSERT OR IGNORE INTO crm_tags(contact, tag) VALUES (?, ?)", (contact_id, tag[:64]))
        await self._load_index()

    async def add_note(self, contact_id: str, author: str, text: str) -> None:
        if not text.strip():
            raise CrmInputError("an empty note")
        await self.store.write("INSERT INTO crm_notes(contact, author, text, created) VALUES (?,?,?,?)",
                               (contact_id, author[:64], text[:10_000], time.time()))

    async def notes(self, contact_id: str) -> list[dict[str, Any]]:
        return await self.store.fetchall("SELECT author, text, created FROM crm_notes WHERE contact = ? ORDER BY id", (contact_id,))

    async def history(self, contact_id: str) -> list[dict[str, Any]]:
        return await self.store.fetchall(
            "SELECT interaction, kind, direction, started, ended, queue, agent, disposition FROM crm_history "
            "WHERE contact = ? ORDER BY started", (contact_id,))

    async def import_csv(self, text: str) -> tuple[int, list[tuple[int, str]]]:
        """Import contacts; returns (imported, [(line, reason)]) — a row that cannot be stored is reported."""
        rows, problems = parse_csv(text)
        imported = 0
        for row in rows:
            try:
                await self.create(row)
                imported += 1
            except CrmInputError as exc:
                problems.append((row.line, f"{row.name}: {exc}"))
        return imported, problems

    async def export_csv(self) -> str:
        contacts = await self.store.fetchall("SELECT id FROM crm_contacts ORDER BY name")
        rows = []
        custom: set[str] = set()
        for c in contacts:
            contact = await self.contact(c["id"])
            assert contact is not None
            custom.update(contact.fields)
            rows.append({"name": contact.name, "phones": list(contact.phones), "emails": list(contact.emails),
                         "tags": list(contact.segments), "fields": dict(contact.fields)})
        return to_csv(rows, sorted(custom))
