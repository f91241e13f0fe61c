"""Caller ID: formatted lines, SDMF/MDMF bursts with checksums, hostile bursts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.voice_modem._callerid import (
    CallerId,
    CallerIdCollector,
    CallerIdError,
    decode_burst,
    encode_mdmf,
    encode_sdmf,
)

# Bellcore GR-30 style SDMF: 09/30 12:24, number 6095551212; checksum makes the byte sum 0 mod 256.
SDMF_EXAMPLE = bytes.fromhex("041230393330313232343630393535353132313251")


def test_sdmf_known_burst() -> None:
    assert sum(SDMF_EXAMPLE) % 256 == 0
    assert decode_burst(SDMF_EXAMPLE) == CallerId(number="6095551212", when="09301224")


def test_mdmf_with_name_and_private_number() -> None:
    burst = encode_mdmf(name="JOHN DOE", when="11251405", number_absent="private")
    assert decode_burst(burst) == CallerId(name="JOHN DOE", when="11251405", number_absent="private")
    assert decode_burst(encode_sdmf("P", "01010000")).number_absent == "private"


def test_bad_checksum_and_lengths_are_peer_errors() -> None:
    burst = bytearray(encode_mdmf(number="5551234"))
    burst[5] ^= 0x01
    with pytest.raises(CallerIdError):
        decode_burst(bytes(burst))
    with pytest.raises(CallerIdError):
        decode_burst(encode_mdmf(number="5551234")[:-3])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_any_burst_decodes_or_raises_the_peer_error(data: bytes) -> None:
    try:
        assert isinstance(decode_burst(data), CallerId)
    except CallerIdError:
        pass


def test_collector_formatted_and_unformatted() -> None:
    collector = CallerIdCollector()
    for line in ("DATE = 1125", "TIME = 1405", "NMBR = 5551234", "NAME = ANA LOPEZ"):
        collector.feed(line)
    assert collector.take() == CallerId(number="5551234", name="ANA LOPEZ", when="11251405")
    assert collector.take() is None
    collector.feed("MESG = " + encode_mdmf(number="600111222", name="BOB").hex().upper())
    assert collector.take() == CallerId(number="600111222", name="BOB", when="01010000")
    collector.feed("MESG = ZZ not hex")
    assert collector.take() is None and collector.errors == 1
    collector.feed("NMBR = O")
    assert collector.take() == CallerId(number_absent="unavailable")
