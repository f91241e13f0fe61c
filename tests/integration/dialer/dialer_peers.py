"""The called parties and agents of the end-to-end dialer test, made at test time.

* Audio: espeak-ng says the words (22 kHz WAV), the media framework's resampler brings them to 8 kHz,
  and :func:`write_rtp_pcap` wraps the G.711 mu-law frames into a capture SIPp's ``play_pcap_audio``
  replays (Ethernet/IPv4/UDP/RTP, one packet per 20 ms). Nothing fetched from elsewhere.
* SIPp: one UAS process per kind of called party, each behind its own trunk of the engine.
* baresip: the agents' phones, registered with digest auth, auto-answering (the plumbing, tones and
  WAV writer are the shared ones in ``tests/integration/sip/baresip_agent.py``).
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
from baresip_agent import (
    baresip_account,
    baresip_config,
    free_sip_port,
    spawn_baresip,
    stop_process,
    tone,  # noqa: F401 -- re-exported: the dialer test imports it from here
    write_wav,
)

from engine.media import encode_ulaw, load_wav_8k

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
RATE = 8000


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is needed for this test: apt-get install -y {package}")
    return path


def speech(text: str, directory: Path, *, voice: str = "en-us", speed: int = 160) -> np.ndarray:
    """``text`` spoken by espeak-ng, as 8 kHz int16 at a telephone level."""
    wav = directory / f"tts-{abs(hash((text, voice, speed)))}.wav"
    subprocess.run([tool("espeak-ng", "espeak-ng"), "-v", voice, "-s", str(speed), "-w", str(wav), text],
                   check=True, capture_output=True, timeout=60)
    samples = load_wav_8k(wav).astype(np.float64)
    peak = float(np.abs(samples).max()) or 1.0
    return (samples * (12000.0 / peak)).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), dtype=np.int16)


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_rtp_pcap(path: Path, samples: np.ndarray, *, payload_type: int = 0, ssrc: int = 0x5EED) -> float:
    """A capture of ``samples`` as RTP G.711 mu-law, 20 ms per packet; returns its length in seconds."""
    payload = encode_ulaw(samples[: len(samples) // 160 * 160])
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet captures
    for index in range(len(payload) // 160):
        rtp = struct.pack("!BBHII", 0x80, payload_type | (0x80 if index == 0 else 0), index & 0xFFFF,
                          index * 160, ssrc) + bytes(payload[index * 160:(index + 1) * 160])
        udp = struct.pack("!HHHH", 40000, 6000, 8 + len(rtp), 0) + rtp
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), index & 0xFFFF, 0, 64, 17, 0,
                                   socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1")))
        ip[10:12] = struct.pack("!H", _ip_checksum(bytes(ip)))
        frame = b"\x00" * 12 + b"\x08\x00" + bytes(ip) + udp
        micros = index * 20000
        out += struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return len(payload) / RATE


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_spans(count: int, span: int = 4) -> list[int]:
    """``count`` base ports, each with ``span`` consecutive free UDP ports, none overlapping: SIPp binds
    its media port and the one two above (video) besides its SIP port."""
    bases: list[int] = []
    taken: set[int] = set()
    while len(bases) < count:
        base = free_udp_port()
        wanted = set(range(base, base + span))
        if base + span > 65535 or wanted & taken:
            continue
        sockets = []
        try:
            for port in wanted:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        bases.append(base)
        taken |= wanted
    return bases


def udp_port_taken(port: int) -> bool:
    """Has a peer (SIPp) bound this UDP port yet? Read from the kernel's socket table: probing with a
    bind of our own could take the port from under the peer at the wrong moment."""
    with open("/proc/net/udp") as table:
        next(table)
        return any(int(line.split()[1].rsplit(":", 1)[1], 16) == port for line in table)


async def run_sipp(scenario: str, port: int, media_port: int, calls: int, cwd: Path, *,
                   deadline: float = 120) -> trio.CompletedProcess[bytes]:
    """A SIPp UAS playing ``scenario`` for ``calls`` calls; exit status 0 only when every call succeeded."""
    command = [tool("sipp", "sip-tester"), "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port),
               "-mi", "127.0.0.1", "-mp", str(media_port), "-m", str(calls), "-nostdin",
               "-timeout", "90", "-timeout_error", "-max_recv_loops", "100", "-trace_err",
               "-error_file", str(cwd / f"{Path(scenario).stem}-errors.log")]
    with trio.fail_after(deadline):
        return await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False, cwd=str(cwd))


def describe(name: str, result: Any, cwd: Path) -> str:
    errors = cwd / f"{Path(name).stem}-errors.log"
    text = errors.read_text(errors="replace")[-2000:] if errors.exists() else ""
    return (f"{name}: sipp exit {result.returncode}\n{result.stdout.decode(errors='replace')[-1500:]}\n"
            f"{result.stderr.decode(errors='replace')[-1500:]}\n{text}")


async def start_baresip(directory: Path, user: str, password: str, engine_port: int, voice: np.ndarray) -> trio.Process:
    """An agent's phone: registers ``user`` with digest auth and answers every call at once; end it
    with :func:`stop`."""
    directory.mkdir(parents=True, exist_ok=True)
    write_wav(directory / "voice.wav", voice)
    (directory / "config").write_text(baresip_config(directory, sip_port=free_sip_port(), source="voice.wav"))
    (directory / "accounts").write_text(baresip_account(user, password, engine_port))
    return await spawn_baresip(directory, directory / "baresip.log")


stop = stop_process
