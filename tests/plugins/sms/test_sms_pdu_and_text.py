"""Pure SMS parts: the SMPP PDU codec and ESME session, GSM 7-bit/UCS-2 splitting and joining, opt-outs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.sms import (
    Cmd,
    EsmeSession,
    Pdu,
    PduReader,
    Reassembler,
    SmppPeerError,
    SmppUsageError,
    State,
    Status,
    decode,
    decode_payload,
    encode,
    gsm7_septets,
    is_opt_out,
    split,
    strip_udh,
)
from plugins.sms._pdu import RESPONSE_BIT, response_to
from plugins.sms._session import Bound, Closed, PeerViolation, Received, SubmitDone


def test_submit_sm_round_trips() -> None:
    pdu = Pdu(Cmd.SUBMIT_SM, 0, 42, {"source_addr": "900100", "destination_addr": "+34600111222",
                                      "data_coding": 8, "registered_delivery": 1, "short_message": b"\x00h\x00i"})
    again = decode(encode(pdu))
    assert again.sequence == 42
    assert again.params["destination_addr"] == "+34600111222"
    assert again.params["short_message"] == b"\x00h\x00i"


def test_header_is_big_endian_with_length_first() -> None:
    data = encode(Pdu(Cmd.ENQUIRE_LINK, 0, 7))
    assert data == bytes.fromhex("00000010" "00000015" "00000000" "00000007")


def test_encoding_refuses_overlong_fields() -> None:
    with pytest.raises(SmppUsageError):
        encode(Pdu(Cmd.SUBMIT_SM, 0, 1, {"destination_addr": "1" * 21}))
    with pytest.raises(SmppUsageError):
        encode(Pdu(Cmd.SUBMIT_SM, 0, 1, {"short_message": b"x" * 255}))


def test_unknown_command_gets_generic_nack_with_its_sequence() -> None:
    with pytest.raises(SmppPeerError) as info:
        decode(bytes.fromhex("00000010" "0000abcd" "00000000" "00000063"))
    reply = decode(info.value.reply)
    assert (reply.command_id, reply.status, reply.sequence) == (Cmd.GENERIC_NACK, Status.RINVCMDID, 0x63)


def test_truncated_submit_sm_gets_an_error_response() -> None:
    good = encode(Pdu(Cmd.SUBMIT_SM, 0, 5, {"short_message": b"hello"}))
    bad = (len(good) - 3).to_bytes(4, "big") + good[4:-3]
    with pytest.raises(SmppPeerError) as info:
        decode(bad)
    reply = decode(info.value.reply)
    assert reply.command_id == Cmd.SUBMIT_SM | RESPONSE_BIT and reply.status == Status.RINVMSGLEN


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_stream_yields_pdus_or_peer_errors_only(data: bytes) -> None:
    reader = PduReader(max_pdu=1024)
    reader.feed(data)
    for _ in range(100):
        try:
            if reader.next_pdu() is None:
                break
        except SmppPeerError:
            continue


def _bound_session() -> EsmeSession:
    session = EsmeSession(enquire_interval=30, response_timeout=10)
    session.bind("sys", "pw", now=0)
    bind = decode(session.data_to_send())
    assert bind.command_id == Cmd.BIND_TRANSCEIVER and bind.params["interface_version"] == 0x34
    events = session.receive_data(encode(response_to(bind, system_id="SMSC")), now=0.1)
    assert events == [Bound("SMSC")]
    return session


def test_session_submit_and_response() -> None:
    session = _bound_session()
    seq = session.submit({"destination_addr": "123", "short_message": b"hi"}, now=1)
    submit = decode(session.data_to_send())
    events = session.receive_data(encode(response_to(submit, message_id="abc")), now=1.1)
    assert events == [SubmitDone(seq, 0, "abc")]


def test_session_keeps_the_link_alive_and_declares_a_silent_peer_dead() -> None:
    session = _bound_session()
    assert session.next_timer() == pytest.approx(30.1)
    assert session.handle_timer(30.1) == []
    assert decode(session.data_to_send()).command_id == Cmd.ENQUIRE_LINK
    assert session.next_timer() == pytest.approx(40.1)  # the response deadline
    events = session.handle_timer(40.1)
    assert isinstance(events[0], Closed) and session.state is State.CLOSED


def test_session_answers_enquire_link_and_unbind_and_acks_deliver_only_when_told() -> None:
    session = _bound_session()
    session.receive_data(encode(Pdu(Cmd.ENQUIRE_LINK, 0, 9)), now=2)
    assert decode(session.data_to_send()).command_id == Cmd.ENQUIRE_LINK | RESPONSE_BIT
    deliver = Pdu(Cmd.DELIVER_SM, 0, 10, {"source_addr": "+346", "short_message": b"hola"})
    (event,) = session.receive_data(encode(deliver), now=3)
    assert isinstance(event, Received) and session.data_to_send() == b""  # nothing acked yet
    session.ack(event.pdu)
    assert decode(session.data_to_send()).command_id == Cmd.DELIVER_SM | RESPONSE_BIT
    events = session.receive_data(encode(Pdu(Cmd.UNBIND, 0, 11)), now=4)
    assert isinstance(events[0], Closed)
    assert decode(session.data_to_send()).command_id == Cmd.UNBIND | RESPONSE_BIT


def test_session_refuses_to_submit_unbound_and_reports_stray_responses() -> None:
    session = EsmeSession()
    with pytest.raises(RuntimeError):
        session.submit({}, now=0)
    session = _bound_session()
    (event,) = session.receive_data(encode(Pdu(Cmd.SUBMIT_SM | RESPONSE_BIT, 0, 999, {"message_id": "x"})), now=1)
    assert isinstance(event, PeerViolation)


def test_gsm7_is_chosen_when_every_character_fits() -> None:
    assert split("Hello @ 10€ {ok}", 1)[0].data_coding == 0
    assert split("Привет", 1)[0].data_coding == 8
    assert gsm7_septets("€") == [0x1B, 0x65]


@pytest.mark.parametrize(("text", "parts"), [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
                                               ("ж" * 70, 1), ("ж" * 71, 2), ("ж" * 134, 2), ("ж" * 135, 3)])
def test_part_counts_follow_the_gsm_limits(text: str, parts: int) -> None:
    assert len(split(text, 1)) == parts


def test_escape_pairs_and_surrogates_are_never_cut() -> None:
    for part in split("a" * 152 + "€" * 10, 3)[:1]:
        assert part.payload[-1] != 0x1B
    for part in split("😀" * 40, 3):
        body = strip_udh(part.payload)[1]
        body.decode("utf-16-be")  # would raise on a lone surrogate


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=700), st.integers(0, 255), st.randoms())
def test_split_then_join_in_any_order_gives_the_text_back(text: str, reference: int, rnd) -> None:
    parts = split(text, reference)
    if len(parts) == 1:
        assert decode_payload(parts[0].data_coding, parts[0].payload)[0] == text
        return
    order = list(range(len(parts)))
    rnd.shuffle(order)
    joined = []
    reassembler = Reassembler()
    for index in order:
        udh, body = strip_udh(parts[index].payload)
        assert udh is not None
        joined += reassembler.add("+346", udh, decode_payload(parts[index].data_coding, body)[0], str(index), now=0)
    assert len(joined) == 1 and joined[0].complete and joined[0].text == text


def test_missing_part_is_released_incomplete_after_the_timeout() -> None:
    parts = split("x" * 400, 9)
    reassembler = Reassembler(timeout=60)
    udh, body = strip_udh(parts[0].payload)
    assert reassembler.add("+346", udh, decode_payload(0, body)[0], "k1", now=0) == []
    assert reassembler.next_timer() == 60
    (joined,) = reassembler.handle_timer(60)
    assert not joined.complete and joined.text.startswith("x" * 153) and joined.keys == ("k1",)


def test_unsupported_coding_is_reported_not_guessed() -> None:
    text, problem = decode_payload(0x04, b"\x01\x02")
    assert "unsupported" in problem and "\x01" not in text


@pytest.mark.parametrize("text", ["STOP", "stop", " Stop! ", "BAJA", "baja.", "ARRÊT", "arret", "Opt-out"])
def test_opt_out_keywords(text: str) -> None:
    assert is_opt_out(text)


@pytest.mark.parametrize("text", ["stop sending the wrong bill", "bajar la tarifa", "", "STOPP"])
def test_sentences_are_not_opt_outs(text: str) -> None:
    assert not is_opt_out(text)
