"""The durable store (SQLite through aiosqlite on a private asyncio thread, group commit).

Keep callers on this small interface (``write``, ``write_many``, ``fetchall``, ``fetchone``) so a server
database can be added later for multi-box deployments.
"""

from ._store import CORE_MIGRATIONS, Store, StoreError, check_data_dir, open_store

__all__ = ["CORE_MIGRATIONS", "Store", "StoreError", "check_data_dir", "open_store"]
