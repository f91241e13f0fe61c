"""The DTMF method of a SIP leg (``[media] dtmf``, overridden per trunk or user) decides which digits
count: a SIPp caller sends in-band tones (made with sox) and then an RFC 2833 telephone-event, and the
engine reports only those of the configured method."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import trio

from sip_interop_helpers import SCENARIOS, describe, free_udp_port, run_sipp

pytestmark = pytest.mark.interop

RFC2833_SEVEN = "/usr/share/sip-tester/dtmf_2833_7.pcap"
TONES = {"2": (697, 1336), "5": (770, 1336)}

FLOW = """
[[routes]]
match = "900"
flow = "digits"

[[flows]]
name = "digits"
start = "collect"
[flows.nodes.collect]
type = "collect"
text = "Key in your number."
var = "typed"
max = 16
terminator = ""
timeout = 30
next = "bye"
[flows.nodes.bye]
type = "hangup"
"""


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_ulaw_pcap(path: Path, samples: np.ndarray) -> float:
    """``samples`` (8 kHz int16) as a capture of G.711 mu-law RTP, 20 ms a packet, that SIPp's
    ``play_pcap_audio`` replays. Returns its length in seconds."""
    from engine.media import encode_ulaw

    payload = encode_ulaw(samples[: len(samples) // 160 * 160])
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    packets = len(payload) // 160
    for index in range(packets):
        rtp = struct.pack("!BBHII", 0x80, 0x80 if index == 0 else 0, index, index * 160, 0x1D7F)
        rtp += bytes(payload[index * 160:(index + 1) * 160])
        udp = struct.pack("!HHHH", 40000, 6000, 8 + len(rtp), 0) + rtp
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), index, 0, 64, 17, 0,
                                   socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1")))
        ip[10:12] = struct.pack("!H", _checksum(bytes(ip)))
        frame = b"\x00" * 12 + b"\x08\x00" + bytes(ip) + udp
        micros = index * 20000
        out += struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return packets * 0.02


def inband_digits_pcap(directory: Path, digits: str) -> tuple[Path, float]:
    """Digits as dual tones made by sox (120 ms each, -16 dBFS per tone, 150 ms apart)."""
    from engine.media import load_wav_8k

    pieces = [np.zeros(1600, dtype=np.int16)]
    for digit in digits:
        low, high = TONES[digit]
        wav = directory / f"tone-{digit}.wav"
        try:
            subprocess.run(["sox", "-n", "-r", "8000", "-b", "16", str(wav), "synth", "0.12", "sine", str(low),
                            "sine", str(high), "remix", "1v0.16,2v0.16"], check=True, capture_output=True, timeout=60)
        except FileNotFoundError:
            pytest.fail("sox is needed for this test: apt-get install -y sox")
        pieces += [load_wav_8k(wav), np.zeros(1200, dtype=np.int16)]
    pieces.append(np.zeros(1600, dtype=np.int16))
    path = directory / "inband.pcap"
    return path, write_ulaw_pcap(path, np.concatenate(pieces))


def scenario(directory: Path, inband: Path, seconds: float) -> Path:
    """caller_rfc2833.xml, but the caller first keys digits in-band, then sends the RFC 2833 digit 7."""
    text = (SCENARIOS / "caller_rfc2833.xml").read_text()
    plays = (
        f'<nop><action><exec play_pcap_audio="{inband}"/></action></nop>\n'
        f'  <pause milliseconds="{int(seconds * 1000) + 200}"/>\n'
        f'  <nop><action><exec play_pcap_audio="{RFC2833_SEVEN}"/></action></nop>'
    )
    old = f'<nop>\n    <action>\n      <exec play_pcap_audio="{RFC2833_SEVEN}"/>\n    </action>\n  </nop>'
    assert old in text
    path = directory / "caller_inband_then_rfc2833.xml"
    path.write_text(text.replace(old, plays))
    return path


@pytest.mark.parametrize(
    ("media_dtmf", "trunk_dtmf", "expected"),
    [
        ("inband", "", "25"),  # the site default: tones in the audio only, the telephone-event is ignored
        ("inband", "rfc4733", "7"),  # the trunk overrides it: telephone-events only, tones are just audio
        ("info", "", ""),  # SIP INFO only: neither tones nor telephone-events count
    ],
)
async def test_a_leg_hears_digits_only_by_its_dtmf_method(sip_engine, tmp_path, media_dtmf, trunk_dtmf, expected) -> None:
    if not os.path.exists(RFC2833_SEVEN):
        pytest.fail("SIPp's DTMF captures are needed: apt-get install -y sip-tester")
    inband, seconds = inband_digits_pcap(tmp_path, "25")
    xml = scenario(tmp_path, inband, seconds)
    caller_port = free_udp_port()
    trunk = f'\n[[sip.trunks]]\nname = "sipp"\nserver = "sip:127.0.0.1:{caller_port}"\n'
    if trunk_dtmf:
        trunk += f'dtmf = "{trunk_dtmf}"\n'
    async with sip_engine(FLOW + f'\n[media]\ndtmf = "{media_dtmf}"\n', sip=trunk) as (engine, channel):
        target = f"127.0.0.1:{channel.bound[0].port}"
        heard: list[str] = []
        async with engine.bus.subscribe("dtmf") as events:
            result = await run_sipp([target, "-sf", str(xml), "-s", "900", "-i", "127.0.0.1", "-p", str(caller_port), "-m", "1"])
            assert result.returncode == 0, describe(result)
            # The call is over (SIPp sent BYE after the last digit); every digit was published by then.
            with trio.fail_after(10):
                while engine.media.statistics()["endpoints"]:
                    await trio.sleep(0.02)
            while True:
                try:
                    event = events.receive_nowait()
                except trio.WouldBlock:
                    break
                if event.event == "DTMFEnd" and event.fields.get("Direction") == "Received":
                    heard.append(event.fields["Digit"])
        assert "".join(heard) == expected


def test_the_leg_method_comes_from_the_trunk_then_the_user_then_media() -> None:
    from types import SimpleNamespace

    from plugins.sip._media import dtmf_method
    from plugins.sip._settings import SipSettings, SipTrunkSettings, SipUserSettings

    settings = SipSettings(
        users=[SipUserSettings(name="1001", password="x", dtmf="info"), SipUserSettings(name="1002", password="y")],
        trunks=[SipTrunkSettings(name="itsp", server="sip:203.0.113.5", dtmf="inband"),
                SipTrunkSettings(name="other", server="sip:203.0.113.6")],
    )
    engine = SimpleNamespace(config=SimpleNamespace(media=SimpleNamespace(dtmf="rfc4733")))
    channel = SimpleNamespace(settings=settings, context=SimpleNamespace(engine=engine))
    assert dtmf_method(channel, user="1001") == "info"
    assert dtmf_method(channel, user="1002") == "rfc4733"  # no key of its own: [media] dtmf
    assert dtmf_method(channel, trunk="itsp") == "inband"
    assert dtmf_method(channel, trunk="other", user="1001") == "info"
    assert dtmf_method(channel, trunk="itsp", user="1001") == "inband"
    assert dtmf_method(channel) == "rfc4733"


async def test_an_unknown_dtmf_method_is_refused_when_the_config_loads(sip_engine) -> None:
    from engine._errors import ConfigError

    with pytest.raises(ConfigError, match=r"sip\.users\[0\]\.dtmf.*expected one of rfc4733"):
        async with sip_engine(sip='[[sip.users]]\nname = "1001"\npassword = "x"\ndtmf = "tones"\n'):
            pass
