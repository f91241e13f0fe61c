"""RTP/RTCP parsing and building, session bookkeeping and the jitter buffer (sans-IO)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.media import (
    JitterBuffer,
    MalformedPacket,
    RtcpBye,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSenderReport,
    RtpPacket,
    RtpSession,
    parse_rtcp,
)
from engine.media._jitter import BUFFERING, LOST, PLAYED, conceal
from engine.media._rtp import build_rtcp_rr, build_rtcp_sdes_cname, build_rtcp_sr, rtp_header_length

import numpy as np


def test_rtp_round_trip_with_csrc_extension_and_padding():
    packet = RtpPacket(
        payload_type=8, sequence=65535, timestamp=0xFFFFFFFF, ssrc=0xDEADBEEF, payload=b"\xd5" * 160,
        marker=True, csrcs=(1, 2, 3), extension=(0xBEDE, b"\x10\x20\x30\x40"), padding=4,
    )
    data = packet.build()
    assert len(data) == 12 + 12 + 8 + 160 + 4
    assert RtpPacket.parse(data) == packet


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "truncated"),
        (b"\x80\x00\x00", "truncated"),
        (b"\x40" + bytes(15), "version"),
        (b"\x8f" + bytes(11) + bytes(20), "CSRC"),  # 15 CSRCs announced, 5 present
        (b"\x90" + bytes(11) + b"\x00\x00", "extension header truncated"),
        (b"\x90" + bytes(11) + b"\xbe\xde\x00\x09" + bytes(8), "extension runs past"),
        (b"\xa0" + bytes(11) + b"\x00\x00\x00\x00", "padding"),  # padding length 0
        (b"\xa0" + bytes(11) + b"\x00\x00\x00\xff", "padding"),  # more padding than packet
    ],
)
def test_broken_rtp_is_a_peer_error_with_a_reason(data, reason):
    with pytest.raises(MalformedPacket) as info:
        RtpPacket.parse(data)
    assert reason in str(info.value)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_datagram_parses_or_raises_malformed_packet(data):
    for parse in (RtpPacket.parse, parse_rtcp):
        try:
            parse(data)
        except MalformedPacket:
            pass


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 127), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=200), st.booleans(), st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    st.one_of(st.none(), st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=12).map(lambda b: b + bytes(-len(b) % 4)))),
    st.integers(0, 255),
)
def test_built_packets_parse_back(pt, seq, ts, ssrc, payload, marker, csrcs, ext, padding):
    packet = RtpPacket(pt, seq, ts, ssrc, payload, marker, tuple(csrcs), ext, padding)
    data = packet.build()
    assert rtp_header_length(data) == 12 + 4 * len(csrcs) + (4 + len(ext[1]) if ext else 0)
    assert RtpPacket.parse(data) == packet


def test_rtcp_compound_round_trip():
    block = RtcpReportBlock(ssrc=7, fraction_lost=25, cumulative_lost=-3, highest_sequence=70000, jitter=80,
                            last_sr=0x12345678, delay_since_last_sr=65536)
    sr = RtcpSenderReport(1, (3900000000 << 32) | 5, 160, 10, 1600, (block,))
    rr = RtcpReceiverReport(2, (block,))
    data = build_rtcp_sr(sr) + build_rtcp_sdes_cname(1, "x@127.0.0.1") + build_rtcp_rr(rr)
    data += struct.pack("!BBHI", 0x81, 203, 1, 9)
    parsed = parse_rtcp(data)
    assert parsed[0] == sr and parsed[2] == rr and parsed[3] == RtcpBye((9,))
    assert parsed[1].packet_type == 202


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\xc8",  # truncated header
        b"\x81\xc9\x00\x01" + bytes(4),  # RR claiming one block but only its SSRC present
        b"\x80\xc8\x00\x10" + bytes(12),  # length beyond the datagram
        b"\x80\x00\x00\x00",  # packet type 0 is not RTCP
        b"\x40\xc9\x00\x01" + bytes(4),  # wrong version
        b"\x83\xcb\x00\x01" + bytes(4),  # BYE with 3 sources, 1 present
    ],
)
def test_broken_rtcp_is_a_peer_error(data):
    with pytest.raises(MalformedPacket):
        parse_rtcp(data)


def test_session_counts_loss_across_sequence_wrap():
    session = RtpSession(ssrc=1)
    now = 0.0
    seqs = [65530 + i for i in range(6)] + [0, 1, 3, 4, 5]  # 2 is lost, the wrap happens in between
    ts = 0
    for seq in seqs:
        now += 0.02
        ts += 160
        session.on_receive(99, seq & 0xFFFF, ts, now)
    stats = session.receive_statistics()
    assert stats.expected == 12 and stats.received == 11 and stats.lost == 1
    assert session.extended_max_seq == 65536 + 5


def test_session_resynchronises_after_a_jump_and_ignores_duplicates():
    session = RtpSession(ssrc=1)
    for i in range(10):
        session.on_receive(5, 100 + i, 160 * i, 0.02 * i)
    assert session.on_receive(5, 105, 800, 0.3) is False  # duplicate/late
    assert session.on_receive(5, 30000, 0, 0.32) is False  # one wild jump: not trusted yet
    assert session.on_receive(5, 30001, 160, 0.34) is True  # two in a row: the source restarted
    assert session.receive_statistics().resyncs == 1
    session.on_receive(6, 7, 0, 0.5)  # a new SSRC restarts the statistics
    assert session.receive_statistics().ssrc == 6


def test_interarrival_jitter_follows_rfc3550():
    steady, jumpy = RtpSession(ssrc=1), RtpSession(ssrc=2)
    for i in range(200):
        steady.on_receive(9, i, 160 * i, 0.02 * i)
        jumpy.on_receive(9, i, 160 * i, 0.02 * i + (0.01 if i % 2 else 0.0))
    assert steady.receive_statistics().jitter_ms < 0.01
    assert 8.0 < jumpy.receive_statistics().jitter_ms < 11.0  # |D| = 10 ms each time


def test_session_report_carries_loss_and_our_counts():
    session = RtpSession(ssrc=77)
    for i in range(100):
        if i % 10 != 5:
            session.on_receive(3, i, 160 * i, 0.02 * i)
    assert isinstance(session.make_report(2.0), RtcpReceiverReport)
    session.next_header(160, 160)
    report = session.make_report(2.0, wallclock=1_700_000_000.5)
    assert isinstance(report, RtcpSenderReport) and report.packet_count == 1 and report.octet_count == 160
    assert report.ntp_timestamp >> 32 == 1_700_000_000 + 2208988800
    # the first report consumed the interval; here the interval is empty
    assert report.reports[0].cumulative_lost == 10


def test_latching_keeps_the_first_address_until_told():
    session = RtpSession(ssrc=1, remote=("192.0.2.1", 4000))
    assert session.send_address == ("192.0.2.1", 4000)
    assert session.accept_from(("198.51.100.9", 5000))
    assert session.send_address == ("198.51.100.9", 5000)
    assert not session.accept_from(("203.0.113.66", 6666))
    assert session.ignored_foreign == 1
    session.set_remote(("203.0.113.66", 6666))
    assert session.accept_from(("203.0.113.66", 6666))


def test_sequence_and_timestamp_wrap_on_send():
    session = RtpSession(ssrc=1)
    session.sequence, session.timestamp = 0xFFFF, 0xFFFFFFF0
    assert session.next_header(160, 160) == (0xFFFF, 0xFFFFFFF0)
    assert session.next_header(160, 160) == (0, 0x90)


# -- jitter buffer -----------------------------------------------------------------------------------


def test_jitter_buffer_reorders_and_reports_loss():
    jb = JitterBuffer(min_delay=0.06, max_delay=0.2)
    arrivals = [0, 2, 1, 3, 5, 6, 7, 8]  # 4 is lost, 1 and 2 swapped
    out = []
    for n, seq in enumerate(arrivals):  # one packet and one 20 ms tick at a time, as on a call
        jb.put(seq, bytes([seq]), 0.02 * n)
        out.append(jb.pop())
    out += [jb.pop() for _ in range(3)]
    played = [p[0] for s, p in out if s == PLAYED]
    assert played == [0, 1, 2, 3, 5, 6, 7, 8]
    assert [s for s, _ in out].count(LOST) == 1
    assert jb.statistics().lost == 1


def test_jitter_buffer_grows_with_jitter_and_stays_bounded():
    calm, rough = JitterBuffer(), JitterBuffer()
    rng = np.random.default_rng(3)
    for i in range(500):
        calm.put(i & 0xFFFF, b"x", 0.02 * i)
        rough.put(i & 0xFFFF, b"x", 0.02 * i + rng.uniform(0, 0.08))
        calm.pop()
        rough.pop()
    assert calm.statistics().target_ms == 20
    assert 60 <= rough.statistics().target_ms <= 200
    flood = JitterBuffer(max_delay=0.2)
    for i in range(10_000):
        flood.put(i & 0xFFFF, b"x", 0.0)
    assert flood.statistics().depth <= 20


def test_jitter_buffer_handles_wrap_late_packets_and_restarts():
    jb = JitterBuffer(min_delay=0.02)
    for i, seq in enumerate((65534, 65535, 0, 1)):
        jb.put(seq, bytes([i]), 0.02 * i)
    assert [jb.pop()[1] for _ in range(4)] == [b"\x00", b"\x01", b"\x02", b"\x03"]
    jb.put(65535, b"late", 0.1)
    assert jb.statistics().late == 1
    jb.put(30000, b"new", 0.12)  # the source jumped far ahead: start over there
    jb.put(30001, b"next", 0.14)
    assert jb.statistics().resets == 1
    assert jb.pop() == (PLAYED, b"new")
    assert jb.pop() == (PLAYED, b"next")
    assert jb.pop() == (BUFFERING, None)


def test_concealment_fades_then_goes_silent():
    frame = np.full(160, 8000, dtype=np.int16)
    assert conceal(frame, 1).max() == 4000
    assert conceal(frame, 2).max() == 2000
    assert conceal(frame, 4).max() == 0
    assert conceal(None, 1).max() == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=220), min_size=1, max_size=20), st.booleans())
def test_hostile_datagrams_never_escape_the_receive_path(datagrams, relayed):
    """Whatever arrives, the endpoint counts or uses it; nothing raises into the engine's tasks."""
    from engine.media import MediaEngine

    media = MediaEngine(rtcp=True)
    a, b = media.allocate(), media.allocate()
    try:
        b.set_remote(("127.0.0.1", 9))
        if relayed:
            media.bridge(a, b)
        source = ("127.0.0.1", 40000)
        for i, data in enumerate(datagrams):
            # also a valid-looking header on some, so the deeper paths (DTMF, jitter buffer) run
            if i % 3 == 0 and len(data) >= 2:
                data = bytes([0x80, data[1] & 0x7F | (101 if i % 2 else 0)]) + data[2:]
            a._on_rtp(data, source, 0.02 * i)
            a._on_rtcp(data, source, 0.02 * i)
        for t in range(5):
            media.tick(1.0 + 0.02 * t)
        stats = a.statistics()
        assert stats["packets_in"] + stats["malformed"] == len(datagrams)
    finally:
        media.release(a)
        media.release(b)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 0xFFFF),
    st.lists(st.tuples(st.integers(-3, 3), st.booleans(), st.floats(0, 0.15)), min_size=1, max_size=120),
)
def test_jitter_buffer_plays_in_order_once_whatever_the_network_does(start, events):
    """Reordering (by up to 3), loss and delay: what plays is in sequence order, never twice."""
    jb = JitterBuffer()
    arrivals = []
    for i, (shift, lost, delay) in enumerate(events):
        if not lost:
            arrivals.append((0.02 * i + delay, (start + i) & 0xFFFF, i))
        del shift
    arrivals.sort()
    played = []
    tick = 0.0
    pending = list(arrivals)
    for _ in range(len(events) + 20):
        while pending and pending[0][0] <= tick:
            _, seq, i = pending.pop(0)
            jb.put(seq, i.to_bytes(2, "big"), tick)
        status, payload = jb.pop()
        if status == PLAYED:
            played.append(int.from_bytes(payload, "big"))
        assert jb.statistics().depth <= 20
        tick += 0.02
    assert played == sorted(set(played))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=30), st.sampled_from([(48000, 8000), (8000, 48000), (44100, 8000), (16000, 8000)]))
def test_streaming_resampler_matches_one_shot_for_any_chunking(chunks, rates):
    from engine.media import Resampler, resample

    rng = np.random.default_rng(sum(chunks))
    audio = (rng.standard_normal(sum(chunks)) * 3000).astype(np.int16)
    stream = Resampler(*rates)
    out, at = [], 0
    for size in chunks:
        out.append(stream.process(audio[at : at + size]))
        at += size
    out.append(stream.flush())
    streamed = np.concatenate(out)
    whole = resample(audio, *rates)
    assert np.array_equal(streamed[: len(whole)], whole)


def test_protocol_and_dsp_modules_stay_sans_io():
    """DESIGN.md habit 1: these are fed bytes, samples and the time; they never do I/O themselves."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "engine" / "media"
    io_modules = {"trio", "socket", "asyncio", "select", "selectors", "subprocess", "os", "serial"}
    for name in ("_rtp", "_session", "_jitter", "_dtmf", "_inband", "_mixer", "_levels", "_g711", "_audio",
                 "_tones", "_errors"):
        tree = ast.parse((root / f"{name}.py").read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module and not node.level}
        assert not imported & io_modules, (name, imported & io_modules)
