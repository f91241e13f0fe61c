"""Headers, URIs, addresses, rport/received and the pinned public API."""

from __future__ import annotations

import pytest
from sip_sansio_helpers import make_request

import plugins.sip.sansio as sansio
from plugins.sip.sansio import (
    Headers,
    NameAddr,
    SipParseError,
    SipUri,
    Via,
    make_response,
    parse_message,
    parse_uri,
    response_destination,
    stamp_received,
)


def test_headers_are_case_insensitive_ordered_and_multi_valued() -> None:
    h = Headers([("v", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"), ("i", "x@y"),
                 ("X-Custom", "keep, commas"), ("Allow", "INVITE, ACK,BYE")])
    assert h.get("VIA") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert h.get_all("via") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b;branch=z9hG4bK2"]
    assert h.get("Call-ID") == "x@y" and h.get("x-custom") == "keep, commas"
    assert h.get_all("Allow") == ["INVITE", "ACK", "BYE"]
    assert [name for name, _ in h] == ["Via", "Via", "Call-ID", "X-Custom", "Allow", "Allow", "Allow"]
    h.set("Allow", "OPTIONS")
    assert h.get_all("allow") == ["OPTIONS"] and [n for n, _ in h][3:] == ["X-Custom", "Allow"]
    h.remove("VIA")
    assert "Via" not in h and h.get("via") is None
    h.replace_first("Call-ID", "z@y")
    assert h.get("i") == "z@y"


def test_headers_refuse_crlf_injection() -> None:
    with pytest.raises(sansio.SipLocalError):
        Headers().add("Subject", "hi\r\nVia: evil")


def test_compact_forms_are_expanded_on_output() -> None:
    data = (b"OPTIONS sip:a@example.com SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKc\r\nf: <sip:b@example.com>;tag=1"
            b"\r\nt: <sip:a@example.com>\r\ni: c1\r\nCSeq: 1 OPTIONS\r\nk: timer\r\nl: 0\r\n\r\n")
    out = parse_message(data).to_bytes()
    for full in (b"Via:", b"From:", b"To:", b"Call-ID:", b"Supported:", b"Content-Length: 0"):
        assert full in out


def test_uri_forms() -> None:
    u = SipUri.parse("sips:alice:pw@[2001:db8::1]:5071;transport=tcp;lr?subject=hi%20there&priority=urgent")
    assert (u.scheme, u.user, u.password, u.host, u.port) == ("sips", "alice", "pw", "[2001:db8::1]", 5071)
    assert u.params == {"transport": "tcp", "lr": None} and u.transport == "TCP"
    assert u.headers == {"subject": "hi there", "priority": "urgent"}
    tel = SipUri.parse("tel:+1-201-555-0123;phone-context=example.com")
    assert tel.user == "+1-201-555-0123" and tel.params["phone-context"] == "example.com"
    built = SipUri("sip", "a b@c", "example.com", 5060, {"x": "1;2"})
    assert str(built) == "sip:a%20b%40c@example.com:5060;x=1%3B2"
    assert SipUri.parse(str(built)) == built
    assert str(parse_uri("urn:service:sos")) == "urn:service:sos"
    for bad in ["sip:", "sip:@host", "sip:host:99999", "sip:ho st", "sip:[::1", "http://x", "sip:a@b;%zz"]:
        with pytest.raises(SipParseError):
            SipUri.parse(bad)


def test_name_addr_forms() -> None:
    a = NameAddr.parse('"Bob \\"B\\"" <sip:bob@example.com>;tag=9;expires=60')
    assert a.display_name == 'Bob "B"' and a.tag == "9" and a.params["expires"] == "60"
    assert NameAddr.parse(str(a)) == a
    b = NameAddr.parse("sip:bob@example.com;tag=9")  # addr-spec: the parameter belongs to the header
    assert b.tag == "9" and b.uri.params == {}
    assert NameAddr.parse("*").is_wildcard and str(NameAddr.wildcard()) == "*"
    assert a.with_tag("x").tag == "x" and a.tag == "9"


def test_via_forms_and_rport() -> None:
    v = Via.parse("SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKx;rport;received=192.0.2.1")
    assert (v.transport, v.host, v.port, v.branch, v.rport, v.received) == (
        "TCP", "[2001:db8::9]", 5070, "z9hG4bKx", True, "192.0.2.1")
    assert Via.parse(str(v)) == v
    assert Via.parse("SIP/2.0/UDP h;rport=5062").rport == 5062
    for bad in ["SIP/2.0 h", "SIP/2.0/UDP", "SIP/2.0/UDP h:0", "SIP/2.0/UDP h;;", "SIP/2.0/UDP h;=x"]:
        with pytest.raises(SipParseError):
            Via.parse(bad)


def test_stamp_received_and_response_destination_rfc3581() -> None:
    request = make_request("OPTIONS", via_host="10.0.0.5:5060")  # a phone behind NAT, with ;rport
    stamp_received(request, "203.0.113.7", 40123)
    assert request.via[0].received == "203.0.113.7" and request.via[0].rport == 40123
    assert [n for n, _ in request.headers][0] == "Via"  # still the top value, in place
    assert response_destination(make_response(request, 200)) == ("203.0.113.7", 40123)
    plain = make_request("OPTIONS", via_host="10.0.0.5:5070")
    plain.headers.set("Via", "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKp")
    stamp_received(plain, "203.0.113.7", 40123)
    assert plain.via[0].received == "203.0.113.7" and plain.via[0].rport is None
    assert response_destination(make_response(plain, 200)) == ("203.0.113.7", 5070)
    same = make_request("OPTIONS", via_host="192.0.2.10")
    same.headers.set("Via", "SIP/2.0/TLS 192.0.2.10;branch=z9hG4bKq")
    stamp_received(same, "192.0.2.10", 5999)
    assert same.via[0].received is None
    assert response_destination(make_response(same, 200)) == ("192.0.2.10", 5061)


def test_make_response_copies_what_rfc3261_requires() -> None:
    request = make_request("INVITE")
    request.headers.add("Timestamp", "54")
    request.headers.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp2")
    trying = make_response(request, 100, to_tag="ignored")
    assert trying.to.tag is None and trying.headers.get("Timestamp") == "54"
    ok = make_response(request, 200, to_tag="t1", headers=[("Contact", "<sip:us@192.0.2.1>")])
    assert ok.to.tag == "t1" and ok.reason == "OK" and ok.headers.get("Timestamp") is None
    assert ok.headers.get_all("Via") == request.headers.get_all("Via")
    assert (ok.call_id, ok.cseq, ok.from_) == (request.call_id, request.cseq, request.from_)
    in_dialog = make_request("BYE")
    in_dialog.headers.set("To", "<sip:bob@example.com>;tag=t1")
    assert make_response(in_dialog, 200, to_tag="other").to.tag == "t1"  # an existing tag is kept


PINNED_API = {
    "Request", "Response", "Headers", "SipUri", "GenericUri", "NameAddr", "Via", "parse_message", "parse_uri",
    "make_response", "ParseLimits", "DEFAULT_LIMITS", "StreamFramer", "SipError", "SipPeerError",
    "SipParseError", "SipFramingError", "SipLocalError", "SdpParseError", "SdpNegotiationError",
    "SessionDescription", "MediaDescription", "MediaSession", "Negotiated", "DigestChallenger",
    "answer_challenge", "ClientInviteTransaction", "ClientNonInviteTransaction", "ServerInviteTransaction",
    "ServerNonInviteTransaction", "TransactionLayer", "TimerConfig", "Dialog", "LoopbackNetwork",
    "HarnessAgent",
}


def test_public_api_is_pinned() -> None:
    assert PINNED_API <= set(sansio.__all__)
    assert all(hasattr(sansio, name) for name in sansio.__all__)
    assert len(sansio.__all__) == len(set(sansio.__all__))


def test_importing_the_core_pulls_in_no_io() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[4]
    code = ("import sys, plugins.sip.sansio; "
            "print(sorted(m for m in ('trio', 'socket', 'asyncio', 'selectors', 'engine') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
