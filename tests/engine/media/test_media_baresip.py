"""baresip on both ends: a caller and an agent, each playing a known tone file with aufile, bridged
through two MediaEngine legs (A-law on the caller's, µ-law on the agent's) and recorded. Each side's
sndfile dump must hold the other side's tone, and the recording the caller left and the agent right.
The SIP here is the least a test needs to introduce two baresips to the engine's legs."""

from __future__ import annotations

import re
import socket
import subprocess
import uuid
import wave
from pathlib import Path

import numpy as np
import trio
import trio.socket

from media_testkit import dominant_frequency, require_tool, sox
from engine.media import MediaEngine

CALLER_HZ, AGENT_HZ = 500.0, 1300.0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def baresip_dir(root: Path, who: str, port: int, codec: str, tone: Path, auto_answer: bool) -> Path:
    home = root / who
    (home / "dumps").mkdir(parents=True)
    (home / "config").write_text(
        "poll_method epoll\n"
        f"sip_listen 127.0.0.1:{port}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule alsa.so\nmodule sndfile.so\nmodule menu.so\n"
        "module_app account.so\n"
        "audio_player alsa,null\naudio_alert alsa,null\n"
        f"audio_source aufile,{tone}\n"
        f"snd_path {home / 'dumps'}\n"
    )
    answer = ";answermode=auto" if auto_answer else ""
    (home / "accounts").write_text(f"<sip:{who}@127.0.0.1:{port}>;regint=0{answer};audio_codecs={codec}\n")
    return home


def sdp_for(address: tuple[str, int], pt: int, name: str) -> str:
    host, port = address
    return (f"v=0\r\no=engine 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\na=ptime:20\r\n")


def media_address(message: str) -> tuple[str, int]:
    host = re.search(r"c=IN IP4 (\S+)", message).group(1)
    port = int(re.search(r"m=audio (\d+)", message).group(1))
    return host, port


def header(message: str, name: str) -> str:
    return re.search(rf"(?im)^{name}:\s*(.*)$", message).group(1).strip()


def response_to(request: str, code: str, contact: tuple[str, int], *, sdp: str = "", to_tag: str = "engine") -> bytes:
    lines = request.split("\r\n")
    keep = [l for l in lines[1:] if re.match(r"(?i)(via|from|call-id|cseq):", l)]
    to = next(l for l in lines if re.match(r"(?i)to:", l))
    if ";tag=" not in to:
        to += f";tag={to_tag}"
    head = [f"SIP/2.0 {code}", *keep, to, f"Contact: <sip:engine@{contact[0]}:{contact[1]}>"]
    if sdp:
        head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(sdp)}")
    return ("\r\n".join(head) + "\r\n\r\n" + sdp).encode()


def read_mono(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        return data.reshape(-1, w.getnchannels())[:, 0]


async def test_two_baresips_hear_each_other_through_the_engine_and_are_recorded(nursery, tmp_path):
    baresip = require_tool("baresip", "baresip-core")
    for hz, name in ((CALLER_HZ, "caller"), (AGENT_HZ, "agent")):
        sox("-n", "-r", "8000", "-b", "16", "-c", "1", str(tmp_path / f"{name}.wav"), "synth", "10", "sine", str(hz),
            "vol", "0.3")

    media = MediaEngine()
    await nursery.start(media.run)
    caller_leg = media.allocate(codec="PCMA", telephone_event=None)
    agent_leg = media.allocate(codec="PCMU", telephone_event=None)

    sip = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sip.bind(("127.0.0.1", 0))
    engine_sip = sip.getsockname()
    agent_port, caller_port = free_udp_port(), free_udp_port()
    agent_home = baresip_dir(tmp_path, "agent", agent_port, "PCMU", tmp_path / "agent.wav", True)
    caller_home = baresip_dir(tmp_path, "caller", caller_port, "PCMA", tmp_path / "caller.wav", False)
    state: dict = {"recording": None}
    finished = trio.Event()

    async def signalling() -> None:
        call_id = f"{uuid.uuid4()}@engine"
        caller_invite = None
        while True:
            data, peer = await sip.recvfrom(65535)
            text = data.decode("latin-1")
            if text.startswith("INVITE") and caller_invite is None:
                caller_invite, caller_peer = text, peer
                caller_leg.set_remote(media_address(text))
                await sip.sendto(response_to(text, "100 Trying", engine_sip), peer)
                body = sdp_for(agent_leg.local_address, 0, "PCMU")
                invite = (
                    f"INVITE sip:agent@127.0.0.1:{agent_port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {engine_sip[0]}:{engine_sip[1]};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                    f"From: <sip:engine@127.0.0.1>;tag=engine1\r\nTo: <sip:agent@127.0.0.1>\r\n"
                    f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:engine@{engine_sip[0]}:{engine_sip[1]}>\r\n"
                    f"Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
                )
                await sip.sendto(invite.encode(), ("127.0.0.1", agent_port))
            elif text.startswith("SIP/2.0 200") and "INVITE" in header(text, "CSeq"):
                agent_leg.set_remote(media_address(text))
                state["agent_to"] = header(text, "To")
                ack = (
                    f"ACK sip:agent@127.0.0.1:{agent_port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {engine_sip[0]}:{engine_sip[1]};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                    f"From: <sip:engine@127.0.0.1>;tag=engine1\r\nTo: {header(text, 'To')}\r\n"
                    f"Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                )
                await sip.sendto(ack.encode(), ("127.0.0.1", agent_port))
                if state["recording"] is None:
                    bridge = media.bridge(caller_leg, agent_leg)
                    state["bridge"] = bridge
                    state["recording"] = bridge.start_recording(tmp_path / "call.wav", stereo=True)
                    sdp = sdp_for(caller_leg.local_address, 8, "PCMA")
                    await sip.sendto(response_to(caller_invite, "200 OK", engine_sip, sdp=sdp), caller_peer)
            elif text.startswith("BYE"):
                # the caller hung up: answer, and hang up the agent's leg like a B2BUA would
                await sip.sendto(response_to(text, "200 OK", engine_sip), peer)
                bye = (
                    f"BYE sip:agent@127.0.0.1:{agent_port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {engine_sip[0]}:{engine_sip[1]};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                    f"From: <sip:engine@127.0.0.1>;tag=engine1\r\nTo: {state['agent_to']}\r\n"
                    f"Call-ID: {call_id}\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                )
                await sip.sendto(bye.encode(), ("127.0.0.1", agent_port))
            elif text.startswith("SIP/2.0 200") and "BYE" in header(text, "CSeq"):
                finished.set()

    nursery.start_soon(signalling)

    async def run_baresip(home: Path, seconds: int, *extra: str) -> None:
        await trio.run_process([baresip, "-f", str(home), "-n", "127.0.0.1", "-t", str(seconds), *extra],
                               capture_stdout=True, capture_stderr=True, check=False)

    with trio.fail_after(60):
        async with trio.open_nursery() as phones:
            phones.start_soon(run_baresip, agent_home, 30)
            await trio.sleep(0.5)  # let the agent's baresip bind before the call reaches it (startup, not a wait for a result)
            phones.start_soon(run_baresip, caller_home, 4,
                              "-e", f"/dial sip:agent@{engine_sip[0]}:{engine_sip[1]}")
            await finished.wait()  # both calls ended, so both dumps are closed
            phones.cancel_scope.cancel()
    state["bridge"].close()

    recording = state["recording"]
    assert recording is not None and not recording.failed
    assert caller_leg.session.latched[0] == agent_leg.session.latched[0] == "127.0.0.1"
    with wave.open(str(recording.path)) as w:
        stereo = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert len(stereo) > 8000 * 2
    assert abs(dominant_frequency(stereo[:, 0]) - CALLER_HZ) < 15
    assert abs(dominant_frequency(stereo[:, 1]) - AGENT_HZ) < 15

    heard_by_caller = read_mono(next((caller_home / "dumps").glob("*-dec.wav")))
    heard_by_agent = read_mono(next((agent_home / "dumps").glob("*-dec.wav")))
    assert np.abs(heard_by_caller).max() > 2000 and np.abs(heard_by_agent).max() > 2000
    assert abs(dominant_frequency(heard_by_caller) - AGENT_HZ) < 15
    assert abs(dominant_frequency(heard_by_agent) - CALLER_HZ) < 15
