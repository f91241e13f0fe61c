"""Helpers for the SIP integration tests (imported by name; conftest puts this folder on sys.path)."""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

SCENARIOS = Path(__file__).resolve().parent / "scenarios"

FAST_TIMERS = """
[sip.timers]
t1 = 0.1
t2 = 0.8
t4 = 1
qualify_interval = 0
ring_timeout = 10
trunk_retry = 0.5
trunk_retry_max = 2
tcp_message_timeout = 2
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sipp_path() -> str:
    path = shutil.which("sipp")
    if path is None:
        pytest.fail("SIPp is needed for this test: apt-get install -y sip-tester")
    return path


async def run_sipp(args: list[str], *, deadline: float = 60) -> trio.CompletedProcess[bytes]:
    """Run SIPp to completion; its exit status is 0 only when every call succeeded."""
    command = [sipp_path(), *args, "-nostdin", "-timeout", "40", "-timeout_error", "-max_recv_loops", "100"]
    with trio.fail_after(deadline):
        return await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)


def describe(result: trio.CompletedProcess[bytes]) -> str:
    return f"sipp exit {result.returncode}\n{result.stdout.decode(errors='replace')[-2000:]}\n{result.stderr.decode(errors='replace')[-2000:]}"
