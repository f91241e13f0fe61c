"""Console users, bearer tokens and sessions, kept in the store.

- Passwords: argon2id hashes (argon2-cffi), verified in a worker thread so a login never blocks trio.
- Bearer tokens and session ids are 32 random bytes; only their SHA-256 is stored, so a copy of the
  database does not hand out working credentials.
- Every request looks its credentials up in the store (no cache), so a user or token added by
  ``centralita user add``/``token add`` while the engine runs works at once, and a deleted one stops.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import sys
import time
from dataclasses import dataclass
from typing import Any

import argon2
import trio

from .._registry import Migration
from ._ratelimit import LoginRateLimiter

log = logging.getLogger("centralita.console.auth")

#: Roles from least to most privileged; ``admin`` is the technicians' role.
ROLES = ("agent", "supervisor", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}

SESSION_COOKIE = "centralita_session"
SESSION_LIFETIME = 12 * 3600.0
MIN_PASSWORD_LENGTH = 10
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

MIGRATIONS = [
    Migration(
        "console",
        1,
        """
        CREATE TABLE console_users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
            password_hash TEXT NOT NULL,
            must_change INTEGER NOT NULL DEFAULT 1,
            created REAL NOT NULL
        );
        CREATE TABLE console_tokens (
            token_hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
            created REAL NOT NULL
        );
        CREATE TABLE console_sessions (
            session_hash TEXT PRIMARY KEY,
            user TEXT NOT NULL REFERENCES console_users(name) ON DELETE CASCADE,
            csrf TEXT NOT NULL,
            created REAL NOT NULL,
            expires REAL NOT NULL
        );
        CREATE INDEX console_sessions_user ON console_sessions(user);
        """,
    )
]

_hasher = argon2.PasswordHasher()
# Verifying against this when the user does not exist makes "no such user" cost as much as "wrong
# password", so timing does not reveal which user names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
# At most two hashes at once (per trio run): a login flood slows logins, not the engine.
_argon_limiter: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("centralita_argon2_limiter")


def _limiter() -> trio.CapacityLimiter:
    try:
        return _argon_limiter.get()
    except LookupError:
        limiter = trio.CapacityLimiter(2)
        _argon_limiter.set(limiter)
        return limiter


class AuthError(Exception):
    """A login or password change the caller got wrong; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    #: "bearer" or "cookie": only cookie-authenticated state changes need a CSRF token
    via: str
    must_change: bool = False
    csrf: str = ""
    session_hash: str = ""

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "must_change_password": self.must_change}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"user name must be 1-64 letters, digits or _.@-, got {name!r}")


def _check_role(role: str) -> None:
    if role not in ROLE_RANK:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")


async def _hash(password: str) -> str:
    return await trio.to_thread.run_sync(_hasher.hash, password, limiter=_limiter())


async def _verify(hashed: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(hashed, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    return await trio.to_thread.run_sync(verify, limiter=_limiter())


async def add_user(store: Any, name: str, role: str) -> str:
    """Create a console user; returns a one-time password that must be changed at first login."""
    _check_name(name)
    _check_role(role)
    if await store.fetchone("SELECT name FROM console_users WHERE name = ?", (name,)):
        raise ValueError(f"user {name!r} already exists")
    password = secrets.token_urlsafe(12)
    await store.write(
        "INSERT INTO console_users (name, role, password_hash, must_change, created) VALUES (?, ?, ?, 1, ?)",
        (name, role, await _hash(password), time.time()),
    )
    return password


async def add_token(store: Any, name: str, role: str = "admin") -> str:
    """Create a bearer token for the API; returns the token (only its hash is stored)."""
    _check_name(name)
    _check_role(role)
    token = "ctl_" + secrets.token_urlsafe(32)
    await store.write(
        "INSERT INTO console_tokens (token_hash, name, role, created) VALUES (?, ?, ?, ?)",
        (token_hash(token), name, role, time.time()),
    )
    return token


async def list_users(store: Any) -> list[dict[str, Any]]:
    rows = await store.fetchall("SELECT name, role, must_change, created FROM console_users ORDER BY name")
    return [{"name": r["name"], "role": r["role"], "must_change_password": bool(r["must_change"])} for r in rows]


async def delete_user(store: Any, name: str) -> None:
    """Remove a user; their sessions end with them (foreign key cascade). KeyError if unknown."""
    if not await store.fetchone("SELECT name FROM console_users WHERE name = ?", (name,)):
        raise KeyError(name)
    await store.write_many([("DELETE FROM console_sessions WHERE user = ?", (name,)),
                            ("DELETE FROM console_users WHERE name = ?", (name,))])  # fmt: skip


async def set_role(store: Any, name: str, role: str) -> None:
    _check_role(role)
    if not await store.fetchone("SELECT name FROM console_users WHERE name = ?", (name,)):
        raise KeyError(name)
    await store.write("UPDATE console_users SET role = ? WHERE name = ?", (role, name))


async def list_tokens(store: Any) -> list[dict[str, Any]]:
    """Tokens by name and role; ``id`` (the first 12 hex digits of the hash) names one for revoking."""
    rows = await store.fetchall("SELECT token_hash, name, role, created FROM console_tokens ORDER BY created")
    return [{"id": r["token_hash"][:12], "name": r["name"], "role": r["role"], "created": r["created"]} for r in rows]


async def revoke_token(store: Any, token_id: str) -> None:
    if not re.fullmatch(r"[0-9a-f]{12}", token_id):
        raise KeyError(token_id)
    rows = await store.fetchall("SELECT token_hash FROM console_tokens WHERE substr(token_hash, 1, 12) = ?", (token_id,))
    if len(rows) != 1:
        raise KeyError(token_id)
    await store.write("DELETE FROM console_tokens WHERE token_hash = ?", (rows[0]["token_hash"],))


async def ensure_first_admin(store: Any) -> str | None:
    """On a first start (no console user at all) create ``admin`` and announce its one-time password."""
    if await store.fetchone("SELECT name FROM console_users LIMIT 1"):
        return None
    password = await add_user(store, "admin", "admin")
    print(f"admin one-time password: {password}", file=sys.stderr, flush=True)
    # CONTRACT.md wants it in the log too; the console's own Logs page shows it redacted
    log.warning("admin one-time password: %s (change it at first login)", password, extra={"secret_args": True})
    return password


class Authenticator:
    """Turns request credentials into a :class:`Principal`; logs users in and out."""

    def __init__(self, store: Any, limiter: LoginRateLimiter | None = None) -> None:
        self.store = store
        self.limiter = limiter or LoginRateLimiter()
        self.logins = 0
        self.failed_logins = 0

    async def from_bearer(self, token: str) -> Principal | None:
        row = await self.store.fetchone("SELECT name, role FROM console_tokens WHERE token_hash = ?", (token_hash(token),))
        if row is None:
            return None
        return Principal(row["name"], row["role"], "bearer")

    async def from_session(self, session_id: str) -> Principal | None:
        if not session_id or len(session_id) > 200:
            return None
        row = await self.store.fetchone(
            "SELECT s.session_hash, s.csrf, s.expires, u.name, u.role, u.must_change "
            "FROM console_sessions s JOIN console_users u ON u.name = s.user WHERE s.session_hash = ?",
            (token_hash(session_id),),
        )
        if row is None or row["expires"] < time.time():
            return None
        return Principal(row["name"], row["role"], "cookie", bool(row["must_change"]), row["csrf"], row["session_hash"])

    async def login(self, name: str, password: str, source: str, *, replaces: Principal | None = None) -> tuple[str, Principal]:
        """Check a password; on success a fresh session (the old one, if any, is dropped)."""
        now = trio.current_time()
        wait = self.limiter.check(source, name, now)
        if wait > 0:
            raise AuthError(429, f"too many failed logins; try again in {int(wait) + 1} s", retry_after=wait)
        row = await self.store.fetchone("SELECT name, role, password_hash FROM console_users WHERE name = ?", (name,))
        ok = await _verify(row["password_hash"] if row else _DUMMY_HASH, password)
        if not ok or row is None:
            self.failed_logins += 1
            self.limiter.failure(source, name, trio.current_time())
            log.warning("console login failed for %r from %s", name[:64], source)
            raise AuthError(401, "wrong user name or password")
        self.limiter.success(source, name)
        self.logins += 1
        session_id = await self._new_session(row["name"], replaces)
        principal = await self.from_session(session_id)
        assert principal is not None
        log.info("console login: %s (%s) from %s", row["name"], row["role"], source)
        return session_id, principal

    async def change_password(self, principal: Principal, current: str, new: str, source: str) -> str:
        """Set a new password (the current one is required); returns a fresh session id."""
        if principal.via != "cookie":
            raise AuthError(403, "change a password with a console session, not a token")
        wait = self.limiter.check(source, principal.name, trio.current_time())
        if wait > 0:
            raise AuthError(429, f"too many failed attempts; try again in {int(wait) + 1} s", retry_after=wait)
        row = await self.store.fetchone("SELECT password_hash FROM console_users WHERE name = ?", (principal.name,))
        if row is None or not await _verify(row["password_hash"], current):
            self.limiter.failure(source, principal.name, trio.current_time())
            raise AuthError(403, "the current password is wrong")
        if len(new) < MIN_PASSWORD_LENGTH:
            raise AuthError(400, f"the new password must have at least {MIN_PASSWORD_LENGTH} characters")
        if new == current:
            raise AuthError(400, "the new password must differ from the current one")
        await self.store.write_many(
            [
                ("UPDATE console_users SET password_hash = ?, must_change = 0 WHERE name = ?", (await _hash(new), principal.name)),
                # every other session of this user ends: a stolen cookie dies with the old password
                ("DELETE FROM console_sessions WHERE user = ?", (principal.name,)),
            ]
        )
        log.info("console password changed: %s", principal.name)
        return await self._new_session(principal.name, None)

    async def logout(self, principal: Principal) -> None:
        if principal.session_hash:
            await self.store.write("DELETE FROM console_sessions WHERE session_hash = ?", (principal.session_hash,))

    async def _new_session(self, user: str, replaces: Principal | None) -> str:
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        statements: list[tuple[str, tuple[Any, ...]]] = [
            ("DELETE FROM console_sessions WHERE expires < ?", (now,)),
            (
                "INSERT INTO console_sessions (session_hash, user, csrf, created, expires) VALUES (?, ?, ?, ?, ?)",
                (token_hash(session_id), user, secrets.token_urlsafe(24), now, now + SESSION_LIFETIME),
            ),
        ]
        if replaces is not None and replaces.session_hash:
            statements.insert(0, ("DELETE FROM console_sessions WHERE session_hash = ?", (replaces.session_hash,)))
        await self.store.write_many(statements)
        return session_id

    def statistics(self) -> dict[str, int]:
        return {"logins": self.logins, "failed_logins": self.failed_logins, **{f"ratelimit_{k}": v for k, v in self.limiter.statistics().items()}}
