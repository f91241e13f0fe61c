"""The media engine on real UDP sockets on 127.0.0.1: relay, latching, recording, flood, conference."""

from __future__ import annotations

import functools
import struct
import wave
from pathlib import Path

import numpy as np
import trio
import trio.socket

from media_testkit import dominant_frequency
from engine.media import (
    DtmfMethod,
    MediaEngine,
    Role,
    RtpPacket,
    ToneSource,
    decode_ulaw,
    encode_alaw,
    encode_ulaw,
    parse_rtcp,
    RtcpSenderReport,
)


class Phone:
    """A bare RTP peer: a trio UDP socket that sends G.711 packets and collects what comes back."""

    def __init__(self, sock: trio.socket.SocketType, *, ssrc: int, pt: int = 0) -> None:
        self.sock = sock
        self.ssrc = ssrc
        self.pt = pt
        self.seq = 1000
        self.ts = 5000
        self.received: list[tuple[RtpPacket, tuple[str, int]]] = []

    @classmethod
    async def open(cls, ssrc: int, pt: int = 0) -> "Phone":
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await sock.bind(("127.0.0.1", 0))
        return cls(sock, ssrc=ssrc, pt=pt)

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    async def send(self, dest, payload: bytes, *, pt: int | None = None, marker=False, ts=None) -> None:
        packet = RtpPacket(self.pt if pt is None else pt, self.seq, self.ts if ts is None else ts, self.ssrc,
                           payload, marker=marker)
        self.seq = (self.seq + 1) & 0xFFFF
        if ts is None:
            self.ts += len(payload)
        await self.sock.sendto(packet.build(), dest)

    async def collect(self, count: int, timeout: float = 10.0) -> None:
        with trio.fail_after(timeout):
            while len(self.received) < count:
                data, addr = await self.sock.recvfrom(4096)
                self.received.append((RtpPacket.parse(data), addr))

    async def send_tone(self, dest, frequency: float, frames: int, *, encode=encode_ulaw, start: int = 0) -> None:
        for i in range(frames):
            t = (np.arange(160) + 160 * (start + i)) / 8000
            pcm = (8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
            await self.send(dest, encode(pcm))
            await trio.sleep(0.02)  # real-time pacing of a phone, not waiting for a condition


async def test_relay_between_two_legs_rewrites_headers_and_translates_law(nursery):
    media = MediaEngine()
    await nursery.start(media.run)
    caller_leg = media.allocate(codec="PCMU")
    agent_leg = media.allocate(codec="PCMA")
    caller = await Phone.open(0x1111, pt=0)
    agent = await Phone.open(0x2222, pt=8)
    caller_leg.set_remote(caller.address)
    agent_leg.set_remote(agent.address)
    media.bridge(caller_leg, agent_leg)

    tone = (8000 * np.sin(2 * np.pi * 1000 * np.arange(160) / 8000)).astype(np.int16)
    for _ in range(20):
        await caller.send(caller_leg.local_address, encode_ulaw(tone))
    await agent.collect(20)
    packets = [p for p, _ in agent.received]
    assert {p.payload_type for p in packets} == {8}  # A-law on the agent's leg
    assert {p.ssrc for p in packets} == {agent_leg.session.ssrc} != {0x1111}
    seqs = [p.sequence for p in packets]
    assert sorted((s - seqs[0]) & 0xFFFF for s in seqs) == list(range(20))
    assert packets[0].payload == encode_alaw(decode_ulaw(encode_ulaw(tone)))
    assert {addr for _, addr in agent.received} == {agent_leg.local_address}

    # and the other way
    for _ in range(5):
        await agent.send(agent_leg.local_address, encode_alaw(tone))
    await caller.collect(5)
    assert {p.payload_type for p, _ in caller.received} == {0}
    assert caller_leg.statistics()["relayed"] == 5


async def test_latching_ignores_a_third_address_until_remote_changes(nursery):
    media = MediaEngine()
    await nursery.start(media.run)
    a = media.allocate()
    b = media.allocate()
    caller = await Phone.open(1)
    agent = await Phone.open(2)
    intruder = await Phone.open(3)
    b.set_remote(agent.address)
    a.set_remote(("127.0.0.1", 9))  # what SDP said; NAT means media really comes from elsewhere
    media.bridge(a, b)
    payload = bytes(160)
    await caller.send(a.local_address, payload)
    await agent.collect(1)
    await agent.send(b.local_address, payload)
    await caller.collect(1)  # answered to the latched address, not to the SDP one
    for _ in range(10):
        await intruder.send(a.local_address, b"\x55" * 160)
    await caller.send(a.local_address, payload)
    # Packets on one socket are handled in order: once the caller's second packet is relayed, every
    # intruder packet before it has been dropped (by the kernel, since the latched socket is connected).
    await agent.collect(2)
    assert [p.payload for p, _ in agent.received] == [payload, payload]
    assert {p.ssrc for p, _ in agent.received} == {b.session.ssrc}

    # a re-INVITE moves the remote: the next source latches
    a.set_remote(intruder.address)
    await intruder.send(a.local_address, payload)
    await agent.collect(3)


async def test_bridged_call_recording_is_stereo_caller_left_agent_right(nursery, tmp_path):
    media = MediaEngine()
    await nursery.start(media.run)
    a = media.allocate()
    b = media.allocate()
    caller = await Phone.open(11)
    agent = await Phone.open(12)
    a.set_remote(caller.address)
    b.set_remote(agent.address)
    bridge = media.bridge(a, b)
    recording = bridge.start_recording(tmp_path / "call.wav", stereo=True)
    async with trio.open_nursery() as talk:
        talk.start_soon(caller.send_tone, a.local_address, 440.0, 75)
        talk.start_soon(agent.send_tone, b.local_address, 1250.0, 75)
    bridge.close()
    assert recording.closed and not recording.failed
    with wave.open(str(tmp_path / "call.wav")) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, 8000, 2)
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert len(audio) >= 8000  # ~1.5 s of call
    assert abs(dominant_frequency(audio[:, 0]) - 440) < 15
    assert abs(dominant_frequency(audio[:, 1]) - 1250) < 15


async def test_flood_and_garbage_on_one_port_do_not_stop_other_calls(nursery):
    media = MediaEngine()
    await nursery.start(media.run)
    a, b, c, d = (media.allocate() for _ in range(4))
    p1, p2, p3, p4 = [await Phone.open(i) for i in range(4)]
    for leg, phone in ((a, p1), (b, p2), (c, p3), (d, p4)):
        leg.set_remote(phone.address)
    media.bridge(a, b)
    media.bridge(c, d)
    await p1.send(a.local_address, bytes(160))  # latch the first call
    await p2.collect(1)
    flood = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await flood.bind(("127.0.0.1", 0))
    garbage = [b"", b"\x80", b"\x8f" + bytes(11), b"\x40" + bytes(20), b"\x90" + bytes(13), bytes(2000)]
    for i in range(3000):
        await flood.sendto(garbage[i % len(garbage)], a.local_address)
    for i in range(3000):
        await p1.sock.sendto(garbage[i % len(garbage)], a.local_address)
    for _ in range(10):
        await p3.send(c.local_address, bytes(160))
    await p4.collect(10)
    with trio.fail_after(10):
        while a.malformed == 0:
            await trio.sleep(0.01)
    await p1.send(a.local_address, bytes(160))
    await p2.collect(2)


async def test_rfc4733_digits_cross_the_relay_and_are_reported_once(nursery):
    media = MediaEngine()
    await nursery.start(media.run)
    seen = []
    a = media.allocate(on_dtmf=lambda ep, ev: seen.append((ep.name, ev)))
    b = media.allocate(telephone_event=96)
    caller = await Phone.open(21)
    agent = await Phone.open(22)
    a.set_remote(caller.address)
    b.set_remote(agent.address)
    media.bridge(a, b)
    from engine.media import rfc4733_packets

    for payload, marker in rfc4733_packets("7", 120):
        await caller.send(a.local_address, payload, pt=101, marker=marker, ts=777)
    await agent.collect(len(rfc4733_packets("7", 120)))
    assert {p.payload_type for p, _ in agent.received} == {96}
    assert [(name, ev.digit, ev.duration_ms, ev.direction.value) for name, ev in seen] == [
        (a.name, "7", 120, "Received")
    ]


async def test_endpoint_plays_tones_and_sends_dtmf_to_a_real_receiver(nursery):
    media = MediaEngine()
    await nursery.start(media.run)
    received = []
    listener = media.allocate(dtmf="rfc4733", on_dtmf=lambda ep, ev: received.append(ev))
    speaker = media.allocate(dtmf="rfc4733")
    speaker.set_remote(listener.local_address)
    listener.set_remote(speaker.local_address)
    speaker.send_dtmf("19#")
    with trio.fail_after(10):
        while len(received) < 3:
            await trio.sleep(0.02)
    assert [e.digit for e in received] == ["1", "9", "#"]

    inband_rx = []
    l2 = media.allocate(dtmf="inband", on_dtmf=lambda ep, ev: inband_rx.append(ev.digit))
    s2 = media.allocate(dtmf="inband")
    s2.set_remote(l2.local_address)
    s2.send_dtmf("42")
    with trio.fail_after(10):
        while len(inband_rx) < 2:
            await trio.sleep(0.02)
    assert inband_rx == ["4", "2"]


async def test_rtcp_sender_reports_reach_the_peer(nursery):
    media = MediaEngine(rtcp_interval=0.2)
    await nursery.start(media.run)
    leg = media.allocate()
    phone = await Phone.open(31)
    rtcp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await rtcp.bind(("127.0.0.1", 0))
    leg.set_remote(phone.address, rtcp=rtcp.getsockname())
    leg.play(ToneSource("US", "ringback"))
    for _ in range(5):
        await phone.send(leg.local_address, bytes(160))
    with trio.fail_after(10):
        while True:
            data, _ = await rtcp.recvfrom(2048)
            reports = [p for p in parse_rtcp(data) if isinstance(p, RtcpSenderReport)]
            if reports and reports[0].reports:
                break
    assert reports[0].ssrc == leg.session.ssrc
    assert reports[0].packet_count > 0
    assert reports[0].reports[0].ssrc == 31


async def test_conference_whisper_reaches_the_agent_not_the_caller(nursery):
    media = MediaEngine()
    await nursery.start(media.run)
    legs = {name: media.allocate(name=name) for name in ("caller", "agent", "supervisor")}
    phones = {name: await Phone.open(i + 40) for i, name in enumerate(legs)}
    for name, leg in legs.items():
        leg.set_remote(phones[name].address)
    room = media.conference()
    room.join_endpoint("caller", legs["caller"])
    room.join_endpoint("agent", legs["agent"])
    room.join_endpoint("supervisor", legs["supervisor"], Role.WHISPER, whisper_to="agent")
    await phones["supervisor"].send_tone(legs["supervisor"].local_address, 1500.0, 50)
    await phones["agent"].collect(40)
    await phones["caller"].collect(40)
    agent_heard = np.concatenate([decode_ulaw(p.payload) for p, _ in phones["agent"].received])
    caller_heard = np.concatenate([decode_ulaw(p.payload) for p, _ in phones["caller"].received])
    assert np.abs(agent_heard).max() > 2000 and abs(dominant_frequency(agent_heard) - 1500) < 20
    assert np.abs(caller_heard).max() < 100
    media.release(legs["supervisor"])  # the supervisor hangs up: the room goes on without them
    with trio.fail_after(10):
        while "supervisor" in room.conference:
            await trio.sleep(0.02)
    assert len(room.conference) == 2


async def test_sipp_g711a_capture_is_relayed_and_recorded_with_its_spectrum(nursery, tmp_path, autojump_clock):
    from media_testkit import band_energy, read_pcap_udp, sipp_capture
    from engine.media import decode_alaw

    captured = read_pcap_udp(sipp_capture("g711a.pcap"))
    media = MediaEngine()
    await nursery.start(media.run)
    a = media.allocate(codec="PCMA")
    b = media.allocate(codec="PCMA")
    caller = await Phone.open(51, pt=8)
    agent = await Phone.open(52, pt=8)
    a.set_remote(caller.address)
    b.set_remote(agent.address)
    bridge = media.bridge(a, b)
    recording = bridge.start_recording(tmp_path / "g711a.wav")
    start = captured[0][0]
    t0 = trio.current_time()
    async with trio.open_nursery() as listening:
        listening.start_soon(agent.collect, len(captured), 30.0)
        for stamp, data in captured:  # replay at the capture's own pace (virtual time)
            await trio.sleep_until(t0 + stamp - start)
            await caller.sock.sendto(data, a.local_address)
    bridge.close()  # writes out what is still queued
    sent = np.concatenate([decode_alaw(RtpPacket.parse(d).payload) for _, d in captured])
    relayed = np.concatenate([decode_alaw(p.payload) for p, _ in agent.received])
    assert np.array_equal(relayed, sent)  # same law on both legs: bit-exact
    with wave.open(str(recording.path)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    left = audio[:, 0].astype(np.int64)
    assert abs(len(left) / 8000 - 7.08) < 0.3
    assert np.abs(audio[:, 1]).max() == 0  # the agent said nothing
    bands = [(80, 300), (300, 1000), (1000, 2000), (2000, 3400)]
    want = np.array([band_energy(sent, lo, hi) for lo, hi in bands])
    got = np.array([band_energy(left, lo, hi) for lo, hi in bands])
    assert np.allclose(got / got.sum(), want / want.sum(), atol=0.02)
    assert 0.9 < np.sqrt((left**2).mean()) / np.sqrt((sent.astype(np.int64) ** 2).mean()) < 1.1


class Collect:
    """A Sink that keeps what it is given."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def write_frame(self, frame: np.ndarray) -> None:
        self.frames.append(frame)


async def test_terminated_endpoint_decodes_through_the_jitter_buffer_and_measures_level(nursery):
    media = MediaEngine()
    await nursery.start(media.run)
    leg = media.allocate(codec="PCMA")
    tap = Collect()
    leg.sinks.append(tap)
    phone = await Phone.open(61, pt=8)
    async with trio.open_nursery() as talking:
        talking.start_soon(functools.partial(phone.send_tone, leg.local_address, 700.0, 100, encode=encode_alaw))
        levels, talking = [], []
        with trio.fail_after(10):
            while len(tap.frames) < 25:
                await trio.sleep(0.02)
                stats = leg.statistics()
                levels.append(stats["level_dbfs"])
                talking.append(stats["talking"])
    # 8000 of 32767 is -12.2 dBFS (a concealed frame after a late packet reads lower, hence the max)
    assert any(talking) and -13 < max(levels) < -11
    audio = np.concatenate(tap.frames[5:25])
    assert abs(dominant_frequency(audio) - 700) < 15
    assert leg.vad.statistics().talk_spurts >= 1


async def test_info_dtmf_and_method_negotiation(nursery):
    media = MediaEngine()
    await nursery.start(media.run)
    events = []
    leg = media.allocate(telephone_event=None, dtmf="auto", on_dtmf=lambda ep, ev: events.append(ev))
    assert leg.effective_dtmf_method is DtmfMethod.INBAND  # no telephone-event in the SDP
    leg.negotiate(telephone_event=101)
    assert leg.effective_dtmf_method is DtmfMethod.RFC4733
    leg.negotiate(dtmf="info")
    leg.receive_info_dtmf("5", 160)
    assert [(e.digit, e.duration_ms, e.method) for e in events] == [("5", 160, DtmfMethod.INFO)]
    assert events[0].event_fields() == {"Digit": "5", "DurationMs": 160, "Direction": "Received"}
    from engine.media import MediaUsageError
    import pytest

    with pytest.raises(MediaUsageError):
        leg.receive_info_dtmf("x", 100)
    with pytest.raises(MediaUsageError):
        leg.negotiate(codec="G729")


async def test_port_range_pairs_and_exhaustion():
    import pytest
    from engine.media import MediaUsageError

    import socket as stdsocket

    probe = stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    base = probe.getsockname()[1] & ~1
    probe.close()
    low = 40000 + (base % 20000) & ~1
    media = MediaEngine(port_range=(low, low + 5))
    legs = []
    try:
        for _ in range(3):
            leg = media.allocate()
            legs.append(leg)
            port = leg.local_address[1]
            assert port % 2 == 0 and leg.rtcp_local_address[1] == port + 1
            assert low <= port <= low + 4
        with pytest.raises(MediaUsageError, match="no free RTP port"):
            media.allocate()
        media.release(legs[1])
        media.release(legs[1])  # idempotent
        assert media.allocate().local_address[1] == legs[1].local_address[1]
    finally:
        await media.aclose()
    with pytest.raises(MediaUsageError):
        MediaEngine(port_range=(80, 90))


def test_public_names_are_pinned():
    import engine.media as media

    assert set(media.__all__) == {name for name in dir(media) if not name.startswith("_")} - {
        "annotations"
    }
    for name in ("MediaEngine", "RtpEndpoint", "Bridge", "ConferenceRoom", "Source", "Sink", "DtmfEvent",
                 "PromptFormatError", "Recording", "apply_retention", "Resampler", "InbandDtmfDetector"):
        assert name in media.__all__


async def test_relayed_legs_send_rtcp_and_finish_digits_whose_end_was_lost(nursery):
    media = MediaEngine(rtcp_interval=0.3)
    await nursery.start(media.run)
    seen = []
    a = media.allocate(on_dtmf=lambda ep, ev: seen.append(ev.digit))
    b = media.allocate()
    caller = await Phone.open(71)
    agent = await Phone.open(72)
    rtcp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await rtcp.bind(("127.0.0.1", 0))
    a.set_remote(caller.address)
    b.set_remote(agent.address, rtcp=rtcp.getsockname())
    media.bridge(a, b)
    from engine.media import rfc4733_packets

    for payload, marker in rfc4733_packets("3", 200)[:-3]:  # the end packets never arrive
        await caller.send(a.local_address, payload, pt=101, marker=marker, ts=4242)
    with trio.fail_after(10):
        data, _ = await rtcp.recvfrom(2048)  # the relay-only leg still reports
        while not seen:
            await trio.sleep(0.05)
    assert seen == ["3"]
    assert any(isinstance(p, RtcpSenderReport) and p.ssrc == b.session.ssrc for p in parse_rtcp(data))


async def test_a_failing_dtmf_listener_does_not_break_the_call(nursery):
    media = MediaEngine()
    await nursery.start(media.run)

    def broken(endpoint, event):
        raise RuntimeError("listener bug")

    a = media.allocate(on_dtmf=broken)
    b = media.allocate()
    caller, agent = await Phone.open(81), await Phone.open(82)
    a.set_remote(caller.address)
    b.set_remote(agent.address)
    media.bridge(a, b)
    from engine.media import rfc4733_packets

    for payload, marker in rfc4733_packets("1", 60):
        await caller.send(a.local_address, payload, pt=101, marker=marker, ts=99)
    for _ in range(3):
        await caller.send(a.local_address, bytes(160))
    await agent.collect(len(rfc4733_packets("1", 60)) + 3)
    assert media.statistics()["callback_errors"] == 1


async def test_a_failing_source_or_sink_is_cut_off_and_the_clock_goes_on(nursery):
    media = MediaEngine()
    await nursery.start(media.run)

    class Broken:
        def read_frame(self):
            raise OSError("device unplugged")

        def write_frame(self, frame):
            raise OSError("device unplugged")

    bad = media.allocate()
    good = media.allocate()
    phone = await Phone.open(91)
    bad.set_remote(phone.address)
    bad.play(Broken())
    bad.sinks.append(Broken())
    good.set_remote(phone.address)
    good.play(ToneSource("EU", "dial"))
    await phone.collect(10)
    assert media.statistics()["callback_errors"] >= 1 and not bad.playing
    assert {p.ssrc for p, _ in phone.received} == {good.session.ssrc}


async def test_inband_digits_sent_on_a_relayed_leg_replace_its_audio_meanwhile(nursery):
    from engine.media import InbandDtmfDetector

    media = MediaEngine()
    await nursery.start(media.run)
    a = media.allocate()
    b = media.allocate(dtmf="inband", telephone_event=None)
    caller, agent = await Phone.open(101), await Phone.open(102)
    a.set_remote(caller.address)
    b.set_remote(agent.address)
    media.bridge(a, b)
    b.send_dtmf("58", duration_ms=80, gap_ms=60)
    async with trio.open_nursery() as talking:
        talking.start_soon(caller.send_tone, a.local_address, 300.0, 30)  # the caller keeps talking
        await agent.collect(14)
    detector = InbandDtmfDetector()
    audio = np.concatenate([decode_ulaw(p.payload) for p, _ in agent.received])
    events = detector.feed(audio) + detector.flush()
    assert [e.digit for e in events] == ["5", "8"]


async def test_voicemail_style_recording_of_one_terminated_leg(nursery, tmp_path):
    from engine.media import Recording

    media = MediaEngine()
    await nursery.start(media.run)
    leg = media.allocate()
    recording = Recording(tmp_path / "vm.wav", stereo=False)
    leg.sinks.append(recording)
    phone = await Phone.open(111)
    await phone.send_tone(leg.local_address, 900.0, 60)
    with trio.fail_after(10):
        while recording.duration < 1.0:
            await trio.sleep(0.02)
    leg.sinks.remove(recording)
    recording.close()
    with wave.open(str(tmp_path / "vm.wav")) as w:
        assert w.getnchannels() == 1
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert abs(dominant_frequency(audio) - 900) < 15


async def test_terminated_leg_plays_30ms_packets_at_the_right_speed(nursery, autojump_clock):
    """SIPp's g711a capture uses 30 ms packets: 7.08 s of audio must come out as 7.08 s, in pitch."""
    from media_testkit import read_pcap_udp, sipp_capture

    captured = read_pcap_udp(sipp_capture("g711a.pcap"))
    media = MediaEngine()
    await nursery.start(media.run)
    leg = media.allocate(codec="PCMA")
    tap = Collect()
    leg.sinks.append(tap)
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    t0, start = trio.current_time(), captured[0][0]
    for stamp, data in captured:
        await trio.sleep_until(t0 + stamp - start)
        await sock.sendto(data, leg.local_address)
    await trio.sleep(0.5)
    audio = np.concatenate(tap.frames)
    sent = np.concatenate([decode_alaw_bytes(RtpPacket.parse(d).payload) for _, d in captured])
    assert abs(len(audio) - len(sent)) <= 2 * 160 * 2  # within a couple of frames of padding
    # the same samples in the same order (the jitter buffer delays, it does not resample)
    offset = int(np.argmax(np.abs(audio) > 200)) - int(np.argmax(np.abs(sent) > 200))
    aligned = audio[max(offset, 0) : max(offset, 0) + len(sent) - 480]
    assert np.array_equal(aligned, sent[: len(aligned)])


def decode_alaw_bytes(payload: bytes) -> np.ndarray:
    from engine.media import decode_alaw

    return decode_alaw(payload)


async def test_wrong_payload_types_and_timestamp_jumps(nursery):
    media = MediaEngine()
    await nursery.start(media.run)
    a, b = media.allocate(), media.allocate()
    caller, agent = await Phone.open(121), await Phone.open(122)
    a.set_remote(caller.address)
    b.set_remote(agent.address)
    media.bridge(a, b)
    await caller.send(a.local_address, bytes(20), pt=18)  # G.729, never negotiated
    await caller.send(a.local_address, bytes(160))
    caller.ts += 8000 * 3600  # an hour's jump in timestamps (a new talk spurt source upstream)
    caller.seq = (caller.seq + 20000) & 0xFFFF  # and a wild sequence jump
    await caller.send(a.local_address, bytes(160))
    await caller.send(a.local_address, bytes(160))
    await agent.collect(3)
    assert a.wrong_payload_type == 1
    assert {p.payload_type for p, _ in agent.received} == {0}
    seqs = [p.sequence for p, _ in agent.received]
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == [0, 1, 2]  # the jump is hidden from the agent
    assert agent.received[1][0].marker  # ... and flagged as a new talk spurt


async def test_disk_fills_during_a_bridged_call_the_call_goes_on(nursery, small_disk):
    alarms = []
    media = MediaEngine(on_recording_alarm=lambda rec, err: alarms.append(err.errno))
    await nursery.start(media.run)
    a, b = media.allocate(), media.allocate()
    caller, agent = await Phone.open(131), await Phone.open(132)
    a.set_remote(caller.address)
    b.set_remote(agent.address)
    bridge = media.bridge(a, b)
    recording = bridge.start_recording(small_disk / "call.wav")  # 96 KiB: three seconds of stereo
    async with trio.open_nursery() as talking:
        talking.start_soon(agent.collect, 200, 30.0)
        await caller.send_tone(a.local_address, 440.0, 200)  # four seconds
    assert alarms == [28] and recording.failed and recording.closed
    assert media.statistics()["recording_alarms"] == 1
    assert len(agent.received) == 200  # every packet was still relayed
    with wave.open(str(recording.path)) as w:  # and what was written is a valid WAV
        assert w.getnchannels() == 2 and w.getnframes() > 8000
