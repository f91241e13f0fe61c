"""The built-in CRM: contacts, their identities, history, notes, tags and custom fields in SQLite."""
