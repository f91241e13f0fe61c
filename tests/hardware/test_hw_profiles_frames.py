"""Dial strings, +VSM format choice, DTMF-board framings, G.711 tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware import _g711
from hardware.dtmf_board._frames import BoardDigit, FrameParser, encode_frames
from hardware.voice_modem._profiles import (
    PROFILES,
    InvalidDialString,
    check_dial_string,
    choose_voice_format,
    parse_vsm_list,
)


@pytest.mark.parametrize("good", ["5551234", "9,,5551234", "*72#", "0034911234567"])
def test_dial_strings_accepted(good: str) -> None:
    assert check_dial_string(good) == good


@pytest.mark.parametrize(
    "bad", ["", ",,", "555;ATZ", "555\r", "+34911", "555 1234", "1" * 41, "T555", "５５５"]
)
def test_dial_strings_refused(bad: str) -> None:
    with pytest.raises(InvalidDialString):
        check_dial_string(bad)


def test_vsm_list_parsing_prefers_the_profiles_order() -> None:
    lines = [
        '+VSM: 0,"SIGNED PCM",8,0,(7200,8000,11025),(0),(0)',
        '1,"UNSIGNED PCM",8,0,(8000),(0),(0)',
        '4,"G711U",8,0,(8000),(0),(0)',
        '5,"G711A",8,0,(7200-9600),(0),(0)',
        '7,"ADPCM",4,0,(8000),(0),(0)',
        '130,"LINEAR",16,0,(11025),(0),(0)',
        "garbage",
    ]
    formats = parse_vsm_list(lines)
    assert [f.fmt for f in formats] == ["linear8", "linear8", "ulaw", "alaw"]
    assert choose_voice_format(formats, PROFILES["generic"].preferred_formats).cml == 4
    assert choose_voice_format(formats, ("alaw",)).cml == 5
    assert choose_voice_format(parse_vsm_list(['7,"ADPCM",4,0,(8000),(0),(0)']), ("ulaw",)) is None


def test_line_capabilities_tell_the_dialer_there_is_no_answer_supervision() -> None:
    assert PROFILES["generic"].line.reports_answer is False
    assert PROFILES["usrobotics"].line.full_duplex is False


@pytest.mark.parametrize("framing", ["ascii", "ascii-lines", "mt8870-nibble"])
def test_every_digit_round_trips_in_every_framing_even_byte_by_byte(framing: str) -> None:
    parser = FrameParser(framing)
    wire = encode_frames(framing, "1234567890*#ABCD", channel=3)
    got = [d for byte in wire for d in parser.feed(bytes([byte]))]
    assert "".join(d.digit for d in got) == "1234567890*#ABCD"
    assert parser.noise == 0
    if framing != "ascii":
        assert {d.channel for d in got} == {3}


def test_noise_is_counted_not_decoded() -> None:
    parser = FrameParser("ascii")
    assert parser.feed(b"\xff\xfe5xyz\r\n") == [BoardDigit(0, "5")]
    assert parser.noise == 5
    lines = FrameParser("ascii-lines")
    assert lines.feed(b"2:5\r\nrubbish\r\n9:77\r\n" + b"x" * 500 + b"\r\n1:#\r\n") == [
        BoardDigit(2, "5"),
        BoardDigit(1, "#"),
    ]
    assert lines.noise > 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["ascii", "ascii-lines", "mt8870-nibble"]))
def test_any_board_bytes_parse_without_raising(data: bytes, framing: str) -> None:
    for item in FrameParser(framing).feed(data):
        assert item.digit in "0123456789*#ABCD"


@pytest.mark.parametrize("fmt", ["ulaw", "alaw", "linear16", "linear8"])
def test_g711_round_trip_error_is_within_the_codec_step(fmt: str) -> None:
    tone = (np.sin(np.arange(800) * 2 * np.pi * 440 / 8000) * 12000).astype(np.int16)
    back = _g711.decode(_g711.encode(tone, fmt), fmt).astype(np.int32)
    error = np.abs(back - tone)
    assert error.max() <= {"ulaw": 400, "alaw": 400, "linear16": 0, "linear8": 256}[fmt]


def test_g711_known_codes() -> None:
    assert _g711.decode(bytes([0xFF, 0x7F, 0x80, 0x00]), "ulaw").tolist() == [0, 0, 32124, -32124]
    assert _g711.decode(bytes([0xD5, 0x55, 0xAA, 0x2A]), "alaw").tolist() == [8, -8, 32256, -32256]
