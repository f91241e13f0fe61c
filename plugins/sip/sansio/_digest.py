"""HTTP digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760: MD5 and SHA-256, qop=auth).

Server side, :class:`DigestChallenger` issues *stateless* nonces: a timestamp and random bytes signed with
HMAC-SHA-256 under a secret key, so any nonce can be checked without storing it, and expiry answers
``stale=true``. The only state is a bounded table of the highest nonce-count seen per nonce, which stops
replays. Challenges never depend on the user name, so scanners cannot tell known from unknown users.

Client side, :func:`answer_challenge` computes the Authorization header answering a 401/407.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ._errors import SipParseError
from ._grammar import quote, split_outside, unquote
from ._message import Request, Response, make_response
from ._uri import SipUri, parse_uri

__all__ = [
    "DigestChallenger",
    "DigestOutcome",
    "DigestResult",
    "answer_challenge",
    "authorization_value",
    "parse_auth_params",
    "digest_response",
]

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def _h(algorithm: str, text: str) -> str:
    base = algorithm.upper().removesuffix("-SESS")
    return _HASHES[base](text.encode("utf-8")).hexdigest()


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The ``response`` value of RFC 7616 §3.4.1 (qop=auth or none; ``-sess`` variants supported)."""
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qop:
        return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{ha2}")


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``Digest a=b, c="d"`` into the scheme and a dict of lower-cased names to unquoted values."""
    scheme, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    for piece in split_outside(rest, ","):
        name, eq, val = piece.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if not eq:
            raise SipParseError(f"bad auth parameter {piece[:40]!r}", 400)
        params[name] = unquote(val.strip())
    return scheme, params


class DigestOutcome(enum.Enum):
    OK = "ok"
    MISSING = "missing"  #: no credentials for our realm: challenge
    STALE = "stale"  #: right password, old nonce: challenge with stale=true
    FAILED = "failed"  #: wrong password, unknown user, replay, forged nonce: challenge (and count it)
    MALFORMED = "malformed"  #: unusable credentials: 400


@dataclass(frozen=True)
class DigestResult:
    outcome: DigestOutcome
    username: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is DigestOutcome.OK


class DigestChallenger:
    """Issue and check digest challenges for one realm.

    ``algorithms`` are offered in order (one challenge header each, RFC 8760 §2.4: the strongest first).
    Interop note: some deployed phones (baresip 1.0, per the SIP shell's tests) give up when any challenge
    names an algorithm they lack, and others answer only the first one; pass ``algorithms=("MD5",)`` for
    such a fleet. ``verify`` accepts exactly the algorithms offered.
    """

    def __init__(
        self,
        realm: str,
        secret_key: bytes,
        nonce_ttl: float = 300.0,
        *,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
        max_tracked_nonces: int = 50_000,
    ) -> None:
        for alg in algorithms:
            if alg.upper().removesuffix("-SESS") not in _HASHES:
                raise ValueError(f"unsupported digest algorithm {alg!r}")
        self.realm = realm
        self._key = bytes(secret_key)
        self.nonce_ttl = nonce_ttl
        self.algorithms = algorithms
        self._opaque = hmac.new(self._key, b"opaque:" + realm.encode(), hashlib.sha256).hexdigest()[:32]
        self._nc_seen: OrderedDict[str, int] = OrderedDict()
        self._max_tracked = max_tracked_nonces

    # -- nonces ------------------------------------------------------------------------------------
    def make_nonce(self, now: float) -> str:
        body = struct.pack(">d", now) + secrets.token_bytes(9)
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(body + mac).decode("ascii")

    def _nonce_time(self, nonce: str) -> float | None:
        """The issue time of a nonce we signed, or ``None`` if it is not ours."""
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return None
        if len(raw) != 8 + 9 + 16:
            return None
        body, mac = raw[:17], raw[17:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()[:16]):
            return None
        return float(struct.unpack(">d", body[:8])[0])

    # -- challenges --------------------------------------------------------------------------------
    def challenge_headers(self, now: float, *, stale: bool = False, proxy: bool = False) -> list[tuple[str, str]]:
        """The WWW-Authenticate (or Proxy-Authenticate) header fields of a fresh challenge."""
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        nonce = self.make_nonce(now)
        out = []
        for alg in self.algorithms:
            value = (
                f"Digest realm={quote(self.realm)}, nonce={quote(nonce)}, opaque={quote(self._opaque)}, "
                f"algorithm={alg}, qop=\"auth\""
            )
            if stale:
                value += ", stale=true"
            out.append((name, value))
        return out

    def challenge(self, request: Request, now: float, *, to_tag: str, stale: bool = False,
                  proxy: bool = False) -> Response:
        """A 401 (or 407) for ``request``; identical in form for every user name."""
        return make_response(request, 407 if proxy else 401, to_tag=to_tag,
                             headers=self.challenge_headers(now, stale=stale, proxy=proxy))

    # -- verification ------------------------------------------------------------------------------
    def verify(
        self,
        request: Request,
        now: float,
        password_for: Callable[[str], str | None],
        *,
        proxy: bool = False,
    ) -> DigestResult:
        """Check the request's credentials for our realm.

        ``password_for(username)`` returns the user's password or ``None`` for an unknown user; an unknown
        user costs the same hashing as a known one and gets the same FAILED outcome as a wrong password.
        """
        header = "Proxy-Authorization" if proxy else "Authorization"
        mine = None
        try:
            for value in request.headers.get_all(header):
                scheme, params = parse_auth_params(value)
                if scheme.lower() == "digest" and params.get("realm") == self.realm:
                    mine = params
                    break
        except SipParseError:
            return DigestResult(DigestOutcome.MALFORMED, detail="unparseable credentials")
        if mine is None:
            return DigestResult(DigestOutcome.MISSING)
        username = mine.get("username")
        nonce, response, uri = mine.get("nonce"), mine.get("response"), mine.get("uri")
        algorithm = mine.get("algorithm", "MD5")
        if not username or not nonce or not response or uri is None:
            return DigestResult(DigestOutcome.MALFORMED, username, "missing username/nonce/uri/response")
        if algorithm.upper() not in {a.upper() for a in self.algorithms}:
            return DigestResult(DigestOutcome.FAILED, username, f"algorithm {algorithm[:20]!r} not offered")
        qop, nc, cnonce = mine.get("qop"), mine.get("nc"), mine.get("cnonce")
        if qop != "auth" or not nc or not cnonce:
            return DigestResult(DigestOutcome.FAILED, username, "qop=auth with nc and cnonce is required")
        if len(nc) != 8 or not all(c in "0123456789abcdefABCDEF" for c in nc):
            return DigestResult(DigestOutcome.MALFORMED, username, "bad nonce-count")
        issued = self._nonce_time(nonce)
        if issued is None:
            return DigestResult(DigestOutcome.FAILED, username, "nonce not issued by us")
        if not _same_target(uri, request):
            # RFC 7616 §3.4.6: credentials computed for another URI must not be accepted here.
            return DigestResult(DigestOutcome.FAILED, username, "digest uri does not match the Request-URI")

        password = password_for(username)
        expected = digest_response(
            algorithm=algorithm, username=username, realm=self.realm,
            password=password if password is not None else secrets.token_hex(16),
            method=request.method, uri=uri, nonce=nonce, qop=qop, nc=nc, cnonce=cnonce,
        )
        if password is None or not hmac.compare_digest(expected, response.lower()):
            return DigestResult(DigestOutcome.FAILED, username, "wrong credentials")
        if not (issued <= now < issued + self.nonce_ttl):
            return DigestResult(DigestOutcome.STALE, username, "nonce expired")
        count = int(nc, 16)
        last = self._nc_seen.get(nonce)
        if last is None and count != 1 and len(self._nc_seen) >= self._max_tracked:
            # We forgot this nonce (table full): make the client start over with a fresh one.
            return DigestResult(DigestOutcome.STALE, username, "nonce no longer tracked")
        if last is not None and count <= last:
            return DigestResult(DigestOutcome.FAILED, username, "nonce-count replayed")
        self._nc_seen[nonce] = count
        self._nc_seen.move_to_end(nonce)
        while len(self._nc_seen) > self._max_tracked:
            self._nc_seen.popitem(last=False)
        return DigestResult(DigestOutcome.OK, username)

    def expire(self, now: float) -> None:
        """Forget nonce counts of nonces that can no longer be accepted anyway."""
        for nonce in list(self._nc_seen):
            issued = self._nonce_time(nonce)
            if issued is None or issued + self.nonce_ttl <= now:
                del self._nc_seen[nonce]


def _same_target(digest_uri: str, request: Request) -> bool:
    if digest_uri == str(request.uri):
        return True
    try:
        theirs = parse_uri(digest_uri)
    except SipParseError:
        return False
    ours = request.uri
    if isinstance(theirs, SipUri) and isinstance(ours, SipUri):
        # Same resource, written differently (parameters, default port, case of the host).
        def key(u: SipUri) -> tuple[object, ...]:
            return (u.scheme, u.user, u.host, u.port or (5061 if u.scheme == "sips" else 5060))

        return key(theirs) == key(ours)
    return theirs == ours


_PREFERENCE = {"SHA-256": 0, "SHA-256-SESS": 1, "MD5": 2, "MD5-SESS": 3}


def answer_challenge(
    challenge: Response,
    request: Request,
    username: str,
    password: str,
    *,
    cnonce: str | None = None,
    nc: int = 1,
) -> tuple[str, str]:
    """The ``(header name, value)`` answering a 401/407 ``challenge`` to ``request``.

    Picks the strongest algorithm offered (SHA-256 before MD5). The caller re-sends the request with this
    header, a new branch and CSeq + 1. Raises :class:`SipParseError` (status ``None``) if no usable
    challenge is present.
    """
    proxy = challenge.status == 407
    source = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    best: dict[str, str] | None = None
    for value in challenge.headers.get_all(source):
        scheme, params = parse_auth_params(value)
        alg = params.get("algorithm", "MD5").upper()
        if scheme.lower() != "digest" or alg not in _PREFERENCE or "nonce" not in params:
            continue
        if best is None or _PREFERENCE[alg] < _PREFERENCE[best.get("algorithm", "MD5").upper()]:
            best = params
    if best is None:
        raise SipParseError("no usable digest challenge", None)
    value = authorization_value(best, request.method, str(request.uri), username, password, cnonce=cnonce, nc=nc)
    return ("Proxy-Authorization" if proxy else "Authorization", value)


def authorization_value(
    challenge: dict[str, str],
    method: str,
    uri: str,
    username: str,
    password: str,
    *,
    cnonce: str | None = None,
    nc: int = 1,
) -> str:
    """The ``Digest ...`` credentials answering one parsed challenge (:func:`parse_auth_params`), which must
    hold a ``nonce`` and name a supported algorithm."""
    realm, nonce = challenge.get("realm", ""), challenge["nonce"]
    algorithm = challenge.get("algorithm", "MD5")
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    qop = "auth" if "auth" in qops else None
    cnonce = cnonce or secrets.token_hex(8)
    ncs = f"{nc:08x}"
    response = digest_response(
        algorithm=algorithm, username=username, realm=realm, password=password, method=method,
        uri=uri, nonce=nonce, qop=qop, nc=ncs, cnonce=cnonce,
    )
    parts = [f"username={quote(username)}", f"realm={quote(realm)}", f"nonce={quote(nonce)}",
             f"uri={quote(uri)}", f"response={quote(response)}", f"algorithm={algorithm}"]
    if qop:
        parts += [f"qop={qop}", f"nc={ncs}", f"cnonce={quote(cnonce)}"]
    if "opaque" in challenge:
        parts.append(f"opaque={quote(challenge['opaque'])}")
    return "Digest " + ", ".join(parts)
