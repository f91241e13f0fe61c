"""baresip as an agent's phone for outbound-call tests: registers as a [[sip.users]] user, auto-answers,
says a known tone into the call (``aufile``), records what it hears (``sndfile``) and takes commands
over ``ctrl_tcp`` (hang up, list calls). Imported by name; conftest puts this folder on sys.path."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio

from engine.testing import wait_until

CONFIG = """poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
sip_trans_def\t\tudp
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\talsa.so
module\t\t\taufile.so
module\t\t\tsndfile.so
module\t\t\tmenu.so
module\t\t\tctrl_tcp.so
module_app\t\taccount.so
ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}
audio_source\t\taufile,{directory}/tone.wav
audio_player\t\talsa,null
audio_alert\t\talsa,null
snd_path\t\t{directory}/recorded
"""


def free_sip_port() -> int:
    """A port P with UDP P, TCP P and TCP P+1 free: baresip listens on all three (TLS on P+1)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        sockets = []
        try:
            for kind, candidate in ((socket.SOCK_DGRAM, port), (socket.SOCK_STREAM, port), (socket.SOCK_STREAM, port + 1)):
                sock = socket.socket(socket.AF_INET, kind)
                sockets.append(sock)
                sock.bind(("127.0.0.1", candidate))
            return port
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port triple for baresip")


def tone(frequency: float, seconds: float, amplitude: int = 8000) -> np.ndarray:
    n = np.arange(int(8000 * seconds))
    return (amplitude * np.sin(2 * np.pi * frequency * n / 8000)).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as source:
        rate = source.getframerate()
        channels = source.getnchannels()
        data = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    if channels > 1:
        data = data.reshape(-1, channels)[:, 0]
    return data, rate


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency in ``samples`` (Hz), from a Hann-windowed FFT."""
    data = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(len(data), 1 / rate)[int(np.argmax(spectrum))])


def loud(samples: np.ndarray, threshold: int = 1000) -> np.ndarray:
    """The 20 ms frames of ``samples`` that carry sound (not silence or comfort noise), joined."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    keep = frames[np.abs(frames.astype(np.int32)).max(axis=1) > threshold]
    return keep.reshape(-1)


class BaresipPhone:
    def __init__(self, directory: Path, ctrl_port: int, log_path: Path) -> None:
        self.directory = directory
        self.ctrl_port = ctrl_port
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        """One ctrl_tcp command (netstring-framed JSON); returns baresip's JSON response."""
        payload = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream("127.0.0.1", self.ctrl_port)
            async with stream:
                await stream.send_all(b"%d:%s," % (len(payload), payload))
                buffer = b""
                while True:
                    head, colon, rest = buffer.partition(b":")
                    if colon and head.isdigit() and len(rest) > int(head):
                        message = json.loads(rest[: int(head)])
                        if message.get("response"):
                            return message
                        buffer = rest[int(head) + 1 :]  # an event (CALL_CLOSED...) came first
                        continue
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        raise AssertionError("baresip closed ctrl_tcp without answering: " + self.log())
                    buffer += chunk

    def recordings(self, kind: str = "dec") -> list[Path]:
        """WAV files sndfile wrote: ``dec`` = what the phone heard, ``enc`` = what it said."""
        return sorted((self.directory / "recorded").glob(f"*{kind}*.wav"))


@contextlib.asynccontextmanager
async def baresip_agent(
    channel: Any, tmp_path: Path, *, user: str = "1001", password: str = "s3cret", frequency: float = 440.0
) -> AsyncIterator[BaresipPhone]:
    """baresip registered with ``channel`` as ``user``, auto-answering and saying a ``frequency`` tone."""
    binary = shutil.which("baresip")
    if binary is None:
        pytest.fail("baresip is needed for this test: apt-get install -y baresip-core")
    directory = tmp_path / f"baresip-{user}"
    (directory / "recorded").mkdir(parents=True)
    write_wav(directory / "tone.wav", tone(frequency, 30.0))
    ctrl_port = free_sip_port()
    (directory / "config").write_text(CONFIG.format(sip_port=free_sip_port(), ctrl_port=ctrl_port, directory=directory))
    engine_port = channel.bound[0].port
    (directory / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{engine_port};transport=udp>;auth_pass={password};answermode=auto;regint=600\n"
    )
    log_path = tmp_path / f"baresip-{user}.log"
    with log_path.open("wb") as log:
        process = await trio.lowlevel.open_process(
            [binary, "-f", str(directory), "-n", "127.0.0.1"], stdin=None, stdout=log, stderr=log
        )
        phone = BaresipPhone(directory, ctrl_port, log_path)
        try:
            try:
                await wait_until(lambda: channel.endpoint_reachable(f"sip:{user}"), timeout=20)
            except trio.TooSlowError:
                raise AssertionError("baresip never registered:\n" + phone.log()) from None
            yield phone
        finally:
            process.terminate()
            with trio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
