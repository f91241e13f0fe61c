"""SIPp as a real peer: it calls a tiny SIP answerer of this test, then plays its own RTP captures
(all twelve RFC 2833 digits, then seven seconds of G.711 A-law) into a MediaEngine leg that is bridged
to an agent leg and recorded. The SIP side here is the bare minimum to get SIPp to send media; the SIP
plugin has its own tests."""

from __future__ import annotations

import re
import socket
import subprocess
import wave
from pathlib import Path

import numpy as np
import trio
import trio.socket

from media_testkit import band_energy, read_pcap_udp, require_tool, sipp_capture
from engine.media import MediaEngine, RtpPacket, decode_alaw

DIGIT_FILES = [f"dtmf_2833_{d}.pcap" for d in range(10)] + ["dtmf_2833_star.pcap", "dtmf_2833_pound.pcap"]


def scenario() -> str:
    plays = "".join(
        f'<nop><action><exec play_pcap_audio="pcap/{name}"/></action></nop>\n<pause milliseconds="250"/>\n'
        for name in DIGIT_FILES
    )
    headers = (
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
        "From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]\n"
        "To: <sip:media@[remote_ip]:[remote_port]>[peer_tag_param]\n"
        "Call-ID: [call_id]\n"
    )
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="media test caller">
<send retrans="500"><![CDATA[
INVITE sip:media@[remote_ip]:[remote_port] SIP/2.0
{headers}CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [auto_media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
]]></send>
<recv response="200" rtd="true"/>
<send><![CDATA[
ACK sip:media@[remote_ip]:[remote_port] SIP/2.0
{headers}CSeq: 1 ACK
Content-Length: 0
]]></send>
{plays}<nop><action><exec play_pcap_audio="pcap/g711a.pcap"/></action></nop>
<pause milliseconds="7600"/>
<send retrans="500"><![CDATA[
BYE sip:media@[remote_ip]:[remote_port] SIP/2.0
{headers}CSeq: 2 BYE
Content-Length: 0
]]></send>
<recv response="200"/>
</scenario>
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answer(request: str, contact: tuple[str, int], *, sdp: str = "") -> bytes:
    """A 200 OK mirroring the request's dialog headers."""
    lines = request.split("\r\n")
    keep = [l for l in lines[1:] if re.match(r"(?i)(via|from|call-id|cseq):", l)]
    to = next(l for l in lines if re.match(r"(?i)to:", l))
    if ";tag=" not in to:
        to += ";tag=media-test"
    head = ["SIP/2.0 200 OK", *keep, to, f"Contact: <sip:media@{contact[0]}:{contact[1]}>"]
    if sdp:
        head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(sdp)}")
    return ("\r\n".join(head) + "\r\n\r\n" + sdp).encode()


async def test_sipp_plays_digits_and_g711a_into_a_recorded_bridge(nursery, tmp_path):
    sipp = require_tool("sipp", "sip-tester")
    sipp_capture("g711a.pcap")
    (tmp_path / "pcap").symlink_to(sipp_capture("g711a.pcap").parent)
    (tmp_path / "scenario.xml").write_text(scenario())

    media = MediaEngine()
    await nursery.start(media.run)
    digits = []
    caller = media.allocate(codec="PCMA", telephone_event=101,
                            on_dtmf=lambda ep, ev: digits.append((ev.digit, ev.duration_ms)))
    agent = media.allocate(codec="PCMU")
    agent_phone = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await agent_phone.bind(("127.0.0.1", 0))
    agent.set_remote(agent_phone.getsockname())
    bridge = media.bridge(caller, agent)
    recording = bridge.start_recording(tmp_path / "call.wav", stereo=True)

    sip = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sip.bind(("127.0.0.1", 0))
    sip_port = sip.getsockname()[1]
    relayed = []

    async def agent_side() -> None:
        while True:
            data, _ = await agent_phone.recvfrom(4096)
            relayed.append(RtpPacket.parse(data))

    async def sip_side(done: trio.Event) -> None:
        while True:
            data, peer = await sip.recvfrom(65535)
            text = data.decode("latin-1")
            if text.startswith("INVITE"):
                m = re.search(r"m=audio (\d+)", text)
                c = re.search(r"c=IN IP4 (\S+)", text)
                caller.set_remote((c.group(1), int(m.group(1))))
                host, port = caller.local_address
                sdp = (f"v=0\r\no=media 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
                       f"m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
                       f"a=rtpmap:101 telephone-event/8000\r\n")
                await sip.sendto(answer(text, sip.getsockname(), sdp=sdp), peer)
            elif text.startswith("BYE"):
                await sip.sendto(answer(text, sip.getsockname()), peer)
                done.set()

    bye = trio.Event()
    nursery.start_soon(agent_side)
    nursery.start_soon(sip_side, bye)
    cmd = [sipp, f"127.0.0.1:{sip_port}", "-sf", str(tmp_path / "scenario.xml"), "-m", "1", "-nostdin",
           "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(free_udp_port() & ~1),
           "-timeout", "60s", "-timeout_error"]
    with trio.fail_after(90):
        result = await trio.run_process(cmd, cwd=tmp_path, capture_stdout=True, capture_stderr=True, check=False)
        await bye.wait()
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    bridge.close()

    # every digit exactly once, in order, with its duration
    assert "".join(d for d, _ in digits) == "0123456789*#"
    assert all(100 <= ms <= 400 for _, ms in digits)
    # telephone-events were relayed to the agent too, as events (not audio)
    assert sum(1 for p in relayed if p.payload_type == 101) >= 12 * 7
    # the recording: caller on the left holds the capture's ~7 s of speech, with its spectrum
    with wave.open(str(recording.path)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    left = audio[:, 0].astype(np.int64)
    sent = np.concatenate([decode_alaw(RtpPacket.parse(d).payload)
                           for _, d in read_pcap_udp(sipp_capture("g711a.pcap"))]).astype(np.int64)
    loud = np.flatnonzero(np.abs(left) > 300)
    assert 6.0 < (loud[-1] - loud[0]) / 8000 < 7.5
    bands = [(80, 300), (300, 1000), (1000, 2000), (2000, 3400)]
    want = np.array([band_energy(sent, lo, hi) for lo, hi in bands])
    got = np.array([band_energy(left, lo, hi) for lo, hi in bands])
    assert np.allclose(got / got.sum(), want / want.sum(), atol=0.03)
    assert np.abs(audio[:, 1]).max() == 0  # nobody spoke on the agent side
