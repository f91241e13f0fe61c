"""An emulated GSM modem on a pty (3GPP TS 27.005/27.007 as the driver uses it).

SIM PIN and a SIM that is not ready at boot, registration and signal, SMS storage with ``+CMTI``
notifications (or ``+CMT`` routing), ``+CDS`` status reports, ``AT+CMGS`` with the ``> `` prompt and
PDU decoding of what the host sends, scripted ``+CME ERROR`` failures, and URCs injected between a
command's echo and its ``OK``.
"""

from __future__ import annotations

import datetime as _dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from ..gsm_modem._pdu import PduError, Submit, decode_pdu, encode_deliver, encode_status_report
from ._pty import PtyDevice

__all__ = ["GsmModemEmulator", "SentSms"]


@dataclass
class SentSms:
    recipient: str
    text: str
    references: list[int] = field(default_factory=list)
    pdus: list[str] = field(default_factory=list)
    status_report_request: bool = False


class GsmModemEmulator:
    def __init__(
        self,
        *,
        link_dir: str | None = None,
        pin: str | None = None,
        sim_not_ready_polls: int = 0,
        registration: int = 1,
        signal: int = 20,
        model: str = "Centralita emulated GSM modem",
    ) -> None:
        self.pty = PtyDevice(link_dir=link_dir, link_name="usb-Centralita_Emulated_GSM_Modem-if02")
        self.model = model
        self.pin = pin
        self.sim_unlocked = pin is None
        self.sim_not_ready_polls = sim_not_ready_polls
        self.registration = registration
        self.signal = signal
        self.echo = True
        self.creg_mode = 0
        self.answering = True
        self.storage: dict[int, str] = {}
        self.sent: list[SentSms] = []
        self.submits: list[Submit] = []
        self.invalid_submits: list[str] = []
        self.commands: list[str] = []
        self.deleted: list[int] = []
        self.auto_status_reports = False
        self._failures: list[list] = []  # [prefix, code, remaining (None = forever)]
        self._inject: list[tuple[str, bytes]] = []
        self._next_mr = 0
        self._write_lock = trio.Lock()
        self._changed = trio.Event()
        self._pdu_wait: int | None = None
        self._report_send, self._report_recv = trio.open_memory_channel[tuple[int, str]](64)

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

    async def wait_until(
        self, predicate: Callable[[GsmModemEmulator], bool], *, timeout: float = 10.0
    ) -> None:
        with trio.fail_after(timeout):
            while not predicate(self):
                await self._changed.wait()

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            await self.pty.write(data)

    def _free_index(self) -> int:
        index = 1
        while index in self.storage:
            index += 1
        return index

    async def deliver_sms(
        self,
        sender: str,
        text: str,
        *,
        when: _dt.datetime | None = None,
        routed: bool = False,
        notify: bool = True,
        reverse: bool = False,
        concat_reference: int = 42,
    ) -> list[int]:
        """A message arrives from the network. Stored parts are announced with ``+CMTI`` (``reverse``:
        last part first); ``routed`` pushes them with ``+CMT`` instead (not stored)."""
        when = when or _dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=_dt.UTC)
        pdus = encode_deliver(sender, text, when, concat_reference=concat_reference)
        indexes = []
        for pdu in reversed(pdus) if reverse else pdus:
            if routed:
                await self._write(f"\r\n+CMT: ,{len(pdu) // 2 - 1 - int(pdu[:2], 16)}\r\n{pdu}\r\n".encode())
                continue
            index = self._free_index()
            self.storage[index] = pdu
            indexes.append(index)
            if notify:
                await self._write(f'\r\n+CMTI: "SM",{index}\r\n'.encode())
        self._notify()
        return indexes

    def store_raw_pdu(self, pdu: str) -> int:
        """Put anything (an invalid PDU) in SIM storage, as a broken network or SIM might."""
        index = self._free_index()
        self.storage[index] = pdu
        return index

    async def send_status_report(self, reference: int, recipient: str, status: int = 0) -> None:
        pdu, length = encode_status_report(
            reference, recipient, status, _dt.datetime(2026, 11, 25, 12, 0, 5, tzinfo=_dt.UTC)
        )
        await self._write(f"\r\n+CDS: {length}\r\n{pdu}\r\n".encode())

    async def set_registration(self, stat: int) -> None:
        self.registration = stat
        if self.creg_mode:
            await self._write(f"\r\n+CREG: {stat}\r\n".encode())

    async def ring(self, number: str) -> None:
        await self._write(f'\r\nRING\r\n\r\n+CLIP: "{number}",145,,,,0\r\n'.encode())

    async def send_urc(self, text: str) -> None:
        await self._write(f"\r\n{text}\r\n".encode())

    def inject_urc_during(self, command_prefix: str, urc: str) -> None:
        """The next command starting with ``command_prefix`` gets ``urc`` between its echo and answer."""
        self._inject.append((command_prefix.upper(), f"\r\n{urc}\r\n".encode()))

    def fail(self, command_prefix: str, code: int, times: int | None = None, *, cms: bool = False) -> None:
        """Answer commands starting with ``command_prefix`` with ``+CME ERROR: code`` (``times`` times,
        or forever)."""
        self._failures.append([command_prefix.upper(), code, times, cms])

    def clear_failures(self) -> None:
        self._failures.clear()

    async def send_noise(self, size: int = 256, seed: int = 3) -> None:
        rng = random.Random(seed)
        await self._write(bytes(rng.randrange(256) for _ in range(size)))

    def stop_answering(self) -> None:
        self.answering = False

    def resume_answering(self) -> None:
        self.answering = True

    def unplug(self) -> None:
        self.pty.unplug()
        self._notify()

    def replug(self) -> None:
        self.pty.replug()
        self._notify()

    # ------------------------------------------------------------------ firmware
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._reports)
            task_status.started()
            line = bytearray()
            while True:
                data = await self.pty.read()
                if not self.answering:
                    self._notify()
                    continue
                for byte in data:
                    if self._pdu_wait is not None:
                        if byte == 0x1A:
                            await self._submit(line.decode("latin-1").strip())
                            line.clear()
                        elif byte == 0x1B:
                            self._pdu_wait = None
                            line.clear()
                            await self._reply("OK")
                        elif len(line) < 1024:
                            line.append(byte)
                        continue
                    if byte in (0x0D, 0x0A):
                        if line:
                            text = line.decode("latin-1").strip()
                            line.clear()
                            await self._command(text)
                        continue
                    if len(line) < 512:
                        line.append(byte)
                self._notify()

    async def _reports(self) -> None:
        async for reference, recipient in self._report_recv:
            await trio.sleep(0.01)
            await self.send_status_report(reference, recipient, 0)

    async def _reply(self, *lines: str) -> None:
        await self._write(b"".join(b"\r\n" + line.encode("latin-1") + b"\r\n" for line in lines))

    async def _submit(self, hex_pdu: str) -> None:
        self._pdu_wait = None
        try:
            submit = decode_pdu(hex_pdu, outgoing=True)
            if not isinstance(submit, Submit):
                raise PduError("not an SMS-SUBMIT")
        except PduError:
            self.invalid_submits.append(hex_pdu)
            await self._reply("+CMS ERROR: 304")
            return
        self._next_mr = (self._next_mr + 1) % 256
        self.submits.append(submit)
        self._record_sent(submit, hex_pdu, self._next_mr)
        await self._reply(f"+CMGS: {self._next_mr}", "OK")
        if submit.status_report_request and self.auto_status_reports:
            self._report_send.send_nowait((self._next_mr, submit.recipient))
        self._notify()

    def _record_sent(self, submit: Submit, pdu: str, reference: int) -> None:
        if submit.concat is not None and submit.concat.sequence > 1:
            for sms in reversed(self.sent):
                if sms.recipient == submit.recipient and len(sms.references) < submit.concat.total:
                    sms.text += submit.text
                    sms.references.append(reference)
                    sms.pdus.append(pdu)
                    return
        self.sent.append(
            SentSms(submit.recipient, submit.text, [reference], [pdu], submit.status_report_request)
        )

    async def _command(self, text: str) -> None:
        self.commands.append(text)
        self._notify()
        upper = text.upper()
        if self.echo:
            await self._write(text.encode("latin-1") + b"\r")
        for prefix, urc in list(self._inject):
            if upper.startswith(prefix):
                self._inject.remove((prefix, urc))
                await self._write(urc)
                break
        if not upper.startswith("AT"):
            return
        for failure in self._failures:
            prefix, code, remaining, cms = failure
            if upper.startswith(prefix) and remaining != 0:
                if remaining is not None:
                    failure[2] = remaining - 1
                await self._reply(f"+CM{'S' if cms else 'E'} ERROR: {code}")
                return
        body = upper[2:]
        if body in ("", "E0", "E1", "Z", "&F"):
            if body in ("E0", "E1"):
                self.echo = body == "E1"
            await self._reply("OK")
        elif body.startswith("+CMEE="):
            await self._reply("OK")
        elif body in ("+CGMM", "I"):
            await self._reply(self.model, "OK")
        elif body == "+CPIN?":
            if self.sim_not_ready_polls > 0:
                self.sim_not_ready_polls -= 1
                await self._reply("+CME ERROR: 14")
            else:
                await self._reply(f"+CPIN: {'READY' if self.sim_unlocked else 'SIM PIN'}", "OK")
        elif body.startswith("+CPIN="):
            if text.partition("=")[2].strip().strip('"') == self.pin:
                self.sim_unlocked = True
                await self._reply("OK")
            else:
                await self._reply("+CME ERROR: 16")
        elif not self.sim_unlocked and body.startswith(("+CMG", "+CPMS", "+CNMI")):
            await self._reply("+CME ERROR: 11")
        elif body.startswith(("+CMGF=0", "+CNMI=", "+CLIP=")):
            await self._reply("OK")
        elif body.startswith("+CPMS="):
            used = len(self.storage)
            await self._reply(f"+CPMS: {used},30,{used},30,{used},30", "OK")
        elif body.startswith("+CREG="):
            self.creg_mode = int(body[6:] or 0) if body[6:].isdigit() else 0
            await self._reply("OK")
        elif body == "+CREG?":
            await self._reply(f"+CREG: {self.creg_mode},{self.registration}", "OK")
        elif body == "+CSQ":
            await self._reply(f"+CSQ: {self.signal},99", "OK")
        elif body.startswith("+CMGL"):
            lines = []
            for index in sorted(self.storage):
                pdu = self.storage[index]
                lines += [f"+CMGL: {index},1,,{max(len(pdu) // 2 - 1, 0)}", pdu]
            await self._reply(*lines, "OK")
        elif body.startswith("+CMGR="):
            index = body[6:]
            if index.isdigit() and int(index) in self.storage:
                pdu = self.storage[int(index)]
                await self._reply(f"+CMGR: 1,,{max(len(pdu) // 2 - 1, 0)}", pdu, "OK")
            else:
                await self._reply("+CMS ERROR: 321")
        elif body.startswith("+CMGD="):
            index = body[6:].split(",")[0]
            if index.isdigit():
                self.storage.pop(int(index), None)
                self.deleted.append(int(index))
                await self._reply("OK")
            else:
                await self._reply("ERROR")
        elif body.startswith("+CMGS="):
            length = body[6:]
            if not length.isdigit() or not 7 <= int(length) <= 180:
                await self._reply("+CMS ERROR: 304")
                return
            self._pdu_wait = int(length)
            await self._write(b"\r\n> ")
        elif body in ("H", "A"):
            await self._reply("OK")
        else:
            await self._reply("ERROR")
