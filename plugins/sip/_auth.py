"""Digest authentication for the registrar and for calls from phones (server side), and answers to a
provider's challenge (client side). RFC 2617 / RFC 7616 with MD5 and SHA-256 (RFC 8760), qop=auth.

Nonces are stateless: ``timestamp:random:HMAC(secret, timestamp:random)``, so a restart or a flood
of REGISTERs costs no memory; a bounded table of nonce-counts (per nonce, least recently used
forgotten) rejects replays. Challenges never depend on whether the username exists (no enumeration).

This is the shell's own small implementation; the sans-IO core's digest module can replace it when it
offers the same verification outcome (see ``docs/sip.md``).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AuthOutcome", "DigestServer", "answer_challenge", "parse_digest"]

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]{1,32})\s*=\s*("((?:[^"\\]|\\.){0,512})"|[^\s,"]{0,512})\s*(?:,|$)')
_ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def parse_digest(value: str) -> dict[str, str] | None:
    """Parameters of a ``Digest ...`` credentials/challenge value, or None if it is not one."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest" or len(rest) > 4096:
        return None
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.end() == pos:
            return None
        key = match.group(1).lower()
        raw = match.group(3) if match.group(3) is not None else match.group(2)
        if match.group(3) is not None:
            raw = re.sub(r"\\(.)", r"\1", raw)
        if key in params:
            return None
        params[key] = raw
        pos = match.end()
        if len(params) > 20:
            return None
    return params


def _h(algorithm: str, text: str) -> str:
    return _ALGORITHMS[algorithm](text.encode("utf-8", "surrogateescape")).hexdigest()


def _response(algorithm: str, username: str, realm: str, password: str, method: str, uri: str, p: dict[str, str]) -> str:
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    ha2 = _h(algorithm, f"{method}:{uri}")
    if p.get("qop"):
        return _h(algorithm, f"{ha1}:{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:{p['qop']}:{ha2}")
    return _h(algorithm, f"{ha1}:{p['nonce']}:{ha2}")


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
        self.realm = realm
        self.algorithms = tuple(a.upper() for a in algorithms if a.upper() in _ALGORITHMS) or ("MD5",)
        self.nonce_ttl = nonce_ttl
        self.clock = clock
        self._secret = secret or secrets.token_bytes(32)
        self._counts: OrderedDict[str, int] = OrderedDict()
        # Unknown users are checked against a random password so they take the same path and time.
        self._decoy = secrets.token_hex(16)

    def _sign(self, stamp: str, rand: str) -> str:
        return hmac.new(self._secret, f"{stamp}:{rand}".encode(), hashlib.sha256).hexdigest()[:32]

    def new_nonce(self) -> str:
        stamp = f"{self.clock():.3f}"
        rand = secrets.token_hex(8)
        return f"{stamp}:{rand}:{self._sign(stamp, rand)}"

    def challenges(self, *, stale: bool = False) -> list[str]:
        """``WWW-Authenticate`` values, identical for everyone, one per configured algorithm. MD5 alone
        by default: some phones (baresip 1.0) refuse a REGISTER outright when one of several challenges
        names an algorithm they lack, and others answer only the first challenge."""
        nonce = self.new_nonce()
        opaque = hmac.new(self._secret, b"opaque", hashlib.sha256).hexdigest()[:16]
        tail = ", stale=true" if stale else ""
        return [
            f'Digest realm="{self.realm}", nonce="{nonce}", opaque="{opaque}", algorithm={alg}, qop="auth"{tail}'
            for alg in self.algorithms
        ]

    def _nonce_age(self, nonce: str) -> float | None:
        parts = nonce.split(":")
        if len(parts) != 3:
            return None
        stamp, rand, sig = parts
        if not hmac.compare_digest(sig, self._sign(stamp, rand)):
            return None
        try:
            return self.clock() - float(stamp)
        except ValueError:
            return None

    def verify(self, method: str, values: list[str], password_of: Callable[[str], str | None]) -> AuthResult:
        """Check ``Authorization`` values of a request against ``password_of(username)``."""
        params = None
        for value in values:
            candidate = parse_digest(value)
            if candidate is not None and candidate.get("realm") == self.realm:
                params = candidate
                break
        if params is None:
            return AuthResult(AuthOutcome.MISSING)
        username = params.get("username", "")[:128]
        algorithm = params.get("algorithm", "MD5").upper()
        required = ("username", "nonce", "uri", "response")
        if algorithm not in _ALGORITHMS or any(k not in params for k in required):
            return AuthResult(AuthOutcome.FAILED, username)
        qop = params.get("qop")
        if qop is not None and (qop != "auth" or not re.fullmatch(r"[0-9a-fA-F]{8}", params.get("nc", "")) or "cnonce" not in params):
            return AuthResult(AuthOutcome.FAILED, username)
        password = password_of(username)
        known = password is not None
        expected = _response(algorithm, username, self.realm, password if known else self._decoy, method, params["uri"], params)
        if not hmac.compare_digest(expected, params["response"].lower()) or not known:
            return AuthResult(AuthOutcome.FAILED, username, known)
        age = self._nonce_age(params["nonce"])
        if age is None or age < -5:
            return AuthResult(AuthOutcome.FAILED, username, known)
        if age > self.nonce_ttl:
            return AuthResult(AuthOutcome.STALE, username, known)
        if qop is not None:
            nc = int(params["nc"], 16)
            last = self._counts.get(params["nonce"], 0)
            if nc <= last:
                return AuthResult(AuthOutcome.FAILED, username, known)  # a replay
            self._counts[params["nonce"]] = nc
            self._counts.move_to_end(params["nonce"])
            while len(self._counts) > 10000:
                self._counts.popitem(last=False)
        return AuthResult(AuthOutcome.OK, username, known)


def answer_challenge(
    challenge: str, method: str, uri: str, username: str, password: str, *, nc: int = 1, cnonce: str | None = None
) -> str | None:
    """The ``Authorization`` value answering one ``WWW-Authenticate``/``Proxy-Authenticate`` value."""
    params = parse_digest(challenge)
    if params is None or "nonce" not in params:
        return None
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in _ALGORITHMS:
        return None
    realm = params.get("realm", "")
    qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    fields = {"nonce": params["nonce"]}
    if "auth" in qops:
        fields.update(qop="auth", nc=f"{nc:08x}", cnonce=cnonce or secrets.token_hex(8))
    response = _response(algorithm, username, realm, password, method, uri, fields)
    out = f'Digest username="{username}", realm="{realm}", nonce="{params["nonce"]}", uri="{uri}", response="{response}", algorithm={algorithm}'
    if "auth" in qops:
        out += f', qop=auth, nc={fields["nc"]}, cnonce="{fields["cnonce"]}"'
    if "opaque" in params:
        out += f', opaque="{params["opaque"]}"'
    return out
