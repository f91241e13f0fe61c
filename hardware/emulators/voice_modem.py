"""An emulated V.253 voice modem on a pty: the firmware side, for tests, firmware-tests and ``--demo``.

It answers the AT dialect the driver speaks (echo, ``ATZ`` forgetting ``+VCID`` as real modems do,
``+FCLASS``, ``+VSM``, ``+VCID``, ``+VLS``, ``+VTR/+VRX/+VTX``, ``ATDT``, ``ATH``), rings with caller
ID (formatted, or an MDMF burst after ``AT+VCID=2``), streams DLE-shielded audio and DTMF, and records
what the host transmitted. Scripting: :meth:`ring`, :meth:`send_dtmf`, :meth:`send_audio`,
:meth:`remote_hangup`, :meth:`send_noise`, :meth:`stop_answering`, ``unplug()``/``replug()``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import trio

from .. import _g711
from ..voice_modem._callerid import encode_mdmf
from ..voice_modem._dle import DLE, ETX, shield
from ._pty import PtyDevice

__all__ = ["VoiceModemEmulator"]

_FORMATS = [
    (0, '"SIGNED PCM",8,0,(8000),(0),(0)', "linear8"),
    (1, '"UNSIGNED PCM",8,0,(8000),(0),(0)', "linear8"),
    (4, '"G711U",8,0,(8000),(0),(0)', "ulaw"),
    (5, '"G711A",8,0,(8000),(0),(0)', "alaw"),
    (130, '"LINEAR",16,0,(8000),(0),(0)', "linear16"),
]


@dataclass
class _State:
    echo: bool = True
    fclass: int = 0
    vcid: int = 0
    off_hook: bool = False
    voice: bool = False
    fmt: str = "ulaw"
    answering: bool = True
    dialled: list[str] = field(default_factory=list)


class VoiceModemEmulator:
    def __init__(
        self,
        *,
        link_dir: str | None = None,
        model: str = "Centralita emulated voice modem 1.0",
        formats: tuple[str, ...] = ("linear8", "ulaw", "alaw", "linear16"),
        full_duplex: bool = True,
    ) -> None:
        self.pty = PtyDevice(link_dir=link_dir, link_name="usb-Centralita_Emulated_Voice_Modem-if00")
        self.model = model
        self.formats = [f for f in _FORMATS if f[2] in formats]
        self.full_duplex = full_duplex
        self.state = _State()
        self.commands: list[str] = []
        self._tx_audio = bytearray()  # what the host transmitted, in the modem's format
        self._write_lock = trio.Lock()
        self._changed = trio.Event()
        self.voice_sessions = 0
        self.flow_control = "xon/xoff"  # a factory default some modems ship with: the driver must change it
        self.host_codes: list[int] = []
        #: What the next ``ATD`` answers (then back to ``OK``): ``BUSY``, ``NO DIALTONE``, ``NO CARRIER``...
        self.dial_result = "OK"

    @property
    def path(self) -> str:
        return self.pty.path

    @property
    def link(self) -> str:
        return self.pty.link

    # ------------------------------------------------------------------ scripting
    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate, *, timeout: float = 10.0) -> None:
        """Wait (with a generous deadline) until ``predicate(self)`` holds."""
        with trio.fail_after(timeout):
            while not predicate(self):
                await self._changed.wait()

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            await self.pty.write(data)

    async def ring(
        self,
        number: str = "",
        name: str = "",
        *,
        rings: int = 3,
        interval: float = 0.05,
        when: str = "11251405",
        private: bool = False,
    ) -> None:
        """Ring ``rings`` times with caller ID after the first ring (if the host armed ``+VCID``).
        Stops early once the host takes the line off hook."""
        for index in range(rings):
            if self.state.off_hook:
                return
            await self._write(b"\r\nRING\r\n")
            if index == 0 and self.state.vcid:
                await self._write(self._caller_id(number, name, when, private))
            await trio.sleep(interval)

    def _caller_id(self, number: str, name: str, when: str, private: bool) -> bytes:
        if self.state.vcid == 2:
            burst = encode_mdmf(
                number=number, name=name, when=when, number_absent="private" if private else ""
            )
            return f"\r\nMESG = {burst.hex().upper()}\r\n".encode()
        lines = [f"DATE = {when[:4]}", f"TIME = {when[4:]}", f"NMBR = {'P' if private else number}"]
        if name:
            lines.append(f"NAME = {name}")
        return ("".join(f"\r\n{line}\r\n" for line in lines)).encode()

    async def send_dtmf(self, digits: str, *, repeat: int = 1) -> None:
        """Report DTMF digits in-band; ``repeat`` > 1 imitates chipsets that repeat a held key."""
        for digit in digits:
            await self._write(bytes([DLE, ord(digit)]) * repeat)

    async def send_line_event(self, code: str) -> None:
        await self._write(bytes([DLE]) + code.encode("latin-1"))

    async def send_audio(self, pcm: np.ndarray) -> None:
        """The caller speaks: ``pcm`` (int16, 8 kHz) goes to the host, encoded and DLE-shielded."""
        await self._write(shield(_g711.encode(pcm, self.state.fmt)))

    async def send_raw(self, data: bytes) -> None:
        await self._write(data)

    async def remote_hangup(self, code: str = "l") -> None:
        """The far end hangs up: loop current drops (``l``), or busy (``b``) / dial tone (``d``)."""
        await self.send_line_event(code)

    async def send_noise(self, size: int = 256, seed: int = 7) -> None:
        """Bytes from a wrong baud rate or a noisy cable."""
        rng = random.Random(seed)
        await self._write(bytes(rng.randrange(256) for _ in range(size)))

    def stop_answering(self) -> None:
        self.state.answering = False

    def resume_answering(self) -> None:
        self.state.answering = True

    def unplug(self) -> None:
        self.pty.unplug()
        self.state = _State(answering=self.state.answering)
        self._notify()

    def replug(self) -> None:
        self.pty.replug()
        self._notify()

    def received_audio(self) -> np.ndarray:
        """What the host has transmitted so far, decoded to int16 PCM."""
        return _g711.decode(bytes(self._tx_audio), self.state.fmt)

    # ------------------------------------------------------------------ firmware
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        line = bytearray()
        dle = False
        while True:
            data = await self.pty.read()
            if not self.state.answering:
                continue
            index = 0
            while index < len(data):
                if self.state.voice:
                    byte = data[index]
                    index += 1
                    if dle:
                        dle = False
                        if byte == DLE:
                            self._tx_audio.append(DLE)
                        else:
                            self.host_codes.append(byte)
                            if byte in (ETX, ord("!")):
                                await self._leave_voice()
                                line.clear()
                    elif byte == DLE:
                        dle = True
                    else:
                        # bulk-copy the run of plain audio bytes
                        end = data.find(DLE, index)
                        end = len(data) if end < 0 else end
                        self._tx_audio.append(byte)
                        self._tx_audio += data[index:end]
                        index = end
                    continue
                byte = data[index]
                index += 1
                if dle or byte == DLE:
                    # A DLE code outside voice mode (a late <DLE>! after <DLE><ETX>): ignored.
                    dle = not dle
                    continue
                if byte in (0x0D, 0x0A):
                    if line:
                        text = line.decode("latin-1")
                        line.clear()
                        if self.state.echo:
                            await self._write(text.encode("latin-1") + b"\r")
                        await self._command(text.strip())
                    continue
                if len(line) < 256:
                    line.append(byte)
            self._notify()

    async def _leave_voice(self) -> None:
        self.state.voice = False
        await self._write(bytes([DLE, ETX]) + b"\r\nOK\r\n")
        self._notify()

    async def _reply(self, *lines: str) -> None:
        await self._write(b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines))

    async def _command(self, text: str) -> None:
        self.commands.append(text)
        self._notify()
        upper = text.upper()
        if not upper.startswith("AT"):
            return
        body = upper[2:]
        st = self.state
        if body in ("", "V1", "Q0", "+VNH=1") or body.startswith(("&F", "S")):
            await self._reply("OK")
        elif body in ("&K0", "&K3", "&K4"):
            self.flow_control = {"&K0": "none", "&K3": "rts/cts", "&K4": "xon/xoff"}[body]
            await self._reply("OK")
        elif body in ("E0", "E1"):
            st.echo = body == "E1"
            await self._reply("OK")
        elif body in ("Z", "Z0"):
            self.state = _State(answering=st.answering, dialled=st.dialled)
            await self._reply("OK")
        elif body in ("I", "I3", "I0"):
            await self._reply(self.model, "OK")
        elif body == "+FCLASS=?":
            await self._reply("0,1,8", "OK")
        elif body == "+FCLASS?":
            await self._reply(str(st.fclass), "OK")
        elif body in ("+FCLASS=0", "+FCLASS=1", "+FCLASS=8"):
            st.fclass = int(body[-1])
            await self._reply("OK")
        elif body == "+VSM=?":
            if st.fclass != 8:
                await self._reply("ERROR")
            else:
                await self._reply(*(f"{cml},{desc}" for cml, desc, _ in self.formats), "OK")
        elif body.startswith("+VSM="):
            cml, _, rate = body[5:].partition(",")
            chosen = [f for f in self.formats if str(f[0]) == cml.strip()]
            if st.fclass != 8 or not chosen or rate.strip() not in ("", "8000"):
                await self._reply("ERROR")
            else:
                st.fmt = chosen[0][2]
                await self._reply("OK")
        elif body.startswith("+VCID="):
            value = body[6:]
            if value in ("0", "1", "2"):
                st.vcid = int(value)
                await self._reply("OK")
            else:
                await self._reply("ERROR")
        elif body == "+VCID?":
            await self._reply(str(st.vcid), "OK")
        elif body.startswith("+VLS="):
            st.off_hook = body[5:] not in ("0",)
            await self._reply("OK")
        elif body in ("+VTR", "+VRX", "+VTX"):
            if st.fclass != 8 or not st.off_hook or (body == "+VTR" and not self.full_duplex):
                await self._reply("ERROR")
                return
            st.voice = True
            self.voice_sessions += 1
            # A real modem streams from the moment it connects: start with 20 ms of line silence.
            await self._write(b"\r\nCONNECT\r\n" + shield(_g711.encode(np.zeros(160, np.int16), st.fmt)))
        elif body.startswith("D!"):
            await self._reply("OK" if st.off_hook else "ERROR")
        elif body.startswith("D"):
            number = body.lstrip("D").lstrip("TP").rstrip(";")
            if not number or any(c not in "0123456789*#,WABCD" for c in number):
                await self._reply("ERROR")
                return
            st.dialled.append(number)
            result, self.dial_result = self.dial_result, "OK"
            st.off_hook = result == "OK"
            await self._reply(result)
        elif body in ("H", "H0"):
            st.off_hook = False
            await self._reply("OK")
        else:
            await self._reply("ERROR")
