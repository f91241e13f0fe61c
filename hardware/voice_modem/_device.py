"""The voice-modem driver: an analog (FXO) line as an engine :class:`~engine.abc.Device`.

Events it emits on :attr:`VoiceModem.events` (and to listeners): :class:`IncomingCall` once the caller
ID is in (after ``answer_after_rings`` rings), :class:`RingingStopped` when the caller gives up before
anyone answers, :class:`DtmfReceived` and :class:`CallEnded` during a call, and ``HealthChanged``.

A call is a :class:`VoiceCall`: 20 ms frames of 8 kHz 16-bit mono PCM (160 numpy int16 samples) in
and out, DTMF digits, ``hangup()``. When the modem goes away mid-call the call ends with reason
``device-disconnected``; the driver reconnects on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import trio

from engine import DeviceError
from engine.abc import Capability, DeviceHealth, DeviceSpec

from .._at import AtCommandError, AtMachine
from .._atport import AtCommandTimeout, AtPort
from .._device import DeviceUnresponsive, ReconnectPolicy, SerialDevice, timings_with_options
from .._serial import SerialSettings
from ._call import VoiceCall
from ._callerid import CallerId, CallerIdCollector
from ._dle import (
    END_OF_CALL_CODES,
    HOST_ABORT_RECEIVE,
    HOST_END_TRANSMIT,
    AudioData,
    DleDecoder,
    DleEvent,
    DtmfDebouncer,
    EndOfStream,
)
from ._profiles import (
    PROFILES,
    LineCapabilities,
    ModemProfile,
    VoiceFormat,
    check_dial_string,
    choose_voice_format,
    parse_vsm_list,
)
from ._ringing import RingState, RingTracker

__all__ = [
    "CallEnded",
    "DtmfReceived",
    "IncomingCall",
    "RingingStopped",
    "VoiceCall",
    "VoiceModem",
    "VoiceModemTimings",
]

log = logging.getLogger("centralita.hardware.voice_modem")



@dataclass(frozen=True)
class VoiceModemTimings:
    command_timeout: float = 2.0
    #: Idle keep-alive: an ``AT`` this often proves the modem still answers.
    keepalive: float = 15.0
    #: No RING for this long after the last one: the caller gave up.
    ring_gone: float = 8.0
    answer_after_rings: int = 2
    stream_end_timeout: float = 2.0
    #: After dialling out on a line without answer supervision: listen this long for busy or dial
    #: tone before counting the call as answered (nothing else can tell us).
    answer_wait: float = 4.0


@dataclass(frozen=True)
class IncomingCall:
    device: str
    caller_id: CallerId
    rings: int
    #: Seconds between RINGs, once two have come.
    cadence: float | None = None


@dataclass(frozen=True)
class RingingStopped:
    device: str
    caller_id: CallerId
    rings: int


@dataclass(frozen=True)
class DtmfReceived:
    device: str
    digit: str


@dataclass(frozen=True)
class CallEnded:
    device: str
    reason: str


class VoiceModem(SerialDevice):
    capabilities = Capability.VOICE_LINE | Capability.AUDIO | Capability.DTMF_IN | Capability.CALLER_ID

    def __init__(
        self,
        spec: DeviceSpec,
        context: Any = None,
        *,
        timings: VoiceModemTimings | None = None,
        reconnect: ReconnectPolicy | None = None,
    ) -> None:
        profile = PROFILES.get(spec.profile)
        if profile is None:
            raise DeviceError(
                f"device {spec.name}: unknown voice-modem profile {spec.profile!r} "
                f"(known: {', '.join(PROFILES)})"
            )
        self.profile: ModemProfile = profile
        if profile.line.reports_answer:
            # Per instance: the dialer runs predictive campaigns only when every line has this.
            self.capabilities = type(self).capabilities | Capability.ANSWER_SUPERVISION
        options = dict(spec.options)
        self.timings = timings_with_options(timings or VoiceModemTimings(), options, spec.name)
        super().__init__(
            spec,
            context,
            serial=SerialSettings(
                int(options.get("baudrate", profile.baudrate)), rtscts=bool(options.get("rtscts", False))
            ),
            reconnect=reconnect,
        )
        self.port: AtPort | None = None
        self.voice_format: VoiceFormat | None = None
        self.identity = ""
        self.caller_id_armed = False  # AT+VCID=1 (or the profile's equivalent) accepted
        #: the caller ID of the last call offered on this line, for technicians checking the line
        self.last_caller_id: dict[str, Any] | None = None
        self.call: VoiceCall | None = None
        self.ringing = RingTracker(
            answer_after=self.timings.answer_after_rings, ring_gone=self.timings.ring_gone
        )
        self._decoder: DleDecoder | None = None
        self._debounce = DtmfDebouncer()
        self._stream_ended = trio.Event()
        self._answering = False  # between "off hook" and the ring tracker hearing of it
        self._hanging_up: VoiceCall | None = None
        self._answer_settled = trio.Event()
        self._write_lock = trio.Lock()
        self._hangup_send, self._hangup_requests = trio.open_memory_channel[VoiceCall](8)
        # Frames from the media clock (write_frame) on their way to the serial port: ~0.5 s at most.
        self._transmit_send, self._transmit_queue = trio.open_memory_channel[tuple[VoiceCall, bytes]](25)
        self.counters.update(
            {
                "calls_in": 0,
                "calls_out": 0,
                "resyncs": 0,
                "resets": 0,
                "rings": 0,
                "unknown_dle_codes": 0,
                "caller_id_errors": 0,
            }
        )

    # ------------------------------------------------------------------ public
    @property
    def line_capabilities(self) -> LineCapabilities:
        return self.profile.line

    def describe(self) -> Mapping[str, Any]:
        return {
            **super().describe(),
            "profile": self.profile.name,
            "model": self.identity,
            "format": self.voice_format.fmt if self.voice_format else "",
            "in_call": self.call is not None,
            "caller_id": self.caller_id_armed,
            "last_caller_id": self.last_caller_id,
            "line": vars(self.profile.line),
        }

    def statistics(self) -> Mapping[str, Any]:
        stats = dict(super().statistics())
        if self.port is not None:
            stats.update(self.port.statistics())
        return stats

    async def answer(self) -> VoiceCall:
        """Take the line off hook and start full-duplex voice (or receive, on half-duplex modems)."""
        port = self._require_port()
        if self.call is not None:
            raise DeviceError(f"{self.name}: already in a call")
        # Once off hook the exchange stops ringing: the ring-gone timer must not call that "gave up".
        self._answering = True
        self._answer_settled = trio.Event()
        try:
            await port.command(self.profile.off_hook, timeout=self.timings.command_timeout)
            caller = self.ringing.answered()
        finally:
            self._answering = False
            self._answer_settled.set()
        call = await self._start_voice(caller, "in")
        self.counters["calls_in"] += 1
        return call

    async def dial(self, number: str) -> VoiceCall:
        """Dial ``number`` (digits, ``*#``, ``,`` pauses) and go to voice mode. Voice modems do not
        report answer unless ``line_capabilities.reports_answer``: the call is 'up' once dialled."""
        number = check_dial_string(number)
        port = self._require_port()
        if self.call is not None:
            raise DeviceError(f"{self.name}: already in a call")
        await port.command(self.profile.off_hook, timeout=self.timings.command_timeout)
        # Tone dialling takes ~0.2 s a digit and a ',' pauses ~2 s (S8): allow for both.
        dial_time = self.timings.command_timeout + 0.2 * len(number) + 2.0 * number.count(",")
        try:
            await port.command(f"{self.profile.dial_prefix}{number};", timeout=dial_time)
        except (AtCommandError, AtCommandTimeout):
            # BUSY, NO DIALTONE, NO CARRIER...: put the line back on hook before reporting it.
            try:
                await port.command(self.profile.on_hook, timeout=self.timings.command_timeout, check=False)
            except AtCommandTimeout:
                pass  # the keep-alive resynchronises a modem that stopped answering
            raise
        self.counters["calls_out"] += 1
        return await self._start_voice(CallerId(number=number), "out")

    # ------------------------------------------------------------------ session
    def _require_port(self) -> AtPort:
        if self.port is None or self.health() not in (DeviceHealth.OK, DeviceHealth.DEGRADED):
            raise DeviceError(f"{self.name}: modem not ready ({self.health().value} {self.health_reason})")
        return self.port

    async def _session(self, stream: Any) -> None:
        machine = AtMachine(urc_prefixes=("RING", "DATE", "TIME", "NMBR", "NAME", "MESG", "DDN_NMBR"))
        port = AtPort(stream, machine)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(port.run_reader)
            await self._initialise(port)
            self.port = port
            self._set_health(DeviceHealth.OK)
            nursery.start_soon(self._serve_urcs, port)
            nursery.start_soon(self._serve_remote_hangups)
            nursery.start_soon(self._serve_transmit)
            await self._keepalive(port)
            nursery.cancel_scope.cancel()

    async def _initialise(self, port: AtPort) -> None:
        t = self.timings.command_timeout
        if not await port.resync(timeout=t):
            raise DeviceUnresponsive(f"{self.name}: no answer to AT")
        await port.command(self.profile.reset, timeout=t * 2)
        for command in self.profile.init:
            await port.command(command, timeout=t)
        # Binary audio must never meet XON/XOFF (0x11/0x13 are ordinary samples): hardware flow
        # control when the cable has it, none otherwise (reliability.md V09).
        await port.command("AT&K3" if self.serial_settings.rtscts else "AT&K0", timeout=t)
        try:
            ident = await port.command("ATI3", timeout=t, check=False)
            self.identity = " ".join(ident.lines)[:80]
        except AtCommandTimeout:
            self.identity = ""
        await port.command(self.profile.voice_class, timeout=t)
        vsm = await port.command(self.profile.vsm_query, timeout=t)
        chosen = choose_voice_format(parse_vsm_list(list(vsm.lines)), self.profile.preferred_formats)
        if chosen is None:
            raise DeviceError(
                f"{self.name}: modem offers no 8 kHz voice format we can use ({' | '.join(vsm.lines)})"
            )
        await port.command(f"AT+VSM={chosen.cml},8000", timeout=t)
        self.voice_format = chosen
        await self._arm_caller_id(port)

    async def _arm_caller_id(self, port: AtPort) -> None:
        try:
            await port.command(self.profile.caller_id_on, timeout=self.timings.command_timeout)
            self.caller_id_armed = True
        except AtCommandError as exc:
            self.caller_id_armed = False
            log.warning("%s: caller ID not available: %s", self.name, exc)

    async def _keepalive(self, port: AtPort) -> None:
        """Prove every ``keepalive`` seconds, while idle, that the modem still answers; if not,
        resynchronise, then reset, then give up on this connection (the port is reopened)."""
        while True:
            await trio.sleep(self.timings.keepalive)
            if self.call is not None or self.ringing.state is not RingState.IDLE:
                continue
            try:
                await port.command("AT", timeout=self.timings.command_timeout)
                continue
            except (AtCommandTimeout, AtCommandError):
                pass
            self.counters["resyncs"] += 1
            self._set_health(DeviceHealth.DEGRADED, "modem stopped answering; resynchronising")
            if await port.resync(timeout=self.timings.command_timeout):
                self._set_health(DeviceHealth.OK)
                continue
            self.counters["resets"] += 1
            try:
                await port.command(self.profile.reset, timeout=self.timings.command_timeout * 2)
                await self._initialise(port)  # ATZ forgets +VCID and +FCLASS: set them again
                self._set_health(DeviceHealth.OK)
                continue
            except (AtCommandTimeout, AtCommandError, DeviceError):
                raise DeviceUnresponsive(
                    f"{self.name}: modem does not answer after resync and reset"
                ) from None

    async def _serve_urcs(self, port: AtPort) -> None:
        while True:
            deadline = self.ringing.next_timer()
            with trio.move_on_at(deadline if deadline is not None else float("inf")):
                urc = await port.urcs.receive()
                self._urc(urc.line)
                continue
            if self._answering:
                await self._answer_settled.wait()
                continue
            gone = self.ringing.handle_timer(trio.current_time())
            if gone is not None and self.call is None:
                self._emit(RingingStopped(self.name, gone.caller_id, gone.rings))

    def _urc(self, line: str) -> None:
        if line.upper().startswith("RING"):
            if self.call is not None:
                return
            self.counters["rings"] += 1
            offer = self.ringing.ring(trio.current_time())
            if offer is not None:
                cid = offer.caller_id
                self.last_caller_id = {"number": cid.number or cid.number_absent, "name": cid.name or cid.name_absent,
                                       "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
                self._emit(IncomingCall(self.name, offer.caller_id, offer.rings, offer.cadence))
            return
        if CallerIdCollector.is_caller_id_line(line):
            # Between the first and second ring; attached at the next RING.
            self.ringing.caller_id_line(line)
            self.counters["caller_id_errors"] = self.ringing.caller_id_errors

    # ------------------------------------------------------------------ voice mode
    async def _start_voice(self, caller: CallerId, direction: str) -> VoiceCall:
        port = self._require_port()
        assert self.voice_format is not None
        call = VoiceCall(self, self.voice_format, caller, direction)
        self._decoder = DleDecoder()
        self._stream_ended = trio.Event()
        start = (
            self.profile.full_duplex_start if self.profile.line.full_duplex else self.profile.receive_start
        )
        self.call = call
        try:
            # The bytes after CONNECT are voice: the reader diverts them from the AT parser at once.
            await port.command(start, timeout=self.timings.command_timeout, divert=self._voice_bytes)
        except BaseException:
            self.call = None
            raise
        return call

    def _voice_bytes(self, data: bytes) -> bytes | None:
        """Reader-task sink for voice mode. Returns the AT text after ``<DLE><ETX>``."""
        decoder, call = self._decoder, self.call
        assert decoder is not None
        rest: bytes | None = None
        for item in decoder.feed(data):
            if isinstance(item, AudioData):
                if call is not None:
                    call._audio(item.data)
            elif isinstance(item, DleEvent):
                self._line_event(item)
            elif isinstance(item, EndOfStream):
                rest = item.rest
                self._stream_ended.set()
        self.counters["unknown_dle_codes"] = decoder.unknown_codes
        return rest

    def _line_event(self, event: DleEvent) -> None:
        call = self.call
        if call is None:
            return
        digit = self._debounce.feed(event, trio.current_time())
        if digit:
            call._digit(digit)
            self._emit(DtmfReceived(self.name, digit))
            bus = getattr(self.context, "bus", None)
            if bus is not None:
                bus.publish("DTMFEnd", Digit=digit, DurationMs=0, Direction="Received", Device=self.name)
            return
        if event.kind in ("dtmf", "dtmf-start", "dtmf-end"):
            return
        call.stats["line_events"] += 1
        call.line_events.append(event.kind)
        if event.kind in END_OF_CALL_CODES and not call.ended.is_set():
            # The far end hung up: end the call now, put the line on hook in the background.
            call._end(f"remote-{event.kind}")
            self._emit(CallEnded(self.name, call.end_reason))
            try:
                self._hangup_send.send_nowait(call)
            except trio.WouldBlock:
                pass

    async def _serve_remote_hangups(self) -> None:
        async for call in self._hangup_requests:
            await self._hangup(call, call.end_reason)

    async def _serve_transmit(self) -> None:
        async for call, wire in self._transmit_queue:
            # Not once the hang-up has begun: after <DLE><ETX> the modem would read audio as commands.
            if call is self.call and not call.ended.is_set() and call is not self._hanging_up:
                await self._send_audio(wire)
                call.stats["frames_sent"] += 1

    async def _send_audio(self, wire: bytes) -> None:
        port = self._require_port()
        async with self._write_lock:
            await port.write_raw(wire)

    async def _leave_voice(self, port: AtPort) -> None:
        async with self._write_lock:
            await port.write_raw(HOST_END_TRANSMIT + HOST_ABORT_RECEIVE)
        with trio.move_on_after(self.timings.stream_end_timeout):
            await self._stream_ended.wait()
        if not self._stream_ended.is_set():
            port.divert(None)  # the modem never closed the stream: take the port back and resync
            await port.resync(timeout=self.timings.command_timeout)

    async def _hangup(self, call: VoiceCall, reason: str) -> None:
        if self.call is not call:
            return
        self._hanging_up = call
        port = self.port
        try:
            if port is not None:
                with trio.move_on_after(self.timings.stream_end_timeout * 3):
                    await self._leave_voice(port)
                    await port.command(
                        self.profile.on_hook, timeout=self.timings.command_timeout, check=False
                    )
        except DeviceError as exc:
            log.info("%s: hang-up on a failing modem: %s", self.name, exc)
        finally:
            if self.call is call:
                self.call = None
            if not call.ended.is_set():
                call._end(reason)
                self._emit(CallEnded(self.name, reason))
            call.released.set()

    async def _flash(self, call: VoiceCall) -> None:
        port = self._require_port()
        await self._leave_voice(port)
        await port.command(self.profile.flash, timeout=self.timings.command_timeout)
        self._decoder = DleDecoder()
        self._stream_ended = trio.Event()
        start = (
            self.profile.full_duplex_start if self.profile.line.full_duplex else self.profile.receive_start
        )
        await port.command(start, timeout=self.timings.command_timeout, divert=self._voice_bytes)

    async def _after_session(self) -> None:
        self.port = None
        call, self.call = self.call, None
        self.ringing.reset()
        if call is not None:
            if not call.ended.is_set():
                call._end("device-disconnected")
                self._emit(CallEnded(self.name, "device-disconnected"))
            call.released.set()
