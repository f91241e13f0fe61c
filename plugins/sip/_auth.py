"""Digest authentication for the registrar and for calls from phones (server side), and answers to a
provider's challenge (client side): the shell's face of the sans-IO core's digest code
(:mod:`plugins.sip.sansio._digest`, RFC 2617 / RFC 7616 / RFC 8760, qop=auth).

What the shell adds: the engine's clock instead of an explicit ``now``, outcomes the security guard can
count (a failure says whether the user name exists, so only real accounts get locked), and the
trunk-side helper that answers one ``WWW-Authenticate`` value. Nonces are stateless (signed, with a
timestamp); the only state is the core's bounded nonce-count table that stops replays.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from .sansio import DigestChallenger, DigestOutcome, Request, SipParseError, authorization_value, parse_auth_params

__all__ = ["AuthOutcome", "AuthResult", "DigestServer", "answer_challenge"]

_SUPPORTED = ("MD5", "SHA-256")
#: nonces whose count is remembered (replay protection); the least recently used is forgotten first
MAX_TRACKED_NONCES = 10_000


class AuthOutcome(enum.Enum):
    OK = "ok"
    MISSING = "missing"  # no credentials for our realm: challenge
    STALE = "stale"  # right password, expired nonce: challenge again with stale=true
    FAILED = "failed"  # wrong password, unknown user, replay, malformed: count it, challenge again


@dataclass(frozen=True)
class AuthResult:
    outcome: AuthOutcome
    username: str = ""
    known_user: bool = False


_OUTCOMES = {
    DigestOutcome.OK: AuthOutcome.OK,
    DigestOutcome.MISSING: AuthOutcome.MISSING,
    DigestOutcome.STALE: AuthOutcome.STALE,
    DigestOutcome.FAILED: AuthOutcome.FAILED,
}


class DigestServer:
    def __init__(
        self,
        realm: str,
        *,
        nonce_ttl: float = 300.0,
        clock: Callable[[], float],
        secret: bytes | None = None,
        algorithms: tuple[str, ...] = ("MD5",),
    ) -> None:
        chosen = tuple(a.upper() for a in algorithms if a.upper() in _SUPPORTED) or ("MD5",)
        self.realm = realm
        self.algorithms = chosen
        self.clock = clock
        self._core = DigestChallenger(
            realm, secret or secrets.token_bytes(32), nonce_ttl, algorithms=chosen, max_tracked_nonces=MAX_TRACKED_NONCES
        )

    @property
    def nonce_ttl(self) -> float:
        return self._core.nonce_ttl

    def challenges(self, *, stale: bool = False) -> list[str]:
        """Challenge values, identical for everyone, one per configured algorithm. MD5 alone by default:
        some phones (baresip 1.0) refuse a REGISTER outright when one of several challenges names an
        algorithm they lack, and others answer only the first challenge."""
        return [value for _, value in self._core.challenge_headers(self.clock(), stale=stale)]

    def verify(self, request: Request, password_of: Callable[[str], str | None], *, proxy: bool = False) -> AuthResult:
        """Check the (Proxy-)Authorization credentials of ``request`` against ``password_of(username)``."""
        result = self._core.verify(request, self.clock(), password_of, proxy=proxy)
        username = (result.username or "")[:128]
        if result.outcome is DigestOutcome.MALFORMED:
            # Unusable credentials are counted like a wrong password once they name somebody.
            outcome = AuthOutcome.FAILED if username else AuthOutcome.MISSING
        else:
            outcome = _OUTCOMES[result.outcome]
        known = bool(username) and password_of(username) is not None
        return AuthResult(outcome, username, known)

    def expire(self) -> None:
        """Forget the counts of nonces that can no longer be accepted (bounded anyway; this frees it early)."""
        self._core.expire(self.clock())


def answer_challenge(
    challenge: str, method: str, uri: str, username: str, password: str, *, nc: int = 1, cnonce: str | None = None
) -> str | None:
    """The ``Authorization`` value answering one ``WWW-Authenticate``/``Proxy-Authenticate`` value, or None
    when it is not a digest challenge we can answer."""
    try:
        scheme, params = parse_auth_params(challenge[:4096])
    except SipParseError:
        return None
    if scheme.lower() != "digest" or "nonce" not in params or params.get("algorithm", "MD5").upper() not in _SUPPORTED:
        return None
    return authorization_value(params, method, uri, username, password, cnonce=cnonce, nc=nc)
