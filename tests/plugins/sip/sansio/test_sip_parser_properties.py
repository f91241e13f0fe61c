"""Hostile input and property tests for the SIP parser and the stream framer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sip_sansio_helpers import SDP_OFFER, make_request

from plugins.sip.sansio import (
    Headers,
    NameAddr,
    ParseLimits,
    Request,
    Response,
    SipFramingError,
    SipParseError,
    SipUri,
    StreamFramer,
    parse_message,
)

from plugins.sip.sansio._parser import INTERNAL_ERRORS  # noqa: E402

RFC4475_DIR = Path(__file__).resolve().parents[4] / ".." / "shared" / "testdata" / "rfc4475"
INVITE = make_request("INVITE", body=SDP_OFFER).to_bytes()
CORPUS = [INVITE] + [p.read_bytes() for p in sorted(RFC4475_DIR.glob("*.dat"))]


def parse_or_peer_error(data: bytes) -> Request | Response | SipParseError:
    try:
        return parse_message(data)
    except SipParseError as exc:
        assert exc.status in (None, 400, 414, 416, 420, 505, 513)
        assert not INTERNAL_ERRORS, f"our own bug turned into a 400: {INTERNAL_ERRORS}"
        return exc


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_give_a_message_or_a_parse_error(data: bytes) -> None:
    parse_or_peer_error(data)


@settings(max_examples=300)
@given(st.sampled_from(CORPUS), st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=8)), max_size=6))
def test_mutated_real_messages_give_a_message_or_a_parse_error(base: bytes, edits) -> None:
    data = bytearray(base)
    for pos, chunk in edits:
        pos %= len(data) + 1
        data[pos : pos + len(chunk) // 2] = chunk
    parse_or_peer_error(bytes(data))


@settings(max_examples=200)
@given(st.sampled_from(CORPUS), st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_header_injection_text_is_safe(base: bytes, text: str) -> None:
    head, _, rest = base.partition(b"\r\n")
    parse_or_peer_error(head + b"\r\nX-Fuzz: " + text.encode("utf-8", "surrogatepass") + b"\r\n" + rest)


def test_truncation_at_every_offset_of_an_invite() -> None:
    for cut in range(len(INVITE)):
        result = parse_or_peer_error(INVITE[:cut])
        assert isinstance(result, SipParseError), cut
    assert isinstance(parse_message(INVITE), Request)


def test_64k_header_value_is_refused() -> None:
    big = INVITE.replace(b"Max-Forwards: 70", b"Subject: " + b"x" * 65536 + b"\r\nMax-Forwards: 70")
    assert parse_or_peer_error(big).status == 513
    limits = ParseLimits(max_message=200_000)
    with pytest.raises(SipParseError) as info:
        parse_message(big, limits=limits)
    assert info.value.status == 513 and info.value.partial is not None


def test_oversized_body_is_refused_with_a_partial() -> None:
    huge = make_request("MESSAGE", body=b"x" * 70_000).to_bytes()
    with pytest.raises(SipParseError) as info:
        parse_message(huge)
    assert info.value.status == 513 and info.value.partial is not None
    assert info.value.partial.call_id == "call-1@test"


def test_10000_headers_are_refused() -> None:
    many = INVITE.replace(b"Max-Forwards: 70", b"X-A: 1\r\n" * 10_000 + b"Max-Forwards: 70")
    assert parse_or_peer_error(many).status == 513  # larger than the 64 KiB default
    with pytest.raises(SipParseError) as info:
        parse_message(many, limits=ParseLimits(max_message=1_000_000))
    assert info.value.status == 513  # more than max_headers header fields
    few_first = INVITE.replace(b"Content-Type", b"X-A: 1\r\n" * 10_000 + b"Content-Type")
    with pytest.raises(SipParseError) as info:
        parse_message(few_first, limits=ParseLimits(max_message=1_000_000))
    assert info.value.status == 513 and info.value.partial is not None  # Via..CSeq came first


@pytest.mark.parametrize("value", [b"abc", b"1" * 5000, b"99999999999", b"-1", b"1 2", b"0x10", b"\xd9\xa1"])
def test_bad_content_length(value: bytes) -> None:
    data = INVITE.replace(b"Content-Length: ", b"Content-Length: " + value + b"\r\nX-Old: ")
    assert parse_or_peer_error(data).status == 400


@pytest.mark.parametrize("value", [b"abc INVITE", b"9" * 5000 + b" INVITE", b"2147483648 INVITE", b"1",
                                   b"1 INVITE extra", b"\xd9\xa1 INVITE"])
def test_bad_cseq(value: bytes) -> None:
    assert parse_or_peer_error(INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: " + value)).status == 400


def test_nul_and_invalid_utf8() -> None:
    assert parse_or_peer_error(INVITE.replace(b"Alice", b"Al\x00ce")).status == 400
    assert parse_or_peer_error(INVITE.replace(b"call-1@test", b"call\\\x00@test")).status == 400  # not quoted
    quoted = parse_message(INVITE.replace(b'"Alice"', b'"Al\\\x00ce"'))  # a quoted-pair NUL is legal
    assert quoted.from_.display_name == "Al\x00ce"
    assert parse_or_peer_error(INVITE.replace(b"Alice", b"Al\xc3ce")).status == 400
    # In the body they are just bytes.
    body_nul = make_request("MESSAGE", body=b"\x00\xff\xfe").to_bytes()
    assert parse_message(body_nul).body == b"\x00\xff\xfe"


def test_control_character_before_colon_is_not_a_known_header() -> None:
    # CVE-2016-9938: "To\x01:" must not be read as To, even after the name was looked up elsewhere.
    from plugins.sip.sansio import Headers as _Headers

    _Headers().get("To\x01")
    data = INVITE.replace(b"To: <sip:bob@example.com>", b"To\x01: <sip:bob@example.com>")
    assert parse_or_peer_error(data).status == 400
    no_colon = INVITE.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nVia\r\n")
    assert parse_or_peer_error(no_colon).status == 400


# -- round trip ---------------------------------------------------------------------------------------
_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~", min_size=1,
                 max_size=12)
_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)
_host = st.lists(_label, min_size=1, max_size=3).map(".".join)
_uri_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=10)
_plain = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
                 min_size=1, max_size=30).map(str.strip).filter(bool)


@st.composite
def sip_uris(draw) -> SipUri:
    params = draw(st.dictionaries(_token.map(str.lower), st.none() | _uri_text, max_size=3))
    return SipUri(
        draw(st.sampled_from(["sip", "sips"])),
        draw(st.none() | _uri_text),
        draw(_host),
        draw(st.none() | st.integers(1, 65535)),
        params,
    )


@st.composite
def requests(draw) -> Request:
    method = draw(_token)
    headers = Headers()
    for i in range(draw(st.integers(1, 3))):
        port = draw(st.none() | st.integers(1, 65535))
        sent_by = draw(_host) + (f":{port}" if port else "")
        headers.add("Via", f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS']))} {sent_by};branch=z9hG4bK{i}"
                    f"{draw(_token)}")
    frm = NameAddr(draw(sip_uris()), draw(st.none() | _plain), {"tag": draw(_token)})
    to = NameAddr(draw(sip_uris()), draw(st.none() | _plain))
    headers.add("From", str(frm))
    headers.add("To", str(to))
    headers.add("Call-ID", draw(_token) + "@" + draw(_host))
    headers.add("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}")
    headers.add("Max-Forwards", str(draw(st.integers(0, 255))))
    for _ in range(draw(st.integers(0, 4))):
        headers.add("X-" + draw(_token), draw(_plain))
    body = draw(st.binary(max_size=200))
    return Request(method, draw(sip_uris()), headers, body)


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_round_trip_generated_requests(request: Request) -> None:
    parsed = parse_message(request.to_bytes())
    assert parsed == request
    assert parsed.from_ == request.from_ and parsed.to == request.to and parsed.uri == request.uri
    assert parse_message(parsed.to_bytes()).to_bytes() == parsed.to_bytes()


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.integers(100, 699), _plain | st.just(""), st.binary(max_size=100))
def test_round_trip_generated_responses(request: Request, status: int, reason: str, body: bytes) -> None:
    from plugins.sip.sansio import make_response

    response = make_response(request, status, reason, to_tag="t" + str(status), body=body)
    parsed = parse_message(response.to_bytes())
    assert isinstance(parsed, Response)
    assert parsed == response and parsed.body == body and parsed.reason == reason
    if status > 100:
        assert parsed.to.tag == f"t{status}"


@settings(max_examples=60)
@given(sip_uris())
def test_uri_round_trip(uri: SipUri) -> None:
    assert SipUri.parse(str(uri)) == uri


# -- stream framing -----------------------------------------------------------------------------------
MESSAGES = [make_request("OPTIONS", cseq=i).to_bytes() for i in range(3)] + [INVITE]


@settings(max_examples=200)
@given(st.lists(st.integers(1, 600), min_size=1, max_size=40), st.booleans())
def test_framer_reassembles_any_split(sizes: list[int], keepalives: bool) -> None:
    gap = b"\r\n\r\n" if keepalives else b""
    stream = gap + gap.join(MESSAGES) + gap
    framer = StreamFramer()
    out: list[bytes] = []
    pos = 0
    for size in sizes * 100:
        if pos >= len(stream):
            break
        out += framer.feed(stream[pos : pos + size])
        pos += size
    out += framer.feed(stream[pos:])
    assert out == MESSAGES
    assert framer.buffered() == 0


def test_framer_one_byte_at_a_time_and_pings() -> None:
    framer = StreamFramer()
    out = []
    for byte in b"\r\n\r\n" + INVITE + b"\r\n":
        out += framer.feed(bytes([byte]))
    assert out == [INVITE] and framer.take_pings() == 1
    # The trailing CRLF may still grow into a ping: it waits, counted once it is known.
    assert framer.statistics()["keepalives"] == 1 and framer.buffered() == 2
    assert framer.feed(b"OPTIONS") == [] and framer.statistics()["keepalives"] == 2


@pytest.mark.parametrize(
    "data",
    [
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n",  # missing Content-Length
        b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n",
        b"OPTIONS sip:a@b SIP/2.0\r\nl: " + b"9" * 5000 + b"\r\n\r\n",
        b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 70000\r\n\r\n",
        b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
)
def test_framer_refuses_bad_content_length(data: bytes) -> None:
    framer = StreamFramer()
    with pytest.raises(SipFramingError):
        framer.feed(data)
    with pytest.raises(SipFramingError):
        framer.feed(b"more")  # the connection is done for


def test_framer_bounds_a_header_section_without_end() -> None:
    framer = StreamFramer(max_message=4096)
    with pytest.raises(SipFramingError):
        for _ in range(100):
            framer.feed(b"X-Junk: " + b"a" * 100 + b"\r\n")
    assert framer.buffered() == 0


def test_framer_compact_content_length_and_body() -> None:
    message = b"MESSAGE sip:a@b SIP/2.0\r\nl : 5\r\n\r\nhello"
    assert StreamFramer().feed(message + message) == [message, message]


# -- the fast paths agree with the general parsers -------------------------------------------------------
_pvalue = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~[]:", min_size=1, max_size=6)
_params_text = st.lists(st.tuples(_token, st.none() | _pvalue | _pvalue.map(lambda v: f'"{v} x"')),
                        max_size=3).map(lambda ps: "".join(f";{k}" if v is None else f";{k}={v}" for k, v in ps))
_uri_chars = st.text(alphabet="abcdefghijklmnopqrstuvwxyzAB0123456789-_.!~*'()&=+$,;?/:@%[]", min_size=1, max_size=20)


def _outcome(fn, text):
    try:
        return ("ok", fn(text))
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return ("error", type(exc).__name__)


@settings(max_examples=150)
@given(_uri_chars, _host, st.none() | st.integers(0, 99999), _params_text)
def test_fast_uri_path_agrees_with_general_path(user: str, host: str, port, params: str) -> None:
    text = f"sip:{user}@{host}" + (f":{port}" if port is not None else "") + params
    fast = _outcome(SipUri.parse, text)
    slow = _outcome(SipUri._parse_general, text)
    assert fast == slow


@settings(max_examples=150)
@given(st.none() | _plain.filter(lambda d: '"' not in d and "\\" not in d) | _token, _host, _params_text)
def test_fast_name_addr_path_agrees_with_general_path(display, host: str, params: str) -> None:
    shown = "" if display is None else (f'"{display}" ' if " " in display or not display.isalnum() else display + " ")
    text = f"{shown}<sip:u@{host}>{params}"
    fast = _outcome(NameAddr.parse, text)
    slow = _outcome(NameAddr._parse, text)
    assert fast[0] == slow[0]
    if fast[0] == "ok":
        assert fast[1] == slow[1] and str(fast[1]) == str(slow[1])


@settings(max_examples=150)
@given(st.sampled_from(["UDP", "tcp", "TLS", "SCTP"]), _host, st.none() | st.integers(0, 99999), _params_text)
def test_fast_via_path_agrees_with_general_path(transport: str, host: str, port, params: str) -> None:
    from plugins.sip.sansio import Via

    text = f"SIP/2.0/{transport} {host}" + (f":{port}" if port is not None else "") + params
    fast = _outcome(Via.parse, text)
    slow = _outcome(Via._parse_general, text)
    assert fast == slow
