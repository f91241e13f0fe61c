"""Shared helpers for the media tests: a tiny pcap reader, real-tool runners, spectrum checks."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

SIPP_CAPTURES = Path("/usr/share/sip-tester")


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is needed for this test: apt-get install -y {package}")
    return path


def sipp_capture(name: str) -> Path:
    path = SIPP_CAPTURES / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: apt-get install -y sip-tester")
    return path


def read_pcap_udp(path: Path) -> list[tuple[float, bytes]]:
    """(timestamp, UDP payload) for every IPv4/UDP packet of a classic pcap file (Ethernet or raw/SLL)."""
    data = path.read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path} is not a classic pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    offset = 24
    out = []
    while offset + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack_from(endian + "IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen
        if linktype == 1:  # Ethernet
            ethertype = struct.unpack_from("!H", frame, 12)[0]
            ip_at = 14
            if ethertype == 0x8100:
                ethertype = struct.unpack_from("!H", frame, 16)[0]
                ip_at = 18
            if ethertype != 0x0800:
                continue
        elif linktype == 113:  # Linux cooked
            if struct.unpack_from("!H", frame, 14)[0] != 0x0800:
                continue
            ip_at = 16
        elif linktype in (101, 228):  # raw IPv4
            ip_at = 0
        else:
            raise ValueError(f"unsupported pcap link type {linktype}")
        ip = frame[ip_at:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        udp = ip[ihl:]
        length = struct.unpack_from("!H", udp, 4)[0]
        out.append((sec + frac / (1e9 if nano else 1e6), bytes(udp[8:length])))
    return out


def dominant_frequency(samples: np.ndarray, rate: int = 8000) -> float:
    x = np.asarray(samples, dtype=np.float64)
    x = x - x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def band_energy(samples: np.ndarray, low: float, high: float, rate: int = 8000) -> float:
    x = np.asarray(samples, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[(freqs >= low) & (freqs <= high)].sum())


def sox(*args: str) -> None:
    require_tool("sox", "sox")
    subprocess.run(["sox", *args], check=True, capture_output=True, timeout=60)


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock
