"""The receive round's in-place relay fast path, on real loopback sockets, driven without trio.

The fast path must be invisible: every packet a phone receives, every counter and RTP statistic must
be what the general path (``RtpEndpoint._on_rtp``) produces for the same input. Two identical calls
are set up; one is fed through ``receive_round`` (fast path), the other packet by packet through the
general path, and what comes out of them is compared byte for byte.
"""

from __future__ import annotations

import select
import socket
import struct

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.media import MediaEngine, RtpPacket, rfc4733_packets
from engine.media._receive import MAX_DATAGRAM, ReceiveBuffer, receive_round


def phone(leg) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.connect(leg.local_address)
    sock.setblocking(False)
    return sock


def drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


class Call:
    """A bridged call with a caller and an agent phone; both legs latched (their sockets connected)."""

    def __init__(self, media: MediaEngine, *, agent_codec: str = "PCMU") -> None:
        self.media = media
        self.a = media.allocate(codec="PCMU")
        self.b = media.allocate(codec=agent_codec)
        self.bridge = media.bridge(self.a, self.b)
        self.caller, self.agent = phone(self.a), phone(self.b)
        self.general_path_packets = 0
        general = self.a._on_rtp

        def counting(data, address, now):  # an instance attribute: only this leg's general path
            self.general_path_packets += 1
            general(data, address, now)

        self.a._on_rtp = counting

    def same_sending_state_as(self, other: Call) -> None:
        """Deterministic headers: both agent legs send with the same SSRC, sequence and timestamp."""
        for mine, theirs in ((self.a.session, other.a.session), (self.b.session, other.b.session)):
            mine.ssrc, mine.sequence, mine.timestamp = theirs.ssrc, theirs.sequence, theirs.timestamp


def round_for(media: MediaEngine, *legs, now: float, buffer: ReceiveBuffer):
    return receive_round(media._by_fd, [(leg._rtp.fileno(), select.EPOLLIN) for leg in legs], now, buffer)


def session_state(session) -> dict:
    return {name: getattr(session, name) for name in session.__slots__ if name not in ("latched", "remote")}


def comparable(statistics: dict) -> dict:
    return {k: v for k, v in statistics.items() if k not in ("local", "remote")}


def test_fast_path_output_and_statistics_equal_the_general_path():
    media = MediaEngine(rtcp=False)
    fast, slow = Call(media), Call(media)
    fast.same_sending_state_as(slow)
    buffer = ReceiveBuffer()
    # latch every leg (first packets always take the general path: they carry the source address)
    first_agent = RtpPacket(0, 500, 9000, 0xA6E27, bytes(160)).build()
    for call in (fast, slow):
        call.agent.send(first_agent)
    round_for(media, fast.b, slow.b, now=0.0, buffer=buffer)
    first_caller = RtpPacket(0, 65500, 4_294_960_000, 0xCA11E8, bytes(160)).build()
    for call in (fast, slow):
        call.caller.send(first_caller)
    round_for(media, fast.a, slow.a, now=0.0, buffer=buffer)
    assert all(leg._connected for leg in (fast.a, fast.b, slow.a, slow.b))
    assert drain(fast.agent) == drain(slow.agent) != []

    packets = []
    seq, ts = 65500, 4_294_960_000  # both wrap around during the call
    for i in range(160):
        seq, ts = (seq + 1) & 0xFFFF, (ts + 160) & 0xFFFFFFFF
        packets.append(RtpPacket(0, seq, ts, 0xCA11E8, bytes([i]) * 160, marker=(i == 40)).build())
        if i == 60:
            packets.append(packets[-1])  # a duplicate
        if i == 70:
            packets.append(RtpPacket(0, (seq - 3) & 0xFFFF, ts - 480, 0xCA11E8, bytes(160)).build())  # late
        if i == 80:
            seq = (seq + 20000) & 0xFFFF  # a wild jump: the relay re-bases, the agent sees no break
        if i == 100:
            packets.append(RtpPacket(0, 7, 123, 0x5EC0, bytes(160)).build())  # another source appears
        if i == 110:
            for payload, marker in rfc4733_packets("5", 60):  # a digit in the middle
                packets.append(RtpPacket(101, seq, ts, 0xCA11E8, payload, marker=marker).build())
                seq = (seq + 1) & 0xFFFF
        if i == 120:
            packets.append(RtpPacket(0, seq, ts, 0xCA11E8, bytes(160), padding=4).build())
            seq = (seq + 1) & 0xFFFF
            packets.append(RtpPacket(0, seq, ts, 0xCA11E8, bytes(160), csrcs=(1, 2)).build())
    for i, packet in enumerate(packets):
        now = 0.02 * (i + 1) + (0.003 if i % 7 == 0 else 0.0)  # some arrival jitter
        fast.caller.send(packet)
        datagrams, receive_errors, send_errors = round_for(media, fast.a, now=now, buffer=buffer)
        assert (datagrams, receive_errors, send_errors) == (1, 0, 0)
        slow.caller.send(packet)
        data = slow.a._rtp.recv(MAX_DATAGRAM)  # (what the engine did before the fast path existed)
        slow.a._on_rtp(data, slow.a.session.latched, now)
        out_fast, out_slow = drain(fast.agent), drain(slow.agent)
        assert out_fast == out_slow, f"packet {i}"
        assert session_state(fast.a.session) == session_state(slow.a.session), f"packet {i}"
    assert comparable(fast.a.statistics()) == comparable(slow.a.statistics())
    assert comparable(fast.b.statistics()) == comparable(slow.b.statistics())
    assert session_state(fast.b.session) == session_state(slow.b.session)
    assert fast.b.statistics()["relayed"] > 150
    # and the fast path did carry the ordinary packets
    assert fast.general_path_packets < 20 < slow.general_path_packets


def test_fast_path_feeds_the_recording_the_same_audio(tmp_path):
    media = MediaEngine(rtcp=False)
    fast, slow = Call(media), Call(media)
    buffer = ReceiveBuffer()
    for call in (fast, slow):
        call.agent.send(RtpPacket(0, 1, 160, 77, bytes(160)).build())
        call.caller.send(RtpPacket(0, 9, 1440, 99, bytes(160)).build())
    round_for(media, fast.b, slow.b, fast.a, slow.a, now=0.0, buffer=buffer)
    assert all(leg._connected for leg in (fast.a, fast.b, slow.a, slow.b))
    recordings = [call.bridge.start_recording(tmp_path / f"{name}.wav") for call, name in ((fast, "fast"), (slow, "slow"))]
    for i in range(100):
        packet = RtpPacket(0, 10 + i, 1600 + 160 * i, 99, bytes((i + k) % 256 for k in range(160))).build()
        fast.caller.send(packet)
        round_for(media, fast.a, now=0.02 * i, buffer=buffer)
        slow.caller.send(packet)
        slow.a._on_rtp(slow.a._rtp.recv(MAX_DATAGRAM), slow.a.session.latched, 0.02 * i)
        media.tick(0.02 * i)
    fast.bridge.stop_recording()
    slow.bridge.stop_recording()
    assert all(r.closed and not r.failed for r in recordings)
    fast_audio, slow_audio = ((tmp_path / f"{n}.wav").read_bytes()[44:] for n in ("fast", "slow"))
    assert len(fast_audio) >= 100 * 160 * 4 * 0.9 and fast_audio == slow_audio
    assert fast.general_path_packets == 1  # the latching packet


def test_law_translation_and_hostile_packets_from_the_latched_peer():
    media = MediaEngine(rtcp=False)
    call = Call(media, agent_codec="PCMA")  # µ-law caller, A-law agent: translated, general path
    buffer = ReceiveBuffer()
    call.agent.send(RtpPacket(8, 1, 160, 77, bytes(160)).build())
    call.caller.send(RtpPacket(0, 1, 160, 55, bytes(160)).build())
    round_for(media, call.b, call.a, now=0.0, buffer=buffer)
    assert len(drain(call.agent)) == 1 and call.a._connected
    hostile = [
        b"",
        b"\x80\x00\x00",  # truncated header
        b"\x8f" + bytes(15),  # CSRC count 15 runs past the end
        b"\x90" + bytes(13),  # extension header truncated
        b"\xa0" + bytes(11) + b"\xff",  # padding longer than the packet
        b"\x40" + bytes(171),  # RTP version 1
        b"\x80" + bytes(MAX_DATAGRAM + 500),  # oversized: truncated to the buffer, relayed as what fits
    ]
    for packet in hostile:
        call.caller.send(packet)
        assert round_for(media, call.a, now=0.1, buffer=buffer) == (1, 0, 0)
    assert call.a.malformed == 6
    relayed = drain(call.agent)
    assert len(relayed) == 1 and len(relayed[0]) == MAX_DATAGRAM  # only the oversized one went through
    tone = bytes(range(0, 160))
    call.caller.send(RtpPacket(0, 2, 320, 55, tone).build())
    round_for(media, call.a, now=0.12, buffer=buffer)
    (out,) = drain(call.agent)
    parsed = RtpPacket.parse(out)
    assert parsed.payload_type == 8 and parsed.payload == tone.translate(call.b._translate)


async def test_a_flood_on_one_latched_call_is_served_in_bounded_rounds_while_others_flow(nursery):
    media = MediaEngine(rtcp=False, burst=32)
    await nursery.start(media.run)
    flooded, quiet = Call(media), Call(media)
    for call in (flooded, quiet):
        call.agent.send(RtpPacket(0, 1, 160, 7, bytes(160)).build())
        call.caller.send(RtpPacket(0, 1, 160, 8, bytes(160)).build())
    with trio.fail_after(10):
        while not (flooded.a._connected and quiet.a._connected and flooded.b._connected and quiet.b._connected):
            await trio.sleep(0.005)
    drain(flooded.agent)
    drain(quiet.agent)
    passes_before = media.passes
    # 5,000 valid packets as fast as the kernel takes them on one call (its socket buffer overflows)
    header = struct.Struct("!BBHII")
    for seq in range(2, 5002):
        try:
            flooded.caller.send(header.pack(0x80, 0, seq, 160 * seq, 8) + bytes(160))
        except BlockingIOError:
            pass
    for seq in range(2, 12):
        quiet.caller.send(header.pack(0x80, 0, seq, 160 * seq, 8) + bytes(160))
    got: list[bytes] = []
    with trio.fail_after(10):
        while len(got) < 10:
            await trio.sleep(0.005)
            got += drain(quiet.agent)
    assert [header.unpack_from(p)[2] for p in got] == [
        (header.unpack_from(got[0])[2] + i) & 0xFFFF for i in range(10)
    ]  # the quiet call's packets all came through, in order
    # the flooded call still works: a packet sent after the flood comes out (resent until the flood
    # has drained enough to let it into the socket buffer)
    sentinel = header.pack(0x80, 0, 5003, 160 * 5003, 8) + b"\x55" * 160
    seen = False
    with trio.fail_after(10):
        while not seen:
            flooded.caller.send(sentinel)
            await trio.sleep(0.01)
            seen = any(p.endswith(b"\x55" * 160) for p in drain(flooded.agent))
    # every wake-up stopped after at most `burst` datagrams (each socket one per epoll round), so the
    # flood was served in many short rounds with the other tasks running in between
    assert flooded.b.relayed > 100
    assert media.datagrams <= 32 * media.passes
    assert media.passes - passes_before >= flooded.b.relayed // 32


@pytest.fixture(scope="module")
def fuzz_call(tmp_path_factory):
    """One latched, relayed, recorded call shared by every fuzz example (sockets are slow to make)."""
    media = MediaEngine(rtcp=False)
    call = Call(media)
    buffer = ReceiveBuffer()
    call.agent.send(RtpPacket(0, 1, 160, 7, bytes(160)).build())
    call.caller.send(RtpPacket(0, 1, 160, 8, bytes(160)).build())
    round_for(media, call.b, call.a, now=0.0, buffer=buffer)
    drain(call.agent)
    call.bridge.start_recording(tmp_path_factory.mktemp("media-fuzz") / "fuzz.wav")
    yield media, call, buffer
    call.bridge.close()
    for sock in (call.caller, call.agent):
        sock.close()
    media.release(call.a)
    media.release(call.b)


# datagrams that mostly look like the fast path's packets (V=2, no flags, PT 0 or 101), so hypothesis
# explores its branches (sequence and source changes, sizes) as well as plain garbage
_rtpish = st.builds(
    lambda first, pt, seq, ts, ssrc, payload: bytes([first, pt]) + struct.pack("!HII", seq, ts, ssrc) + payload,
    st.sampled_from([0x80, 0x80, 0x80, 0xA0, 0x90, 0x81, 0x40]),
    st.sampled_from([0, 0, 0x80, 101, 8]),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.sampled_from([8, 8, 9]),
    st.binary(max_size=200),
)


_truncated = st.tuples(_rtpish, st.integers(0, 16)).map(lambda cut: cut[0][: cut[1]])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_rtpish, _truncated, st.binary(max_size=64)), min_size=1, max_size=30))
def test_any_datagrams_on_a_latched_relayed_recorded_call_are_handled(fuzz_call, datagrams):
    media, call, buffer = fuzz_call
    relayed_before = call.b.relayed
    for i, datagram in enumerate(datagrams):
        call.caller.send(datagram)
        assert round_for(media, call.a, now=1.0 + 0.02 * i, buffer=buffer) == (1, 0, 0)
        media.tick(1.0 + 0.02 * i)
    out = drain(call.agent)
    assert len(out) == call.b.relayed - relayed_before <= len(datagrams)
    for packet in out:  # whatever was relayed carries the agent leg's identity
        parsed = RtpPacket.parse(packet)
        assert parsed.ssrc == call.b.session.ssrc and parsed.payload_type in (0, 101)
