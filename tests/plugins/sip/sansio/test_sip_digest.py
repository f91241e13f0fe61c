"""Digest authentication: published vectors, challenge/answer round trips, expiry, replay, enumeration."""

from __future__ import annotations

from sip_sansio_helpers import make_request

from plugins.sip.sansio import (
    DigestChallenger,
    DigestOutcome,
    answer_challenge,
    digest_response,
    parse_auth_params,
    parse_message,
    parse_uri,
)

USERS = {"1001": "s3cret"}


def test_rfc2617_section_3_5_vector() -> None:
    assert digest_response(
        algorithm="MD5", username="Mufasa", realm="testrealm@host.com", password="Circle Of Life",
        method="GET", uri="/dir/index.html", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth", nc="00000001", cnonce="0a4f113b",
    ) == "6629fae49393a05397450978507c4ef1"


def test_rfc7616_section_3_9_1_vectors() -> None:
    common = dict(
        username="Mufasa", realm="http-auth@example.org", password="Circle of Life", method="GET",
        uri="/dir/index.html", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", qop="auth",
        nc="00000001", cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert digest_response(algorithm="SHA-256", **common) == (
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    )
    assert digest_response(algorithm="MD5", **common) == "8ca523f5e9506fed4657c9700eebdbec"


def _register():
    return make_request("REGISTER")


def _challenged(server: DigestChallenger, now: float = 0.0):
    request = _register()
    challenge = parse_message(server.challenge(request, now, to_tag="x").to_bytes())
    return request, challenge


def test_round_trip_sha256_preferred() -> None:
    server = DigestChallenger("centralita", b"k" * 32)
    request, challenge = _challenged(server)
    assert challenge.status == 401 and len(challenge.headers.get_all("WWW-Authenticate")) == 2
    name, value = answer_challenge(challenge, request, "1001", "s3cret")
    assert name == "Authorization" and parse_auth_params(value)[1]["algorithm"] == "SHA-256"
    request.headers.add(name, value)
    result = server.verify(request, 1.0, USERS.get)
    assert result.ok and result.username == "1001"


def test_md5_only_server_and_proxy_challenge() -> None:
    server = DigestChallenger("centralita", b"k" * 32, algorithms=("MD5",))
    request = make_request("INVITE")
    challenge = parse_message(server.challenge(request, 0.0, to_tag="x", proxy=True).to_bytes())
    assert challenge.status == 407
    name, value = answer_challenge(challenge, request, "1001", "s3cret")
    assert name == "Proxy-Authorization"
    request.headers.add(name, value)
    assert server.verify(request, 1.0, USERS.get, proxy=True).ok


def test_wrong_password_and_unknown_user_fail_alike() -> None:
    server = DigestChallenger("centralita", b"k" * 32)
    request, challenge = _challenged(server)
    request.headers.add(*answer_challenge(challenge, request, "1001", "wrong"))
    assert server.verify(request, 1.0, USERS.get).outcome is DigestOutcome.FAILED
    request2, challenge2 = _challenged(server)
    request2.headers.add(*answer_challenge(challenge2, request2, "9999", "whatever"))
    assert server.verify(request2, 1.0, USERS.get).outcome is DigestOutcome.FAILED


def test_challenges_do_not_depend_on_the_user() -> None:
    server = DigestChallenger("centralita", b"k" * 32)
    a = server.challenge(make_request("REGISTER"), 5.0, to_tag="t")
    b = server.challenge(make_request("REGISTER"), 5.0, to_tag="t")
    a.headers.set("From", "<sip:9999@example.com>;tag=a1")  # as if an unknown user had asked
    shape = lambda r: [(n, parse_auth_params(v)[1].keys()) for n, v in r.headers if "Auth" in n]  # noqa: E731
    assert a.status == b.status and shape(a) == shape(b)
    assert [n for n, _ in a.headers] == [n for n, _ in b.headers]


def test_expired_nonce_is_stale_only_with_the_right_password() -> None:
    server = DigestChallenger("centralita", b"k" * 32, nonce_ttl=30.0)
    request, challenge = _challenged(server, now=0.0)
    request.headers.add(*answer_challenge(challenge, request, "1001", "s3cret"))
    assert server.verify(request, 31.0, USERS.get).outcome is DigestOutcome.STALE
    assert "stale=true" in server.challenge_headers(31.0, stale=True)[0][1]
    bad, challenge = _challenged(server, now=0.0)
    bad.headers.add(*answer_challenge(challenge, bad, "1001", "nope"))
    assert server.verify(bad, 31.0, USERS.get).outcome is DigestOutcome.FAILED


def test_replayed_nonce_count_is_refused() -> None:
    server = DigestChallenger("centralita", b"k" * 32)
    request, challenge = _challenged(server)
    request.headers.add(*answer_challenge(challenge, request, "1001", "s3cret", cnonce="abc", nc=1))
    assert server.verify(request, 1.0, USERS.get).ok
    assert server.verify(request, 2.0, USERS.get).outcome is DigestOutcome.FAILED  # same nc again
    again = _register()
    again.headers.add(*answer_challenge(challenge, again, "1001", "s3cret", cnonce="abc", nc=2))
    assert server.verify(again, 3.0, USERS.get).ok  # a higher nc on the same nonce is fine


def test_forged_nonce_and_other_key_fail() -> None:
    server = DigestChallenger("centralita", b"k" * 32)
    other = DigestChallenger("centralita", b"z" * 32)
    request, challenge = _challenged(other)
    request.headers.add(*answer_challenge(challenge, request, "1001", "s3cret"))
    assert server.verify(request, 1.0, USERS.get).outcome is DigestOutcome.FAILED


def test_missing_and_malformed_credentials() -> None:
    server = DigestChallenger("centralita", b"k" * 32)
    assert server.verify(_register(), 0.0, USERS.get).outcome is DigestOutcome.MISSING
    request = _register()
    request.headers.add("Authorization", 'Digest realm="centralita", username="1001"')
    assert server.verify(request, 0.0, USERS.get).outcome is DigestOutcome.MALFORMED
    other_realm = _register()
    other_realm.headers.add("Authorization", 'Digest realm="elsewhere", username="1001", nonce="x"')
    assert server.verify(other_realm, 0.0, USERS.get).outcome is DigestOutcome.MISSING


def test_credentials_for_another_uri_are_refused() -> None:
    server = DigestChallenger("centralita", b"k" * 32)
    request, challenge = _challenged(server)
    name, value = answer_challenge(challenge, request, "1001", "s3cret")
    elsewhere = make_request("REGISTER")
    elsewhere.uri = parse_uri("sip:premium@example.com")
    elsewhere.headers.add(name, value)
    assert server.verify(elsewhere, 1.0, USERS.get).outcome is DigestOutcome.FAILED
    same_resource = make_request("REGISTER")
    same_resource.uri = parse_uri("sip:bob@EXAMPLE.com:5060;transport=udp")
    same_resource.headers.add(name, value)
    assert server.verify(same_resource, 1.0, USERS.get).ok
