"""V.253 DLE shielding: split escapes, literal DLEs, events, unknown codes, all-0x10 audio, debounce."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.voice_modem._dle import (
    DLE,
    ETX,
    AudioData,
    DleDecoder,
    DleEvent,
    DtmfDebouncer,
    EndOfStream,
    codes_in,
    shield,
)


def audio_of(outputs: list) -> bytes:
    return b"".join(o.data for o in outputs if isinstance(o, AudioData))


def feed_in_pieces(data: bytes, cuts: list[int]) -> list:
    decoder = DleDecoder()
    out: list = []
    last = 0
    for cut in [*sorted({c for c in cuts if 0 < c < len(data)}), len(data)]:
        out += decoder.feed(data[last:cut])
        last = cut
    return out


def test_events_and_audio_in_order() -> None:
    stream = b"\x80\x81" + bytes([DLE]) + b"5" + b"\x82" + bytes([DLE, DLE]) + b"\x83" + bytes([DLE]) + b"b"
    out = DleDecoder().feed(stream)
    assert out == [
        AudioData(b"\x80\x81"),
        DleEvent("dtmf", "5"),
        AudioData(b"\x82\x10\x83"),
        DleEvent("busy"),
    ]


def test_dle_split_across_two_reads_for_every_code() -> None:
    for code in b"0123456789*#ABCDbdsqlhHceouR":
        decoder = DleDecoder()
        first = decoder.feed(b"\x55" + bytes([DLE]))
        second = decoder.feed(bytes([code]) + b"\x66")
        assert audio_of(first + second) == b"\x55\x66"
        assert len([o for o in first + second if isinstance(o, DleEvent)]) == 1


def test_dle_dle_dle_etx_is_one_literal_then_end_with_the_rest_handed_back() -> None:
    out = DleDecoder().feed(b"\x01" + bytes([DLE, DLE, DLE, ETX]) + b"\r\nOK\r\n")
    assert audio_of(out) == b"\x01\x10"
    assert out[-1] == EndOfStream(b"\r\nOK\r\n")


def test_unknown_codes_are_counted_and_skipped_keeping_the_audio() -> None:
    decoder = DleDecoder()
    out = decoder.feed(b"\x01" + bytes([DLE]) + b"Z\x02" + bytes([DLE, 0xFE]) + b"\x03")
    assert audio_of(out) == b"\x01\x02\x03"
    assert decoder.unknown_codes == 2 and codes_in(out) == []


def test_all_0x10_audio_survives_shielding() -> None:
    audio = bytes([DLE]) * 4000
    wire = shield(audio)
    assert len(wire) == 8000
    assert audio_of(DleDecoder().feed(wire)) == audio


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 700), max_size=12))
def test_shielded_audio_round_trips_at_any_split_points(audio: bytes, cuts: list[int]) -> None:
    wire = shield(audio) + bytes([DLE, ETX]) + b"OK"
    out = feed_in_pieces(wire, cuts)
    assert audio_of(out) == audio
    assert [o for o in out if isinstance(o, DleEvent)] == []
    ends = [o for o in out if isinstance(o, EndOfStream)]
    # everything after <DLE><ETX> is handed back (in as many pieces as it was fed), nothing else
    assert ends and b"".join(e.rest for e in ends) == b"OK"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_modem_bytes_decode_without_raising(data: bytes) -> None:
    decoder = DleDecoder()
    out = decoder.feed(data) + decoder.feed(data)
    assert all(isinstance(o, (AudioData, DleEvent, EndOfStream)) for o in out)


def test_a_held_key_repeated_every_frame_is_one_digit_but_two_presses_are_two() -> None:
    debounce = DtmfDebouncer(hold=0.12)
    five = DleEvent("dtmf", "5")
    got = [debounce.feed(five, t) for t in (0.0, 0.02, 0.04, 0.06)]
    assert [g for g in got if g] == ["5"]
    assert debounce.feed(five, 0.5) == "5"  # a new press after a gap
    assert debounce.feed(DleEvent("dtmf", "6"), 0.52) == "6"
    debounce.feed(DleEvent("dtmf-end"), 0.53)
    assert debounce.feed(DleEvent("dtmf", "6"), 0.54) == "6"  # explicit end marker: new press
