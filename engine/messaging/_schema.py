"""The messaging tables: conversations, messages, the outbox, opt-outs and per-channel marks.

One schema shared by every messaging channel (SMS, email, chat) so that an agent's view, the outbox and
the do-not-contact list work the same everywhere. Rules the schema enforces:

- a message a channel received is recorded once: ``(channel, external_id)`` is unique, so a re-delivery
  (an IMAP restart, an SMSC resending a deliver_sm) is recognised instead of duplicated;
- an outbound message and its outbox row are written in one transaction, so a reply the API accepted is
  never lost, even if the process dies before it is delivered.
"""

from __future__ import annotations

from .._registry import Migration, MigrationRegistry

COMPONENT = "messaging"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        COMPONENT,
        1,
        """
        CREATE TABLE msg_conversations (
            id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            customer TEXT NOT NULL,
            address TEXT NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL DEFAULT 'open',
            created REAL NOT NULL,
            updated REAL NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX msg_conversations_customer ON msg_conversations(channel, customer, state);
        CREATE TABLE msg_messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            conversation TEXT NOT NULL REFERENCES msg_conversations(id),
            channel TEXT NOT NULL,
            direction TEXT NOT NULL,
            status TEXT NOT NULL,
            body TEXT NOT NULL,
            external_id TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}'
        );
        CREATE UNIQUE INDEX msg_messages_external ON msg_messages(channel, external_id);
        CREATE INDEX msg_messages_conversation ON msg_messages(conversation, seq);
        CREATE TABLE msg_outbox (
            message TEXT PRIMARY KEY REFERENCES msg_messages(id),
            channel TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL NOT NULL,
            last_error TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX msg_outbox_due ON msg_outbox(channel, next_attempt);
        CREATE TABLE msg_do_not_contact (
            channel TEXT NOT NULL,
            address TEXT NOT NULL,
            reason TEXT NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (channel, address)
        );
        CREATE TABLE msg_marks (
            channel TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (channel, key)
        );
        CREATE TABLE msg_aliases (
            channel TEXT NOT NULL,
            alias TEXT NOT NULL,
            conversation TEXT NOT NULL REFERENCES msg_conversations(id),
            PRIMARY KEY (channel, alias)
        );
        """,
    ),
)


def add_migrations(registry: MigrationRegistry) -> None:
    """Add the shared messaging tables once, whichever messaging plugins are enabled (idempotent)."""
    for migration in MIGRATIONS:
        if migration not in registry.migrations:
            registry.add(migration)
