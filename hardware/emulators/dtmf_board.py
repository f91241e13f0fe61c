"""An emulated serial DTMF decoder board on a pty: :meth:`press` sends digits in the board's framing."""

from __future__ import annotations

import random

import trio

from ..dtmf_board._frames import encode_frames
from ._pty import PtyDevice

__all__ = ["DtmfBoardEmulator"]


class DtmfBoardEmulator:
    def __init__(self, *, framing: str = "ascii", link_dir: str | None = None) -> None:
        self.framing = framing
        self.pty = PtyDevice(link_dir=link_dir, link_name="usb-FTDI_FT232R_Centralita_DTMF-if00-port0")

    @property
    def path(self) -> str:
        return self.pty.path

    @property
    def link(self) -> str:
        return self.pty.link

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self.pty.read()  # boards ignore what the host sends

    async def press(self, digits: str, channel: int = 0) -> None:
        await self.pty.write(encode_frames(self.framing, digits, channel))

    async def send_noise(self, size: int = 64, seed: int = 5) -> None:
        rng = random.Random(seed)
        noise = bytes(
            b
            for b in (rng.randrange(256) for _ in range(size * 2))
            if chr(b).upper() not in "0123456789*#ABCD"
        )
        await self.pty.write(noise[:size])

    def unplug(self) -> None:
        self.pty.unplug()

    def replug(self) -> None:
        self.pty.replug()
