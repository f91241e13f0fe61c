"""The console server: HTTP API, events WebSocket, probes, metrics, auth and the console pages.

The engine starts :class:`ConsoleServer` last; the CLI calls :func:`add_user` and :func:`add_token`;
:data:`MIGRATIONS` creates the console's tables (users, bearer tokens, sessions).
"""

from __future__ import annotations

from ._app import ConsoleApp
from ._auth import MIGRATIONS as _AUTH_MIGRATIONS
from ._auth import (
    ROLES,
    Authenticator,
    AuthError,
    Principal,
    add_token,
    add_user,
    ensure_first_admin,
    list_users,
)
from ._canned import MIGRATIONS as _CANNED_MIGRATIONS
from ._cdr import MASTER_CSV_COLUMNS, cdr_csv, neutralise
from ._ratelimit import LoginRateLimiter
from ._server import ConsoleServer, parse_listen

MIGRATIONS = [*_AUTH_MIGRATIONS, *_CANNED_MIGRATIONS]

__all__ = [
    "MASTER_CSV_COLUMNS",
    "MIGRATIONS",
    "ROLES",
    "AuthError",
    "Authenticator",
    "ConsoleApp",
    "ConsoleServer",
    "LoginRateLimiter",
    "Principal",
    "add_token",
    "add_user",
    "cdr_csv",
    "ensure_first_admin",
    "list_users",
    "neutralise",
    "parse_listen",
]
