"""Real peers for the routing end-to-end tests: a baresip agent phone, SIPp runs in the background,
prompt files, and a loopback sniffer that hears the RTP a SIPp caller receives.

SIPp cannot record the audio it is sent, and its media port cannot be shared (it binds it, and it
replays RFC 2833 captures from it, so the engine latches there). The sniffer reads the packets on
``lo`` (an AF_PACKET socket: root, which SIPp's pcap replay needs anyway) and keeps the UDP payloads
sent to that port; tests then decode the G.711 and look at which frequencies are in it.

The baresip plumbing (config, start/stop, ctrl_tcp) is the shared one in ``sip/baresip_agent.py``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trio
from baresip_agent import baresip_account, baresip_config, ctrl_tcp_command, tone, write_wav
from baresip_agent import open_baresip as run_baresip
from sip_interop_helpers import sipp_path

from engine.media import decode_ulaw

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
PCAPS = Path("/usr/share/sip-tester")


def write_tone(path: Path, frequency: float, seconds: float, *, amplitude: int = 8000) -> None:
    """A WAV prompt (8 kHz mono 16-bit) holding one pure tone: what we listen for at the caller."""
    write_wav(path, tone(frequency, seconds, amplitude))


def free_port_trio() -> int:
    """A port P with UDP P, UDP P+2, TCP P and TCP P+1 free (SIPp's media port and its video port
    P+2; baresip's SIP ports P and TLS P+1)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 2 > 65535:
            continue
        sockets = []
        try:
            for kind, candidate in ((socket.SOCK_DGRAM, port), (socket.SOCK_DGRAM, port + 2),
                                    (socket.SOCK_STREAM, port), (socket.SOCK_STREAM, port + 1)):
                sock = socket.socket(socket.AF_INET, kind)
                sockets.append(sock)
                sock.bind(("127.0.0.1", candidate))
            return port
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port group")


# ----------------------------------------------------------------------------------------- SIPp


@dataclass
class SippRun:
    """One SIPp process run in the background; ``done`` is set when it has exited."""

    name: str
    args: list[str]
    result: trio.CompletedProcess[bytes] | None = None
    done: trio.Event = field(default_factory=trio.Event)

    def describe(self) -> str:
        if self.result is None:
            return f"sipp {self.name}: still running"
        out = self.result.stdout.decode(errors="replace")[-1500:]
        err = self.result.stderr.decode(errors="replace")[-1500:]
        return f"sipp {self.name}: exit {self.result.returncode}\n{out}\n{err}"

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.returncode == 0


def start_sipp(nursery: trio.Nursery, name: str, args: list[str], *, timeout: int = 90) -> SippRun:
    run = SippRun(name, args)
    command = [sipp_path(), *args, "-nostdin", "-timeout", str(timeout), "-timeout_error", "-max_recv_loops", "100"]

    async def go() -> None:
        try:
            with trio.move_on_after(timeout + 30):
                run.result = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
        finally:
            run.done.set()

    nursery.start_soon(go)
    return run


def caller_args(engine_port: int, scenario: str, *, service: str, caller: str, sip_port: int, media_port: int) -> list[str]:
    return [f"127.0.0.1:{engine_port}", "-sf", str(SCENARIOS / scenario), "-s", service, "-key", "caller", caller,
            "-i", "127.0.0.1", "-p", str(sip_port), "-mp", str(media_port), "-m", "1"]


# --------------------------------------------------------------------------------------- baresip


@dataclass
class Baresip:
    directory: Path
    ctrl_port: int
    log: Path

    async def command(self, command: str, params: str = "") -> dict:
        """One ctrl_tcp command; returns baresip's JSON response (events before it are skipped)."""
        return await ctrl_tcp_command(self.ctrl_port, command, params, token=command, log=self.tail)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextlib.asynccontextmanager
async def open_baresip(directory: Path, *, user: str, password: str, engine_port: int,
                       tone_hz: float) -> AsyncIterator[Baresip]:
    """baresip registered as ``user`` (digest auth), answering every call at once, "saying" a tone."""
    directory.mkdir(parents=True, exist_ok=True)
    write_tone(directory / "tone.wav", tone_hz, 60)
    ctrl_port = free_port_trio()
    (directory / "config").write_text(
        baresip_config(directory, sip_port=free_port_trio(), source="tone.wav", ctrl_port=ctrl_port))
    (directory / "accounts").write_text(baresip_account(user, password, engine_port))
    log_path = directory / "baresip.log"
    async with run_baresip(directory, log_path):
        yield Baresip(directory, ctrl_port, log_path)


# ----------------------------------------------------------------------------------------- audio

_ETH_P_ALL = 0x0003
_PACKET_HOST = 0  # on lo each packet shows twice: once outgoing, once arriving; keep the arrival


class RtpSniffer:
    """Keeps the RTP payloads (PCMU only) that arrive at ``127.0.0.1:port``, in arrival order."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.packets: list[tuple[int, int, bytes]] = []  # (payload type, sequence, payload)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        sock = trio.socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        with sock:
            # every loopback packet on the machine comes through here; a roomy buffer keeps a busy
            # moment (other SIP load on lo) from dropping the few we want
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
            await sock.bind(("lo", 0))
            task_status.started()
            while True:
                frame, address = await sock.recvfrom(65535)
                if address[2] == _PACKET_HOST:
                    self._take(frame)

    def _take(self, frame: bytes) -> None:
        ip = frame[14:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            return
        header = (ip[0] & 0x0F) * 4
        udp = ip[header:]
        if len(udp) < 8 or struct.unpack("!H", udp[2:4])[0] != self.port:
            return
        rtp = udp[8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            return
        offset = 12 + 4 * (rtp[0] & 0x0F)
        if rtp[0] & 0x10 and len(rtp) >= offset + 4:
            offset += 4 + 4 * struct.unpack("!H", rtp[offset + 2 : offset + 4])[0]
        self.packets.append((rtp[1] & 0x7F, struct.unpack("!H", rtp[2:4])[0], rtp[offset:]))

    def audio(self, start: int = 0) -> np.ndarray:
        """The PCMU audio received from packet ``start`` on, decoded to 16-bit samples."""
        payloads = [p for pt, _, p in self.packets[start:] if pt == 0]
        if not payloads:
            return np.zeros(0, dtype=np.int16)
        return np.asarray(decode_ulaw(b"".join(payloads)), dtype=np.int16)


def tone_share(samples: np.ndarray, frequency: float, *, width: float = 25.0) -> float:
    """The share of the signal's energy within ``width`` Hz of ``frequency`` (0 for silence)."""
    if len(samples) < 800:
        return 0.0
    x = samples.astype(np.float64)
    x -= x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    total = spectrum.sum()
    if total <= 0:
        return 0.0
    return float(spectrum[np.abs(freqs - frequency) <= width].sum() / total)


def loud(samples: np.ndarray) -> bool:
    """Audio energy well above silence (G.711 silence decodes to a few units)."""
    return len(samples) > 0 and float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) > 300
