"""The GSM-modem driver (3GPP TS 27.005/27.007): SIM PIN, registration, signal, SMS in PDU mode.

It offers the SMS capability: :meth:`GsmModem.send_sms` and a message handler set with
:meth:`GsmModem.set_message_handler`. A received message is deleted from the SIM only after the
handler has returned (the caller has stored it durably); if the handler fails, the message stays on
the SIM and is offered again at the next sweep (``AT+CMGL``), so nothing received is lost. The
``key`` of :class:`InboundSms` identifies a message across such repeats (for idempotent storage).

Faults: ``+CME ERROR`` 14 (SIM busy) / 515 (busy) is retried a bounded number of times with backoff;
after ``unhealthy_after`` failures in a row the modem is reported unhealthy (and the session restarts
when initialisation itself cannot finish). A SIM that is not ready at boot is waited for.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from engine import DeviceError
from engine.abc import Capability, DeviceHealth, DeviceSpec

from .._at import AtCommandError, AtMachine, CommandResult
from .._atport import AtCommandTimeout, AtPort
from .._device import ReconnectPolicy, SerialDevice, timings_with_options
from .._serial import SerialSettings
from ._pdu import Deliver, PduError, Reassembler, StatusReport, check_number, decode_pdu, encode_submit

__all__ = [
    "DeliveryReport",
    "GsmModem",
    "GsmTimings",
    "InboundSms",
    "IncomingVoiceCall",
    "RegistrationChanged",
    "SmsSendError",
]

log = logging.getLogger("centralita.hardware.gsm_modem")

RETRYABLE_CME = frozenset({14, 515})  # SIM busy; "busy, please wait"
SIM_NOT_READY_CME = frozenset({10, 13, 14})  # not inserted (yet), failure, busy
REGISTERED = {1: "home", 5: "roaming"}
REGISTRATION_TEXT = {
    0: "not searching",
    1: "registered (home)",
    2: "searching",
    3: "registration denied",
    4: "unknown",
    5: "registered (roaming)",
}


class SmsSendError(DeviceError):
    """The modem or the network refused an SMS. ``code`` is the ``+CMS ERROR`` number if any."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class GsmTimings:
    command_timeout: float = 3.0
    send_timeout: float = 30.0
    sim_wait: float = 2.0
    sim_attempts: int = 15
    retries: int = 3
    retry_backoff: float = 0.5
    unhealthy_after: int = 5
    poll_interval: float = 30.0


@dataclass(frozen=True)
class InboundSms:
    device: str
    sender: str
    text: str
    timestamp: _dt.datetime | None
    #: Stable across re-reads of the same message (store idempotently on it).
    key: str
    incomplete: bool = False
    #: Set when a stored PDU could not be decoded; ``raw_pdus`` keeps it so nothing is lost.
    error: str = ""
    raw_pdus: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeliveryReport:
    device: str
    reference: int
    recipient: str
    status: int
    delivered: bool
    failed: bool


@dataclass(frozen=True)
class IncomingVoiceCall:
    device: str
    number: str


@dataclass(frozen=True)
class RegistrationChanged:
    device: str
    status: int
    text: str


MessageHandler = Callable[[InboundSms], Awaitable[None]]
_QUOTED = re.compile(r"""["']""")


def parse_creg(value: str) -> int | None:
    """``+CREG:`` value (answer ``n,stat[,lac,ci]`` or URC ``stat[,lac,ci]``) -> stat. Tolerates empty
    LACs and odd quoting (gammu tests/at-creg-corner)."""
    fields = [f.strip() for f in _QUOTED.sub("", value).split(",")]
    numbers = [f for f in fields if f.isdigit()]
    if not fields or not fields[0].isdigit():
        return None
    # "n,stat,..." when the second field is a small number, else "stat,lac,ci" (URC form)
    if (
        len(fields) >= 2
        and fields[1].isdigit()
        and len(fields[1]) == 1
        and (len(fields) == 2 or len(fields) >= 4)
    ):
        return int(fields[1])
    return int(numbers[0]) if numbers else None


class GsmModem(SerialDevice):
    capabilities = Capability.SMS

    def __init__(
        self,
        spec: DeviceSpec,
        context: Any = None,
        *,
        on_message: MessageHandler | None = None,
        timings: GsmTimings | None = None,
        reconnect: ReconnectPolicy | None = None,
    ) -> None:
        options = dict(spec.options)
        self.timings = timings_with_options(timings or GsmTimings(), options, spec.name)
        super().__init__(
            spec, context, serial=SerialSettings(int(options.get("baudrate", 115200))), reconnect=reconnect
        )
        pin = str(options.get("pin", ""))
        if pin and not (pin.isdigit() and 4 <= len(pin) <= 8):
            raise DeviceError(f"device {spec.name}: pin must be 4 to 8 digits")
        self._pin = pin
        self._handler = on_message
        self.port: AtPort | None = None
        self.registration = -1
        self.signal: int | None = None
        self.sim_state = ""
        self.identity = ""
        self._consecutive_failures = 0
        self._reassembler = Reassembler(float(options.get("concat_timeout", 24 * 3600)))
        # SIM indexes to read (+CMTI) or routed PDUs (+CMT), processed by one fetcher task so the URC
        # loop never waits on the message handler.
        self._fetch_send, self._fetch_recv = trio.open_memory_channel[int | str](256)
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._in_flight: set[str] = set()
        self._send_lock = trio.Lock()
        self._next_concat_ref = 0
        self._handler_set = trio.Event()
        self.counters.update(
            {
                "sms_received": 0,
                "sms_sent": 0,
                "sms_send_failures": 0,
                "invalid_pdus": 0,
                "delivery_reports": 0,
                "cme_retries": 0,
                "handler_failures": 0,
                "duplicates": 0,
                "routed_dropped": 0,
            }
        )

    # ------------------------------------------------------------------ public (the SMS capability)
    def set_message_handler(self, handler: MessageHandler) -> None:
        """``await handler(sms)`` for every received message; return only once it is stored."""
        self._handler = handler
        self._handler_set.set()

    async def send_sms(self, number: str, text: str, *, status_report: bool = True) -> str:
        """Send ``text`` (split into parts as needed); returns the message reference(s), comma
        separated, that delivery reports will carry."""
        check_number(number)
        port = self._ready_port()
        if self.registration not in REGISTERED:
            raise SmsSendError(
                f"{self.name}: not registered on a network ({REGISTRATION_TEXT.get(self.registration, 'unknown')})"
            )
        async with self._send_lock:
            self._next_concat_ref = (self._next_concat_ref + 1) % 256
            parts = encode_submit(
                number, text, concat_reference=self._next_concat_ref, status_report=status_report
            )
            refs = []
            for pdu, length in parts:
                try:
                    result = await self._command(
                        port,
                        f"AT+CMGS={length}",
                        timeout=self.timings.send_timeout,
                        prompt_data=pdu.encode("ascii"),
                    )
                except AtCommandError as exc:
                    self.counters["sms_send_failures"] += 1
                    raise SmsSendError(
                        f"{self.name}: SMS to {number} refused: {exc.result.final}", exc.code
                    ) from None
                except DeviceError as exc:  # a timeout, or the port went away mid-command
                    self.counters["sms_send_failures"] += 1
                    raise SmsSendError(f"{self.name}: SMS to {number}: {exc}") from None
                values = result.info("+CMGS")
                refs.append(values[0].split(",")[0].strip() if values else "")
            self.counters["sms_sent"] += 1
            return ",".join(refs)

    def describe(self) -> Mapping[str, Any]:
        return {
            **super().describe(),
            "model": self.identity,
            "sim": self.sim_state,
            "registration": REGISTRATION_TEXT.get(self.registration, "unknown"),
            "signal": self.signal,
        }

    def statistics(self) -> Mapping[str, Any]:
        stats = dict(super().statistics())
        if self.port is not None:
            stats.update(self.port.statistics())
        return stats

    # ------------------------------------------------------------------ commands with bounded retries
    def _ready_port(self) -> AtPort:
        if self.port is None or self.health() not in (
            DeviceHealth.OK,
            DeviceHealth.DEGRADED,
            DeviceHealth.UNHEALTHY,
        ):
            raise SmsSendError(
                f"{self.name}: modem not connected ({self.health().value} {self.health_reason})"
            )
        return self.port

    async def _command(
        self, port: AtPort, command: str, *, timeout: float | None = None, **kwargs: Any
    ) -> CommandResult:
        delay = self.timings.retry_backoff
        attempt = 0
        while True:
            try:
                result = await port.command(
                    command, timeout=timeout or self.timings.command_timeout, **kwargs
                )
            except AtCommandError as exc:
                self._failure(str(exc))
                if (
                    exc.code in RETRYABLE_CME
                    and attempt < self.timings.retries
                    and "prompt_data" not in kwargs
                ):
                    attempt += 1
                    self.counters["cme_retries"] += 1
                    await trio.sleep(delay)
                    delay *= 2
                    continue
                raise
            except AtCommandTimeout as exc:
                self._failure(str(exc))
                raise
            self._success()
            return result

    def _failure(self, reason: str) -> None:
        self._consecutive_failures += 1
        if self._consecutive_failures >= self.timings.unhealthy_after:
            self._set_health(
                DeviceHealth.UNHEALTHY,
                f"{self._consecutive_failures} failed commands in a row; last: {reason}",
            )

    def _success(self) -> None:
        self._consecutive_failures = 0
        if self.health() is DeviceHealth.UNHEALTHY and self.port is not None:
            self._set_health(DeviceHealth.OK)

    # ------------------------------------------------------------------ session
    async def _session(self, stream: Any) -> None:
        machine = AtMachine(
            urc_prefixes=(
                "RING",
                "+CMTI:",
                "+CMT:",
                "+CDS:",
                "+CDSI:",
                "+CLIP:",
                "+CREG:",
                "^",
                "+CUSD:",
                "+CRING:",
            ),
            two_line_urcs=("+CMT:", "+CDS:"),
        )
        port = AtPort(stream, machine)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(port.run_reader)
            nursery.start_soon(self._serve_urcs, port)
            await self._initialise(port)
            self.port = port
            self._set_health(
                DeviceHealth.OK if self.registration in REGISTERED else DeviceHealth.DEGRADED,
                "" if self.registration in REGISTERED else "not registered",
            )
            nursery.start_soon(self._fetcher, port)
            await self._sweep(port)
            await self._poll(port)

    async def _initialise(self, port: AtPort) -> None:
        t = self.timings.command_timeout
        if not await port.resync(timeout=t):
            raise DeviceError(f"{self.name}: no answer to AT")
        await self._command(port, "ATE0")
        await self._command(port, "AT+CMEE=1")
        try:
            ident = await port.command("AT+CGMM", timeout=t, check=False)
            self.identity = " ".join(ident.lines)[:80]
        except AtCommandTimeout:
            pass
        await self._unlock_sim(port)
        await self._command(port, "AT+CMGF=0")
        await self._command(port, 'AT+CPMS="SM","SM","SM"', timeout=t)
        # Store every SMS and tell us (+CMTI); route status reports (+CDS). Storing (not +CMT routing)
        # is what lets us delete only after the engine has stored the message.
        await self._command(port, "AT+CNMI=2,1,0,1,0")
        await self._command(port, "AT+CLIP=1")
        await self._command(port, "AT+CREG=1")
        await self._refresh_status(port)

    async def _unlock_sim(self, port: AtPort) -> None:
        for _attempt in range(self.timings.sim_attempts):
            try:
                result = await port.command("AT+CPIN?", timeout=self.timings.command_timeout)
            except AtCommandError as exc:
                if exc.code in SIM_NOT_READY_CME:
                    self.sim_state = f"not ready (+CME ERROR: {exc.code})"
                    await trio.sleep(self.timings.sim_wait)
                    continue
                raise
            state = (result.info("+CPIN") or [""])[0].strip().upper()
            self.sim_state = state
            if state == "READY":
                return
            if state == "SIM PIN":
                if not self._pin:
                    raise DeviceError(f"{self.name}: the SIM needs a PIN; set pin in the device's options")
                try:
                    await port.command(f'AT+CPIN="{self._pin}"', timeout=self.timings.command_timeout * 3)
                except AtCommandError as exc:
                    # Never retry a wrong PIN: three tries lock the SIM.
                    self._pin = ""
                    raise DeviceError(
                        f"{self.name}: the SIM refused the PIN ({exc.result.final}); fix it in the config"
                    ) from None
                continue
            if state in ("SIM PUK", "SIM PIN2", "SIM PUK2", "PH-SIM PIN"):
                raise DeviceError(f"{self.name}: the SIM is locked ({state}); unlock it in a phone")
            await trio.sleep(self.timings.sim_wait)  # NOT READY and friends: wait for it
        raise DeviceError(f"{self.name}: the SIM never became ready ({self.sim_state})")

    async def _refresh_status(self, port: AtPort) -> None:
        creg = await self._command(port, "AT+CREG?")
        for value in creg.info("+CREG"):
            stat = parse_creg(value)
            if stat is not None:
                self._registration(stat)
        csq = await self._command(port, "AT+CSQ")
        for value in csq.info("+CSQ"):
            rssi = value.split(",")[0].strip()
            if rssi.isdigit():
                signal = None if int(rssi) == 99 else int(rssi)
                if signal != self.signal:
                    self.signal = signal
                    self.write_health_snapshot()

    def _registration(self, stat: int) -> None:
        if stat == self.registration:
            return
        self.registration = stat
        self._emit(RegistrationChanged(self.name, stat, REGISTRATION_TEXT.get(stat, "unknown")))
        if self.port is not None:
            if stat in REGISTERED:
                if self.health() is DeviceHealth.DEGRADED:
                    self._set_health(DeviceHealth.OK)
            elif self.health() is DeviceHealth.OK:
                self._set_health(DeviceHealth.DEGRADED, f"network: {REGISTRATION_TEXT.get(stat, 'unknown')}")

    async def _poll(self, port: AtPort) -> None:
        while True:
            await trio.sleep(self.timings.poll_interval)
            try:
                await self._refresh_status(port)
                await self._sweep(port)
            except (AtCommandError, AtCommandTimeout) as exc:
                log.info("%s: status poll failed: %s", self.name, exc)
                if not await port.resync(timeout=self.timings.command_timeout):
                    raise DeviceError(f"{self.name}: modem stopped answering") from None

    # ------------------------------------------------------------------ URCs and inbound messages
    async def _serve_urcs(self, port: AtPort) -> None:
        async for urc in port.urcs:
            line = urc.line
            upper = line.upper()
            if upper.startswith("+CMTI:"):
                fields = [f.strip().strip('"') for f in line[6:].split(",")]
                # '+CMTI: "SM",1,"MMS PUSH",2,1' has extra fields: the index is still the second.
                if len(fields) >= 2 and fields[1].isdigit():
                    try:
                        self._fetch_send.send_nowait(int(fields[1]))
                    except trio.WouldBlock:
                        pass  # the next sweep lists it
            elif upper.startswith("+CMT:"):
                try:
                    self._fetch_send.send_nowait(urc.data)
                except trio.WouldBlock:
                    self.counters["routed_dropped"] += 1  # the network re-sends unacknowledged SMS
            elif upper.startswith("+CDS:"):
                self._status_report(urc.data)
            elif upper.startswith("+CLIP:"):
                number = line[6:].split(",")[0].strip().strip('"')
                self._emit(IncomingVoiceCall(self.name, number[:32]))
            elif upper.startswith("+CREG:"):
                stat = parse_creg(line[6:])
                if stat is not None:
                    self._registration(stat)

    def _status_report(self, pdu: str) -> None:
        try:
            report = decode_pdu(pdu)
        except PduError as exc:
            self.counters["invalid_pdus"] += 1
            log.warning("%s: undecodable status report: %s", self.name, exc)
            return
        if isinstance(report, StatusReport):
            self.counters["delivery_reports"] += 1
            self._emit(
                DeliveryReport(
                    self.name,
                    report.reference,
                    report.recipient,
                    report.status,
                    report.delivered,
                    report.failed,
                )
            )

    async def _fetcher(self, port: AtPort) -> None:
        async for index in self._fetch_recv:
            if isinstance(index, str):  # a routed +CMT PDU: not stored on the SIM, nothing to delete
                await self._inbound_pdus([(index, None)])
                continue
            try:
                result = await self._command(port, f"AT+CMGR={index}")
            except (AtCommandError, AtCommandTimeout) as exc:
                log.info("%s: reading SMS %d failed (%s); the next sweep retries", self.name, index, exc)
                continue
            pdus = [line for line in result.lines if not line.upper().startswith("+CMGR:")]
            if pdus:
                await self._inbound_pdus([(pdus[0], index)], port)

    async def _sweep(self, port: AtPort) -> None:
        """List every stored message (``AT+CMGL=4``: all) and process it: the way back after a restart,
        a failed handler or a missed ``+CMTI``."""
        try:
            result = await self._command(port, "AT+CMGL=4", timeout=self.timings.command_timeout * 3)
        except AtCommandError as exc:
            log.info("%s: listing stored SMS failed: %s", self.name, exc)
            return
        items: list[tuple[str, int | None]] = []
        index: int | None = None
        for line in result.lines:
            if line.upper().startswith("+CMGL:"):
                head = line[6:].split(",")[0].strip()
                index = int(head) if head.isdigit() else None
            elif index is not None:
                items.append((line, index))
                index = None
        if items:
            await self._inbound_pdus(items, port)

    async def _inbound_pdus(self, items: list[tuple[str, int | None]], port: AtPort | None = None) -> None:
        now = trio.current_time()
        for pdu, index in items:
            try:
                message = decode_pdu(pdu)
            except PduError as exc:
                self.counters["invalid_pdus"] += 1
                key = hashlib.sha1(pdu.encode("latin-1", "replace")).hexdigest()
                await self._deliver(
                    InboundSms(self.name, "", "", None, key, error=str(exc), raw_pdus=(pdu[:400],)),
                    (index,),
                    port,
                )
                continue
            if isinstance(message, StatusReport):
                self._status_report(pdu)
                if index is not None and port is not None:
                    await self._delete(port, [index])
                continue
            if not isinstance(message, Deliver):
                continue
            assembled = self._reassembler.add(message, (index, pdu), now)
            if assembled is not None:
                await self._deliver_assembled(assembled, port)
        for assembled in self._reassembler.handle_timer(now):
            await self._deliver_assembled(assembled, port)

    async def _deliver_assembled(self, assembled: Any, port: AtPort | None) -> None:
        keys = list(assembled.keys)
        stamp = assembled.timestamp.isoformat() if assembled.timestamp else ""
        digest = hashlib.sha1(f"{assembled.sender}\0{stamp}\0{assembled.text}".encode()).hexdigest()
        sms = InboundSms(
            self.name, assembled.sender, assembled.text, assembled.timestamp, digest, assembled.incomplete
        )
        await self._deliver(sms, tuple(index for index, _pdu in keys), port)

    async def _deliver(self, sms: InboundSms, indexes: tuple[int | None, ...], port: AtPort | None) -> None:
        if sms.key in self._in_flight:
            return  # the sweep and a +CMTI fetch met on one message: the first one handles it
        self._in_flight.add(sms.key)
        try:
            await self._deliver_once(sms, indexes, port)
        finally:
            self._in_flight.discard(sms.key)

    async def _deliver_once(
        self, sms: InboundSms, indexes: tuple[int | None, ...], port: AtPort | None
    ) -> None:
        if sms.key in self._delivered:
            self.counters["duplicates"] += 1  # stored before, its delete failed: only delete again
        else:
            if self._handler is None:
                await self._handler_set.wait()
            assert self._handler is not None
            try:
                await self._handler(sms)
            except Exception:
                self.counters["handler_failures"] += 1
                log.exception("%s: storing an SMS failed; it stays on the SIM and is retried", self.name)
                return
            self.counters["sms_received"] += 1
            self._delivered[sms.key] = None
            while len(self._delivered) > 1024:
                self._delivered.popitem(last=False)
            self._emit(sms)
        stored = [i for i in indexes if i is not None]
        if stored and port is not None:
            await self._delete(port, stored)

    async def _delete(self, port: AtPort, indexes: list[int]) -> None:
        for index in indexes:
            try:
                await self._command(port, f"AT+CMGD={index}")
            except (AtCommandError, AtCommandTimeout) as exc:
                log.info("%s: deleting SMS %d failed (%s); retried at the next sweep", self.name, index, exc)

    async def _after_session(self) -> None:
        self.port = None
