"""Emulated devices for ``centralita run --demo``: a voice modem line, a GSM modem and a DTMF board on
pseudo-terminals, with a little scripted life (a caller every so often, an SMS now and then).

The engine (or the CLI) starts :class:`DemoDevices` first and adds :meth:`DemoDevices.device_specs`
to its ``[[devices]]``::

    demo = DemoDevices()
    await nursery.start(demo.run)
    specs = demo.device_specs()   # [{"name": "demo-line", "driver": "voice-modem", "port": ...}, ...]
"""

from __future__ import annotations

import random
import tempfile
from typing import Any

import numpy as np
import trio

from .dtmf_board import DtmfBoardEmulator
from .gsm_modem import GsmModemEmulator
from .voice_modem import VoiceModemEmulator

__all__ = ["DemoDevices"]

_CALLERS = [("600111222", "ANA LOPEZ"), ("600333444", "JORGE RUIZ"), ("911222333", "ACME SL"), ("", "")]
_TEXTS = [
    "Hola, ¿a qué hora abrís mañana?",
    "Necesito cambiar mi cita del jueves",
    "¿Tenéis factura del pedido 4411?",
]


class DemoDevices:
    def __init__(
        self,
        *,
        call_every: float = 45.0,
        sms_every: float = 90.0,
        seed: int | None = None,
        link_dir: str | None = None,
    ) -> None:
        self.link_dir = link_dir or tempfile.mkdtemp(prefix="centralita-demo-")
        self.voice = VoiceModemEmulator(link_dir=self.link_dir)
        self.gsm = GsmModemEmulator(link_dir=self.link_dir)
        self.board = DtmfBoardEmulator(link_dir=self.link_dir)
        self.call_every = call_every
        self.sms_every = sms_every
        self._random = random.Random(seed)

    def device_specs(self) -> list[dict[str, Any]]:
        """``[[devices]]`` entries for the emulated hardware."""
        return [
            {"name": "demo-line", "driver": "voice-modem", "port": self.voice.link, "profile": "generic"},
            {"name": "demo-gsm", "driver": "gsm-modem", "port": self.gsm.link, "profile": "generic"},
            {
                "name": "demo-board",
                "driver": "dtmf-board",
                "port": self.board.link,
                "profile": "ascii",
                "options": {"line": "demo-line"},
            },
        ]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.voice.run)
            await nursery.start(self.gsm.run)
            await nursery.start(self.board.run)
            task_status.started()
            nursery.start_soon(self._callers)
            nursery.start_soon(self._messages)

    async def _callers(self) -> None:
        while True:
            await trio.sleep(self.call_every * (0.5 + self._random.random()))
            number, name = self._random.choice(_CALLERS)
            await self.voice.ring(number, name, rings=6, interval=1.0, private=not number)
            if self.voice.state.voice:  # answered: say something, press a key, hang up later
                tone = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 4000).astype(np.int16)
                await self.voice.send_audio(tone)
                await trio.sleep(2.0)
                await self.voice.send_dtmf(self._random.choice("123"))
                await trio.sleep(10.0 + 20.0 * self._random.random())
                if self.voice.state.voice:
                    await self.voice.remote_hangup("l")

    async def _messages(self) -> None:
        while True:
            await trio.sleep(self.sms_every * (0.5 + self._random.random()))
            await self.gsm.deliver_sms(
                f"+34{self._random.randrange(600000000, 699999999)}", self._random.choice(_TEXTS)
            )

    def close(self) -> None:
        for emulator in (self.voice, self.gsm, self.board):
            emulator.pty.close()
