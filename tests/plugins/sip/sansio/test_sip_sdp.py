"""SDP parsing/serializing and RFC 3264 offer/answer for G.711 + telephone-event, with hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sip_sansio_helpers import SDP_OFFER

from plugins.sip.sansio import (
    MediaSession,
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    is_hold_offer,
    parse_message,
)

RFC4475_DIR = Path(__file__).resolve().parents[4] / ".." / "shared" / "testdata" / "rfc4475"


def test_parse_typical_offer() -> None:
    sdp = SessionDescription.parse(SDP_OFFER)
    assert sdp.origin.username == "alice" and sdp.connection.address == "192.0.2.10"
    (audio,) = sdp.media
    assert (audio.media, audio.port, audio.formats) == ("audio", 49170, ["0", "8", "101"])
    assert audio.rtpmap()["101"] == ("telephone-event", 8000, 1)
    assert audio.fmtp() == {"101": "0-16"} and audio.ptime == 20 and audio.direction == "sendrecv"


def test_serialize_round_trip_keeps_unknown_lines() -> None:
    text = SDP_OFFER.replace(b"s=-\r\n", b"s=-\r\ni=info\r\nb=AS:64\r\n") + b"m=video 0 RTP/AVP 31\r\nb=AS:1\r\n"
    sdp = SessionDescription.parse(text)
    again = SessionDescription.parse(sdp.serialize())
    assert again == sdp
    assert b"b=AS:64" in sdp.serialize() and b"i=info" in sdp.serialize()


def test_rfc4475_bodies_parse() -> None:
    for name in ("wsinv", "esc01", "inv2543"):
        message = parse_message((RFC4475_DIR / f"{name}.dat").read_bytes())
        sdp = SessionDescription.parse(message.body)
        assert sdp.media[0].media == "audio"


@pytest.mark.parametrize("bad", [b"", b"x=0\r\n", b"v=0\r\ns=-\r\n", b"v=0\r\no=a b c\r\n",
                                 b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\n",
                                 b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n",
                                 b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ngarbage\r\n", b"\xff\xfe"])
def test_malformed_sdp_raises_parse_error(bad: bytes) -> None:
    with pytest.raises(SdpParseError):
        SessionDescription.parse(bad)


@given(st.binary(max_size=400))
def test_any_bytes_parse_or_raise_sdp_error(data: bytes) -> None:
    try:
        SessionDescription.parse(data)
    except SdpParseError:
        pass


def test_answer_picks_offerers_first_common_codec_and_telephone_event() -> None:
    ours = MediaSession("192.0.2.99", 40000, codecs=("PCMA", "PCMU"))
    answer, agreed = ours.answer(SDP_OFFER)
    assert agreed.codec.name == "PCMU" and agreed.codec.payload_type == 0
    assert agreed.telephone_event_pt == 101
    assert (agreed.remote_address, agreed.remote_port) == ("192.0.2.10", 49170)
    assert agreed.direction == "sendrecv" and not agreed.remote_hold
    (audio,) = answer.media
    assert audio.formats == ["0", "101"] and audio.port == 40000 and answer.connection.address == "192.0.2.99"


def test_dynamic_telephone_event_payload_type_is_echoed() -> None:
    offer = SDP_OFFER.replace(b"101", b"96")
    answer, agreed = MediaSession("192.0.2.99", 40000).answer(offer)
    assert agreed.telephone_event_pt == 96 and "96" in answer.media[0].formats


def test_only_pcma_offered() -> None:
    offer = SDP_OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 8")
    _, agreed = MediaSession("192.0.2.99", 40000).answer(offer)
    assert agreed.codec.name == "PCMA" and agreed.telephone_event_pt is None


def test_no_common_codec_is_488() -> None:
    offer = SDP_OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 18 101")
    with pytest.raises(SdpNegotiationError) as info:
        MediaSession("192.0.2.99", 40000).answer(offer)
    assert info.value.status == 488


def test_video_only_offer_is_488_and_extra_streams_rejected_with_port_0() -> None:
    with pytest.raises(SdpNegotiationError):
        MediaSession("192.0.2.99", 40000).answer(SDP_OFFER.replace(b"m=audio", b"m=video"))
    answer, _ = MediaSession("192.0.2.99", 40000).answer(SDP_OFFER + b"m=video 5000 RTP/AVP 31\r\n")
    assert [(m.media, m.port) for m in answer.media] == [("audio", 40000), ("video", 0)]


@pytest.mark.parametrize(
    ("offered", "answered", "held"),
    [("sendrecv", "sendrecv", False), ("sendonly", "recvonly", True), ("recvonly", "sendonly", False),
     ("inactive", "inactive", True)],
)
def test_answer_direction_mirrors_offer(offered: str, answered: str, held: bool) -> None:
    offer = SDP_OFFER.replace(b"a=sendrecv", f"a={offered}".encode())
    answer, agreed = MediaSession("192.0.2.99", 40000).answer(offer)
    assert answer.media[0].direction == answered and agreed.direction == answered
    assert agreed.remote_hold is held and is_hold_offer(SessionDescription.parse(offer)) is held


def test_old_style_hold_with_zero_address() -> None:
    offer = SDP_OFFER.replace(b"c=IN IP4 192.0.2.10", b"c=IN IP4 0.0.0.0")
    _, agreed = MediaSession("192.0.2.99", 40000).answer(offer)
    assert agreed.remote_hold and not agreed.we_send


def test_hold_then_unhold_reinvites_bump_version() -> None:
    us, peer = MediaSession("192.0.2.99", 40000), MediaSession("192.0.2.10", 49170)
    first = us.make_offer()
    answer, _ = peer.answer(first.serialize())
    assert us.accept_answer(answer.serialize()).direction == "sendrecv"
    hold = us.hold_offer()
    assert int(hold.origin.session_version) == int(first.origin.session_version) + 1
    answer, peer_view = peer.answer(hold.serialize())
    assert peer_view.remote_hold and answer.media[0].direction == "recvonly"
    ours = us.accept_answer(answer.serialize())
    assert ours.direction == "sendonly" and not ours.remote_hold
    resume = us.resume_offer()
    answer, peer_view = peer.answer(resume.serialize())
    assert not peer_view.remote_hold and us.accept_answer(answer.serialize()).direction == "sendrecv"
    same = us.resume_offer()
    assert same.origin.session_version == resume.origin.session_version  # unchanged content, same version


def test_answer_without_offer_is_an_error() -> None:
    with pytest.raises(SdpNegotiationError):
        MediaSession("192.0.2.99", 40000).accept_answer(SDP_OFFER)
