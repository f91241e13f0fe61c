"""SMS PDUs (3GPP TS 23.040/23.038): known vectors, alphabets, concatenation, reports, hostile PDUs."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.gsm_modem._gsm7 import GSM7_BASIC, encode_gsm7, pack_septets
from hardware.gsm_modem._pdu import (
    ConcatInfo,
    Deliver,
    InvalidNumber,
    PduError,
    Reassembler,
    StatusReport,
    Submit,
    check_number,
    decode_pdu,
    encode_deliver,
    encode_status_report,
    encode_submit,
)

WHEN = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def test_hellohello_septet_packing() -> None:
    # The TS 23.038 packing example carried by every PDU tutorial.
    assert pack_septets(encode_gsm7("hellohello")).hex().upper() == "E8329BFD4697D9EC37"


def test_known_sms_deliver() -> None:
    pdu = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"
    message = decode_pdu(pdu)
    assert isinstance(message, Deliver)
    assert message.smsc == "+27381000015" and message.sender == "27838890001"
    assert message.text == "hellohello"
    assert message.timestamp == dt.datetime(
        1999, 3, 29, 15, 16, 59, tzinfo=dt.timezone(dt.timedelta(hours=2))
    )


def test_known_sms_submit_is_encoded_byte_for_byte() -> None:
    assert encode_submit("+46708251358", "hellohello") == [
        ("0011000B916407281553F80000AA0AE8329BFD4697D9EC37", 23)
    ]


def test_extension_table_characters_take_two_septets_and_round_trip() -> None:
    text = "Price: 5€ [x] {y} ~ | \\ ^"
    ((pdu, _length),) = encode_submit("+34600111222", text)
    submit = decode_pdu(pdu, outgoing=True)
    assert isinstance(submit, Submit) and submit.text == text and submit.recipient == "+34600111222"


def test_ucs2_with_a_character_outside_the_bmp() -> None:
    text = "Привет 😀"
    ((pdu, _),) = encode_submit("600111222", text)
    submit = decode_pdu(pdu, outgoing=True)
    assert submit.text == text and submit.recipient == "600111222"


def test_long_gsm7_text_splits_at_153_septets_without_breaking_an_escape() -> None:
    text = "a" * 152 + "€" + "b" * 200
    parts = encode_submit("+34600111222", text, concat_reference=9)
    decoded = [decode_pdu(p, outgoing=True) for p, _ in parts]
    assert [d.concat for d in decoded] == [ConcatInfo(9, 3, 1), ConcatInfo(9, 3, 2), ConcatInfo(9, 3, 3)]
    assert decoded[0].text == "a" * 152  # the euro (2 septets) would not fit: it starts part 2
    assert "".join(d.text for d in decoded) == text


def test_long_ucs2_text_never_splits_a_surrogate_pair() -> None:
    text = "x" * 66 + "😀" + "y" * 80
    decoded = [decode_pdu(p, outgoing=True) for p, _ in encode_submit("+1555", text)]
    assert decoded[0].text == "x" * 66
    assert "".join(d.text for d in decoded) == text


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            list(GSM7_BASIC.replace("\x1b", "")) + list("€[]{}~|\\^") + ["ñ", "Ж", "😀", "中"]
        ),
        min_size=0,
        max_size=500,
    ),
    st.integers(0, 255),
)
def test_any_text_round_trips_through_submit_and_deliver(text: str, reference: int) -> None:
    parts = encode_submit("+34600111222", text, concat_reference=reference, status_report=True)
    assert len(parts) <= 10
    for pdu, length in parts:
        assert len(pdu) // 2 - 1 == length <= 164
    assert "".join(decode_pdu(p, outgoing=True).text for p, _ in parts) == text
    reassembler = Reassembler()
    delivered = [
        reassembler.add(decode_pdu(p), i, 0.0)
        for i, p in enumerate(reversed(encode_deliver("+34600111222", text, WHEN)))
    ]
    assert delivered[-1] is not None and delivered[-1].text == text
    assert all(d is None for d in delivered[:-1])


def test_status_report() -> None:
    pdu, length = encode_status_report(42, "+34600111222", 0x00, WHEN)
    assert length == len(pdu) // 2 - 1  # what +CDS announces: the TPDU without the SMSC octet
    report = decode_pdu(pdu)
    assert isinstance(report, StatusReport)
    assert (report.reference, report.recipient, report.delivered) == (42, "+34600111222", True)
    assert decode_pdu(encode_status_report(1, "+1", 0x45, WHEN)[0]).failed


def test_reassembly_out_of_order_with_a_duplicate_and_a_gap_that_times_out() -> None:
    parts = [decode_pdu(p) for p in encode_deliver("+3461", "z" * 400, WHEN, concat_reference=5)]
    assert len(parts) == 3
    r = Reassembler(give_up_after=60)
    assert r.add(parts[2], "i3", 0.0) is None
    assert r.add(parts[2], "i3-copy", 1.0) is None and r.duplicates == 1
    assert r.add(parts[0], "i1", 2.0) is None
    assert r.next_timer() == 60.0
    assert r.handle_timer(59.0) == []
    (late,) = r.handle_timer(60.0)
    assert late.incomplete and late.text == parts[0].text + parts[2].text
    assert set(late.keys) == {"i1", "i3", "i3-copy"}


@pytest.mark.parametrize(
    "pdu",
    [
        "",
        "00",
        "0791",
        "07917283010010F5040BC872388809",
        "zz",
        "07917283010010F5040BC87238880900F10000993092516195800AFF",
        "0004" + "FF" * 20,
        "00" + "44" + "0B9164" + "00" * 3,
    ],
)
def test_invalid_pdus_raise_the_peer_error(pdu: str) -> None:
    with pytest.raises(PduError):
        decode_pdu(pdu)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=180))
def test_any_bytes_decode_or_raise_pdu_error(data: bytes) -> None:
    try:
        decode_pdu(data.hex())
    except PduError:
        pass


@pytest.mark.parametrize("number", ["", "+", "123;ATH", "+34 600", "12\r34", '"1"', "1" * 21, "٣٤"])
def test_numbers_that_could_inject_at_text_are_refused(number: str) -> None:
    with pytest.raises(InvalidNumber):
        check_number(number)
    with pytest.raises(InvalidNumber):
        encode_submit(number, "hi")
