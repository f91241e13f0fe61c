"""DTMF against real data: SIPp's RFC 2833 captures, tones made by sox, speech made by espeak-ng."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import trio
import trio.socket

from media_testkit import read_pcap_udp, require_tool, sipp_capture, sox
from engine.media import (
    DTMF_FREQUENCIES,
    Direction,
    DtmfMethod,
    InbandDtmfDetector,
    MediaEngine,
    Rfc4733Receiver,
    RtpPacket,
    dtmf_tone,
    load_wav_8k,
    rfc4733_packets,
)

CAPTURE_DIGITS = [(str(d), f"dtmf_2833_{d}.pcap") for d in range(10)] + [
    ("*", "dtmf_2833_star.pcap"),
    ("#", "dtmf_2833_pound.pcap"),
]


def captured_packets() -> list[tuple[str, list[bytes]]]:
    return [(digit, [data for _, data in read_pcap_udp(sipp_capture(name))]) for digit, name in CAPTURE_DIGITS]


def detect(samples: np.ndarray, chunk: int = 160, **options) -> list[str]:
    detector = InbandDtmfDetector(**options)
    events = []
    for i in range(0, len(samples), chunk):
        events += detector.feed(samples[i : i + chunk])
    events += detector.feed(np.zeros(800, dtype=np.int16))
    return [e.digit for e in events]


# -- RFC 4733 ---------------------------------------------------------------------------------------


def test_sipp_captures_decode_to_each_digit_exactly_once_in_order():
    receiver = Rfc4733Receiver()
    events = []
    now = 0.0
    for _, packets in captured_packets():
        for data in packets:
            packet = RtpPacket.parse(data)
            assert packet.payload_type == 101
            now += 0.02
            events += receiver.feed(packet.payload, packet.timestamp, now)
    assert [e.digit for e in events] == [d for d, _ in CAPTURE_DIGITS]
    assert all(e.direction is Direction.RECEIVED and 100 <= e.duration_ms <= 400 for e in events)
    assert receiver.duplicates >= 2 * len(CAPTURE_DIGITS)  # the redundant end packets were recognised


async def test_sipp_captures_through_a_real_udp_endpoint(nursery):
    media = MediaEngine()
    await nursery.start(media.run)
    seen = []
    leg = media.allocate(telephone_event=101, dtmf="auto", on_dtmf=lambda ep, ev: seen.append(ev))
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    for _, packets in captured_packets():
        for data in packets:
            await sock.sendto(data, leg.local_address)
    with trio.fail_after(10):
        while len(seen) < len(CAPTURE_DIGITS):
            await trio.sleep(0.01)
    # a repeat of the last capture's end packets must not produce a second '#'
    for data in captured_packets()[-1][1][-3:]:
        await sock.sendto(data, leg.local_address)
    with trio.fail_after(10):
        while leg.packets_in < sum(len(p) for _, p in captured_packets()) + 3:
            await trio.sleep(0.01)
    assert "".join(e.digit for e in seen) == "0123456789*#"


def test_lost_end_packets_still_report_the_digit_once():
    receiver = Rfc4733Receiver(lost_end_timeout=0.5)
    packets = rfc4733_packets("5", 200)
    events = []
    for i, (payload, _) in enumerate(packets[:-3]):  # every end packet lost
        events += receiver.feed(payload, 1000, i * 0.02)
    assert events == [] and receiver.next_timer() is not None
    assert receiver.handle_timer(0.3) == []
    events += receiver.handle_timer(10.0)
    assert [(e.digit, e.duration_ms) for e in events] == [("5", 180)]
    # a new digit whose predecessor never ended: the predecessor is reported first
    for payload, _ in rfc4733_packets("1", 60)[:2]:
        events += receiver.feed(payload, 5000, 11.0)
    events += receiver.feed(rfc4733_packets("2", 60)[0][0], 9000, 11.1)
    assert [e.digit for e in events] == ["5", "1"]


def test_generated_rfc4733_packets_follow_the_rfc():
    packets = rfc4733_packets("#", 100)
    assert packets[0][1] is True and not any(m for _, m in packets[1:])
    ends = [p for p, _ in packets if p[1] & 0x80]
    assert len(ends) == 3 and len(set(ends)) == 1
    durations = [int.from_bytes(p[2:4], "big") for p, _ in packets]
    assert durations == sorted(durations) and durations[-1] == 800
    assert all(p[0] == 11 for p, _ in packets)
    with pytest.raises(ValueError):
        rfc4733_packets("x")


def test_malformed_telephone_events_are_counted_not_raised():
    receiver = Rfc4733Receiver()
    assert receiver.feed(b"\x01", 1, 0.0) == []
    assert receiver.feed(b"", 1, 0.0) == []
    assert receiver.feed(b"\xff\x80\x00\x10", 2, 0.0) == []  # event 255 is not a digit
    assert receiver.malformed == 2


# -- in-band, with tones synthesised by sox ---------------------------------------------------------


def sox_dtmf(tmp_path: Path, digits: str, *, level_dbfs=-10.0, twist_db=0.0, offset=0.0, tone_ms=80,
             gap_ms=80, noise_snr_db: float | None = None) -> np.ndarray:
    """DTMF made by sox's synth (a second implementation, not ours): per-tone level, twist, offset, noise."""
    pieces = []
    for i, d in enumerate(digits):
        low, high = DTMF_FREQUENCIES[d]
        out = tmp_path / f"tone{i}.wav"
        row_gain = 10 ** (level_dbfs / 20)
        col_gain = row_gain * 10 ** (twist_db / 20)
        args = ["-n", "-r", "8000", "-b", "16", str(out), "synth", f"{tone_ms / 1000}",
                "sine", f"{low * (1 + offset):.2f}", "sine", f"{high * (1 + offset):.2f}"]
        remix = f"1v{row_gain:.5f},2v{col_gain:.5f}"
        sox(*args, "remix", remix)
        pieces.append(load_wav_8k(out))
        pieces.append(np.zeros(8 * gap_ms, dtype=np.int16))
    signal = np.concatenate([np.zeros(400, dtype=np.int16)] + pieces)
    if noise_snr_db is not None:
        noise_file = tmp_path / "noise.wav"
        sox("-n", "-r", "8000", "-b", "16", str(noise_file), "synth", f"{len(signal) / 8000:.3f}", "whitenoise",
            "vol", "0.5")
        noise = load_wav_8k(noise_file)[: len(signal)].astype(np.float64)
        tone_power = 2 * (32767 * 10 ** (level_dbfs / 20)) ** 2 / 2
        noise *= np.sqrt(tone_power / 10 ** (noise_snr_db / 10) / np.mean(noise**2))
        signal = np.clip(signal + noise, -32768, 32767).astype(np.int16)
    return signal


@pytest.mark.parametrize(
    "case, expect",
    [
        (dict(level_dbfs=-3), True),
        (dict(level_dbfs=-20), True),
        (dict(level_dbfs=-32), True),
        (dict(level_dbfs=-55), False),
        (dict(offset=0.015), True),
        (dict(offset=-0.015), True),
        (dict(offset=0.035), False),
        (dict(offset=-0.035), False),
        (dict(offset=0.05), False),
        (dict(twist_db=7.0), True),  # column louder: normal twist up to 8 dB
        (dict(twist_db=-3.0), True),  # row louder: reverse twist up to 4 dB
        (dict(twist_db=10.0), False),
        (dict(twist_db=-6.0), False),
        (dict(tone_ms=40), True),  # Q.24's shortest tone to accept
        (dict(tone_ms=20), False),
        (dict(noise_snr_db=20.0), True),
        (dict(noise_snr_db=20.0, offset=0.015, twist_db=4.0), True),
        (dict(noise_snr_db=20.0, offset=0.04), False),
    ],
    ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else str(v),
)
def test_inband_detection_follows_q24(tmp_path, case, expect):
    digits = "159#2A" if expect else "159#"
    signal = sox_dtmf(tmp_path, digits, **case)
    found = detect(signal)
    if expect:
        assert found == list(digits)
    else:
        assert found == []


def test_inband_detection_does_not_care_how_audio_is_chunked():
    signal = np.concatenate([np.concatenate([dtmf_tone(d, 70), np.zeros(480, np.int16)]) for d in "0123456789*#ABCD"])
    assert detect(signal, chunk=160) == list("0123456789*#ABCD")
    assert detect(signal, chunk=37) == list("0123456789*#ABCD")
    assert detect(signal, chunk=len(signal)) == list("0123456789*#ABCD")


def test_a_digit_held_long_is_one_digit_with_its_duration():
    detector = InbandDtmfDetector()
    events = detector.feed(np.concatenate([dtmf_tone("8", 1000), np.zeros(800, np.int16)]))
    assert [(e.digit, e.method) for e in events] == [("8", DtmfMethod.INBAND)]
    assert 950 <= events[0].duration_ms <= 1050


SENTENCES = [
    "Thank you for calling. Your call is important to us.",
    "Please hold while we connect you to the next available agent.",
    "Press one for sales, two for support, or stay on the line.",
    "The quick brown fox jumps over the lazy dog, nine times.",
    "Hello? Hello! Is anybody there? I can hear a beeping sound.",
    "Seven hundred and seventy, eight hundred fifty two, nine forty one.",
]
VOICES = ["en", "en-us", "es", "de", "fr", "en+f3"]


def test_speech_from_espeak_yields_no_digits(tmp_path):
    espeak = require_tool("espeak-ng", "espeak-ng")
    total = 0.0
    for v, voice in enumerate(VOICES):
        for s, sentence in enumerate(SENTENCES):
            out = tmp_path / f"speech-{v}-{s}.wav"
            pitch = str(20 + 15 * ((v + s) % 5))
            subprocess.run([espeak, "-v", voice, "-p", pitch, "-w", str(out), "--", sentence], check=True,
                           capture_output=True, timeout=60)
            speech = load_wav_8k(out)
            total += len(speech) / 8000
            assert detect(speech, chunk=len(speech)) == [], (voice, sentence)
    assert total > 60  # over a minute of speech


def test_dtmf_source_plays_digits_a_detector_hears():
    from engine.media import DtmfSource

    source = DtmfSource("A0#9", duration_ms=60, gap_ms=60)
    frames = []
    while (frame := source.read_frame()) is not None:
        assert len(frame) == 160
        frames.append(frame)
    assert len(frames) == 4 * 120 // 20
    assert detect(np.concatenate(frames)) == list("A0#9")
    with pytest.raises(ValueError):
        DtmfSource("5x")
