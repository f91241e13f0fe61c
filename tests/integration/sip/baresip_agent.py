"""baresip as an agent's phone for outbound-call tests: registers as a [[sip.users]] user, auto-answers,
says a known tone into the call (``aufile``), records what it hears (``sndfile``) and takes commands
over ``ctrl_tcp`` (hang up, list calls). Imported by name; conftest puts this folder on sys.path.

Also the one home of the baresip/tone plumbing every integration folder uses (config and accounts
files, start/stop, ctrl_tcp commands, free ports, WAV writers): the hardware, dialer, routing, voice
and recording conftests put this folder on sys.path too."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio

from engine.testing import wait_until


def baresip_config(
    directory: Path, *, sip_port: int, source: str, ctrl_port: int | None = None, record_dir: str | None = None
) -> str:
    """baresip's ``config`` for a headless phone: G.711 only, says the WAV ``directory/source`` into
    every call, plays to ALSA's null device; ``ctrl_port`` adds ctrl_tcp (commands), ``record_dir``
    adds sndfile (WAVs of what it heard and said, under ``directory/record_dir``)."""
    modules = ["g711.so", "alsa.so", "aufile.so"]
    if record_dir is not None:
        modules.append("sndfile.so")
    modules.append("menu.so")
    if ctrl_port is not None:
        modules.append("ctrl_tcp.so")
    lines = [
        "poll_method\t\tepoll",
        f"sip_listen\t\t127.0.0.1:{sip_port}",
        "sip_trans_def\t\tudp",
        "module_path\t\t/usr/lib/baresip/modules",
        *(f"module\t\t\t{module}" for module in modules),
        "module_app\t\taccount.so",
    ]
    if ctrl_port is not None:
        lines.append(f"ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}")
    lines += [f"audio_source\t\taufile,{directory}/{source}", "audio_player\t\talsa,null", "audio_alert\t\talsa,null"]
    if record_dir is not None:
        lines.append(f"snd_path\t\t{directory}/{record_dir}")
    return "\n".join(lines) + "\n"


def baresip_account(user: str, password: str, registrar_port: int) -> str:
    """baresip's ``accounts`` line: register ``user`` over UDP with digest auth, auto-answer."""
    return f"<sip:{user}@127.0.0.1:{registrar_port};transport=udp>;auth_pass={password};answermode=auto;regint=600\n"


def baresip_binary() -> str:
    binary = shutil.which("baresip")
    if binary is None:
        pytest.fail("baresip is needed for this test: apt-get install -y baresip-core")
    return binary


async def spawn_baresip(directory: Path, log_path: Path) -> trio.Process:
    """Start baresip on the config folder ``directory``, its output going to ``log_path``; stop it
    with :func:`stop_process` (or use :func:`open_baresip`)."""
    with log_path.open("wb") as log:
        return await trio.lowlevel.open_process(
            [baresip_binary(), "-f", str(directory), "-n", "127.0.0.1"], stdin=None, stdout=log, stderr=log
        )


async def stop_process(process: trio.Process) -> None:
    """SIGTERM, then SIGKILL if the process has not gone within 5 s."""
    process.terminate()
    with trio.move_on_after(5):
        await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def open_baresip(directory: Path, log_path: Path) -> AsyncIterator[trio.Process]:
    """baresip running on the config folder ``directory`` for the length of the block."""
    process = await spawn_baresip(directory, log_path)
    try:
        yield process
    finally:
        await stop_process(process)


async def ctrl_tcp_command(
    ctrl_port: int,
    command: str,
    params: str = "",
    *,
    token: str = "t",
    timeout: float = 10.0,
    log: Callable[[], str] = str,
) -> dict[str, Any]:
    """One ctrl_tcp command (netstring-framed JSON); returns baresip's JSON response to it.

    Events (CALL_CLOSED, REGISTER_OK...) share the connection and may arrive before the answer: they
    are skipped, not taken for a failed command. ``log`` adds baresip's log to an error."""
    payload = json.dumps({"command": command, "params": params, "token": token}).encode()
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream("127.0.0.1", ctrl_port)
        async with stream:
            await stream.send_all(b"%d:%s," % (len(payload), payload))
            buffer = b""
            while True:
                head, colon, rest = buffer.partition(b":")
                if colon and head.isdigit() and len(rest) > int(head):
                    message = json.loads(rest[: int(head)])
                    buffer = rest[int(head) + 1 :]
                    if message.get("response") and message.get("token", token) == token:
                        return message
                    continue  # an event, or an answer to someone else's command
                chunk = await stream.receive_some(65536)
                if not chunk:
                    raise AssertionError(f"baresip closed ctrl_tcp without answering {command}: " + log())
                buffer += chunk


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


def tone(frequency: float, seconds: float, amplitude: float = 8000, rate: int = 8000) -> np.ndarray:
    n = np.arange(int(rate * seconds))
    return (amplitude * np.sin(2 * np.pi * frequency * n / rate)).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int = 8000) -> None:
    """8 kHz (by default) mono 16-bit WAV; makes the folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
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
        """One ctrl_tcp command; returns baresip's JSON response (events before it are skipped)."""
        return await ctrl_tcp_command(self.ctrl_port, command, params, log=self.log)

    def recordings(self, kind: str = "dec") -> list[Path]:
        """WAV files sndfile wrote: ``dec`` = what the phone heard, ``enc`` = what it said."""
        return sorted((self.directory / "recorded").glob(f"*{kind}*.wav"))


@contextlib.asynccontextmanager
async def baresip_agent(
    channel: Any, tmp_path: Path, *, user: str = "1001", password: str = "s3cret", frequency: float = 440.0
) -> AsyncIterator[BaresipPhone]:
    """baresip registered with ``channel`` as ``user``, auto-answering and saying a ``frequency`` tone."""
    directory = tmp_path / f"baresip-{user}"
    (directory / "recorded").mkdir(parents=True)
    write_wav(directory / "tone.wav", tone(frequency, 30.0))
    ctrl_port = free_sip_port()
    config = baresip_config(directory, sip_port=free_sip_port(), source="tone.wav", ctrl_port=ctrl_port, record_dir="recorded")
    (directory / "config").write_text(config)
    (directory / "accounts").write_text(baresip_account(user, password, channel.bound[0].port))
    log_path = tmp_path / f"baresip-{user}.log"
    phone = BaresipPhone(directory, ctrl_port, log_path)
    async with open_baresip(directory, log_path):
        try:
            await wait_until(lambda: channel.endpoint_reachable(f"sip:{user}"), timeout=20)
        except trio.TooSlowError:
            raise AssertionError("baresip never registered:\n" + phone.log()) from None
        yield phone
