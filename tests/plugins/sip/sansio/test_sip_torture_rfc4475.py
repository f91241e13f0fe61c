"""RFC 4475 torture messages: each gets the outcome the RFC prescribes.

The messages are read bit-exact from ``<repo>/../shared/testdata/rfc4475/`` (never copied here); our own
torture messages live in ``data/`` next to this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.sip.sansio import Request, Response, SipParseError, make_response, parse_message

RFC4475_DIR = Path(__file__).resolve().parents[4] / ".." / "shared" / "testdata" / "rfc4475"
OWN_DIR = Path(__file__).resolve().parent / "data"

REQUEST, RESPONSE, DROP = "request", "response", None

# file stem -> expected outcome: REQUEST / RESPONSE (accepted), an int (the error response), DROP.
# Where RFC 4475 lets an element either reject or be liberal, the comment says which we chose.
RFC4475_EXPECTED: dict[str, object] = {
    "wsinv": REQUEST,  # §3.1.1.1 short tortuous INVITE
    "intmeth": REQUEST,  # §3.1.1.2 wide range of valid characters
    "esc01": REQUEST,  # §3.1.1.3 valid use of % escaping
    "escnull": REQUEST,  # §3.1.1.4 escaped NULLs in URIs
    "esc02": REQUEST,  # §3.1.1.5 % escapes that are not escapes
    "lwsdisp": REQUEST,  # §3.1.1.6 no LWS between display name and <
    "longreq": REQUEST,  # §3.1.1.7 long values in header fields
    "dblreq": REQUEST,  # §3.1.1.8 extra trailing octets in a datagram
    "semiuri": REQUEST,  # §3.1.1.9 semicolon-separated parameters in URI user part
    "transports": REQUEST,  # §3.1.1.10 varied and unknown transport types
    "mpart01": REQUEST,  # §3.1.1.11 multipart MIME message
    "unreason": RESPONSE,  # §3.1.1.12 unusual reason phrase
    "noreason": RESPONSE,  # §3.1.1.13 empty reason phrase
    "badinv01": 400,  # §3.1.2.1 extraneous header field separators
    "clerr": 400,  # §3.1.2.2 Content-Length larger than message
    "ncl": 400,  # §3.1.2.3 negative Content-Length
    "scalar02": 400,  # §3.1.2.4 request scalar fields with overlarge values
    "scalarlg": DROP,  # §3.1.2.5 response scalar fields with overlarge values
    "quotbal": 400,  # §3.1.2.6 unterminated quoted string in display name
    "ltgtruri": 400,  # §3.1.2.7 <> enclosing Request-URI
    "lwsruri": 400,  # §3.1.2.8 malformed Request-URI (embedded LWS)
    "lwsstart": 400,  # §3.1.2.9 multiple SP in request line (reject chosen)
    "trws": 400,  # §3.1.2.10 SP at end of request line (reject chosen)
    "escruri": 400,  # §3.1.2.11 escaped headers in Request-URI (reject chosen)
    "baddate": REQUEST,  # §3.1.2.12 invalid time zone in Date (liberal: Date is not used)
    "regbadct": 400,  # §3.1.2.13 name-addr URI not enclosed in <> (reject chosen)
    "badaspec": 400,  # §3.1.2.14 spaces within addr-spec (reject chosen)
    "baddn": 400,  # §3.1.2.15 non-token characters in display name
    "badvers": 505,  # §3.1.2.16 unknown protocol version
    "mismatch01": 400,  # §3.1.2.17 start line and CSeq method mismatch
    "mismatch02": 400,  # §3.1.2.18 unknown method with CSeq method mismatch
    "bigcode": DROP,  # §3.1.2.19 overlarge response code
    "badbranch": REQUEST,  # §3.1.3.1 missing transaction identifier (branch is only the cookie)
    "insuf": 400,  # §3.1.4.1 missing required header fields
    "unkscm": 416,  # §3.1.4.2 Request-URI with unknown scheme
    "novelsc": 416,  # §3.1.4.3 Request-URI with known but atypical scheme
    "unksm2": REQUEST,  # §3.1.4.4 unknown URI schemes in header fields (syntactically valid)
    "bext01": 420,  # §3.1.4.5 Require with unknown option tags
    "invut": REQUEST,  # §3.1.4.6 unknown Content-Type (the UA answers 415, the parser accepts)
    "regaut01": REQUEST,  # §3.1.4.7 unknown authorization scheme (the registrar answers 401)
    "multi01": 400,  # §3.1.4.8 multiple values in single-value header fields
    "mcl01": 400,  # §3.1.4.9 multiple Content-Length values
    "bcast": RESPONSE,  # §3.1.4.10 200 OK with broadcast Via (dropped later by Via matching)
    "zeromf": REQUEST,  # §3.1.4.11 Max-Forwards of zero (OPTIONS is still answered)
    "cparam01": REQUEST,  # §3.1.4.12 REGISTER with a contact parameter
    "cparam02": REQUEST,  # §3.1.4.13 REGISTER with a URL parameter
    "regescrt": REQUEST,  # §3.1.4.14 REGISTER with a URL escaped header
    "sdp01": REQUEST,  # §3.1.4.15 unacceptable Accept offering (the UA answers 406)
    "inv2543": REQUEST,  # §3.2.1 INVITE with RFC 2543 syntax
    "test": 400,  # not from RFC 4475: request line without a version, header line without a colon
}

OWN_EXPECTED: dict[str, object] = {
    "nul_in_header.dat": 400,
    "bad_utf8.dat": 400,
    "huge_cseq.dat": 400,
    "nonnumeric_cl.dat": 400,
    "cl_5000_digits.dat": 400,
    "contact_star_mixed.dat": 400,
    "ipv6_everywhere.dat": REQUEST,
    "folded_everything.dat": REQUEST,
    "response_missing_via.dat": DROP,
    "response_bad_version.dat": DROP,
    "max_forwards_256.dat": 400,
    "empty_via_element.dat": 400,
}


def _files(directory: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in directory.glob(pattern))


def test_table_covers_every_rfc4475_file() -> None:
    present = {Path(name).stem for name in _files(RFC4475_DIR, "*.dat")}
    assert present, f"no RFC 4475 messages found in {RFC4475_DIR}"
    assert present == set(RFC4475_EXPECTED)


def test_table_covers_every_own_file() -> None:
    assert set(_files(OWN_DIR, "*.dat")) == set(OWN_EXPECTED)


def _check(data: bytes, expected: object) -> None:
    if expected == REQUEST or expected == RESPONSE:
        message = parse_message(data)
        assert isinstance(message, Request if expected == REQUEST else Response)
        # What we accepted survives our own serializer.
        again = parse_message(message.to_bytes())
        assert again == message
        return
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    error = info.value
    assert error.status == expected
    if expected is not None and error.partial is not None:
        response = make_response(error.partial, error.status, headers=error.headers, to_tag="t1")
        # The answer echoes the peer's own Via/Call-ID/CSeq (even when they are odd) so it can match it.
        assert response.to_bytes().startswith(f"SIP/2.0 {expected} ".encode())
        assert response.call_id == error.partial.call_id
        assert response.headers.get_all("Via") == error.partial.headers.get_all("Via")
        assert response.headers.get("CSeq") == error.partial.headers.get("CSeq")


@pytest.mark.parametrize("name", sorted(RFC4475_EXPECTED))
def test_rfc4475_message(name: str) -> None:
    _check((RFC4475_DIR / f"{name}.dat").read_bytes(), RFC4475_EXPECTED[name])


@pytest.mark.parametrize("name", sorted(OWN_EXPECTED))
def test_own_torture_message(name: str) -> None:
    _check((OWN_DIR / name).read_bytes(), OWN_EXPECTED[name])


def test_rfc4475_errors_for_requests_can_be_answered() -> None:
    """Every rejected request that carries Via/CSeq/Call-ID gets a partial to answer with."""
    answerable = ["badinv01", "clerr", "ncl", "scalar02", "quotbal", "ltgtruri", "lwsruri", "lwsstart",
                  "badvers", "mismatch01", "unkscm", "bext01", "multi01", "mcl01", "baddn", "badaspec"]
    for name in answerable:
        with pytest.raises(SipParseError) as info:
            parse_message((RFC4475_DIR / f"{name}.dat").read_bytes())
        assert info.value.partial is not None, name


def test_bext01_lists_unsupported_extensions() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message((RFC4475_DIR / "bext01.dat").read_bytes())
    response = make_response(info.value.partial, 420, headers=info.value.headers)
    assert response.headers.get_all("Unsupported") == ["nothingSupportsThis", "nothingSupportsThisEither"]


def test_bext01_accepted_when_extension_supported() -> None:
    data = (RFC4475_DIR / "bext01.dat").read_bytes()
    message = parse_message(data, supported={"nothingsupportsthis", "nothingsupportsthiseither"})
    assert message.headers.get_all("Proxy-Require") == ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]


def test_wsinv_values() -> None:
    m = parse_message((RFC4475_DIR / "wsinv.dat").read_bytes())
    assert isinstance(m, Request)
    assert m.to.tag == "1918181833n"
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert m.cseq == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in m.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.contact[0].display_name == 'Quoted string ""'
    assert m.contact[0].params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("Subject") == ""
    assert len(m.body) == 150


def test_escapes_are_decoded() -> None:
    m = parse_message((RFC4475_DIR / "esc01.dat").read_bytes())
    assert m.uri.user == "sips:user@example.com"
    assert m.to.uri.user == "user"
    assert m.from_.uri.user == "I have spaces"
    contact = m.contact[0].uri
    assert contact.user == "caller" and contact.params == {"lr": None, "name": "value%41"}
    nul = parse_message((RFC4475_DIR / "escnull.dat").read_bytes())
    assert [c.uri.user for c in nul.contact] == ["\x00", "\x00\x00"]


def test_dblreq_only_first_message() -> None:
    m = parse_message((RFC4475_DIR / "dblreq.dat").read_bytes())
    assert m.method == "REGISTER" and m.body == b""


def test_esc02_unknown_header_is_not_contact() -> None:
    m = parse_message((RFC4475_DIR / "esc02.dat").read_bytes())
    assert m.method == "RE%47IST%45R"
    assert [str(c.uri) for c in m.contact] == ["sip:alias1@host1.example.com", "sip:alias3@host3.example.com"]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


# Over a stream the framer decides first: FRAMED (then the datagram outcome applies), WAIT (incomplete: the
# shell's idle timeout ends it) or CLOSE (no way to find the next message).
FRAMED, WAIT, CLOSE = "framed", "wait", "close"
STREAM_EXPECTED = {name: FRAMED for name in RFC4475_EXPECTED}
STREAM_EXPECTED.update({
    "baddn": WAIT,  # no empty line after the header fields (yet)
    "clerr": WAIT,  # Content-Length 9999: the rest of the body may still come
    "inv2543": CLOSE,  # no Content-Length on a stream
    "ncl": CLOSE,  # negative Content-Length
    "mcl01": CLOSE,  # two different Content-Lengths
    # The REGISTER (Content-Length 0) and the INVITE after it are framed; the INVITE's declared length
    # ends one octet early, leaving "C" + CRLF CRLF: a header section without Content-Length.
    "dblreq": CLOSE,
})


@pytest.mark.parametrize("name", sorted(STREAM_EXPECTED))
def test_rfc4475_message_over_a_stream(name: str) -> None:
    from plugins.sip.sansio import SipFramingError, StreamFramer

    data = (RFC4475_DIR / f"{name}.dat").read_bytes()
    framer = StreamFramer()
    expected = STREAM_EXPECTED[name]
    if expected == CLOSE:
        with pytest.raises(SipFramingError) as info:
            framer.feed(data)
        framed = info.value.messages
        if name == "dblreq":
            assert framed[0] == data[: data.index(b"\r\n\r\n") + 4] and len(framed) == 2
            assert parse_message(framed[0]).method == "REGISTER" and framed[1].startswith(b"INVITE ")
        else:
            assert framed == []
        return
    framed = framer.feed(data)
    if expected == WAIT:
        assert framed == [] and framer.buffered() == len(data)
        return
    assert framed == [data] and framer.buffered() == 0
    _check(framed[0], RFC4475_EXPECTED[name])
