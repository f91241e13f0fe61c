"""The SIP channel: the engine's handle on everything SIP (a :class:`engine.abc.VoiceChannel`).

It owns the transports, the message core, the security guard, the registrar, the trunks and the calls,
runs them in one nursery, and drives every protocol timer from one task.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from engine import Interaction, InteractionKind
from engine._events import safe_text
from engine.abc import AgentLeg, DialResult, VoiceChannel

from ._calls import CallManager
from ._core import SipCore
from ._outbound import OutboundCalls
from ._registrar import Registrar
from ._security import DEFAULT_SCANNER_USER_AGENTS, SecurityEvent, SecurityGuard, SecurityPolicy
from ._settings import SipSettings
from ._timers import Scheduler
from ._transport import ListenAddress, SipTransports, TransportLimits
from ._trunks import TrunkManager
from .sansio import ParseLimits

__all__ = ["SipChannel"]

log = logging.getLogger("centralita.sip")
security_log = logging.getLogger("centralita.sip.security")


def _trunk_hosts(settings: SipSettings) -> set[str]:
    from .sansio import SipUri

    hosts = set()
    for trunk in settings.trunks:
        try:
            host = SipUri.parse(trunk.server).host.strip("[]")
            ipaddress.ip_address(host)
            hosts.add(host)
        except ValueError:
            continue
    return hosts


class SipChannel(VoiceChannel):
    """``[sip]``: phones register here, providers call in here, calls to agents go out from here."""

    name = "sip"
    kinds = frozenset({InteractionKind.VOICE})
    schemes = frozenset({"sip"})

    def __init__(self, context: Any) -> None:
        self.context = context
        settings = context.settings if context is not None and context.settings is not None else SipSettings()
        self.settings: SipSettings = settings
        self.name = getattr(context, "name", "sip") or "sip"
        sec = settings.security
        timers = settings.timers
        policy = SecurityPolicy(
            rate=sec.rate,
            burst=sec.burst,
            max_failures_per_source=sec.max_failures_per_source,
            max_failures_per_user=sec.max_failures_per_user,
            failure_window=sec.failure_window,
            ban_time=sec.ban_time,
            user_lock_time=sec.user_lock_time,
            scanner_user_agents=DEFAULT_SCANNER_USER_AGENTS + tuple(sec.scanner_user_agents),
            max_transactions_per_source=sec.max_transactions_per_source,
            trusted=frozenset(sec.trusted) | _trunk_hosts(settings),
        )
        self.guard = SecurityGuard(policy)
        self.scheduler = Scheduler()
        self.transports = SipTransports(
            settings.listen,
            self._deliver,
            limits=TransportLimits(
                max_message=sec.max_message_size,
                idle_timeout=timers.tcp_idle_timeout,
                message_timeout=timers.tcp_message_timeout,
                max_connections=sec.max_tcp_connections,
                max_connections_per_source=sec.max_tcp_connections_per_source,
            ),
        )
        self.core = SipCore(
            self.transports.send_nowait,
            self.scheduler,
            self.guard,
            trio.current_time,
            t1=timers.t1,
            t2=timers.t2,
            t4=timers.t4,
            limits=ParseLimits(max_message=sec.max_message_size, max_headers=sec.max_headers),
            user_agent=settings.user_agent,
            on_security_event=self._security_event,
        )
        store = getattr(context, "store", None)
        self.registrar = Registrar(self, store)
        self.trunks = TrunkManager(self)
        self.calls = CallManager(self)
        self.outbound = OutboundCalls(self, self.calls)
        self.nursery: trio.Nursery | None = None
        self._wake = trio.Event()
        self.scheduler.on_earlier = self._wake_timer_task
        self._ready = False
        self._sink: socket.socket | None = None
        #: where SDP of calls the engine answers itself points when no media framework is wired in
        self.sink_port = 9
        self._tts: Any = None  # engine.media.TextToSpeech, made on first use
        self._tts_missing_logged = False

    # ---------------------------------------------------------------------------------------- lifecycle

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                bound: list[ListenAddress] = await nursery.start(self.transports.run)
                for address in bound:
                    self.core.local.setdefault(address.transport, self._advertised(address))
                self._open_sink()
                nursery.start_soon(self._timer_loop)
                await self.registrar.load()
                self.trunks.start()
                self._ready = True
                task_status.started(bound)
                await trio.sleep_forever()
        finally:
            self._ready = False
            self.nursery = None

    async def aclose(self) -> None:
        await self.transports.aclose()
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _open_sink(self) -> None:
        # A bound (never read) UDP port so peers' RTP to engine-answered calls lands somewhere quiet
        # instead of drawing ICMP errors; the media framework replaces it when wired in.
        host = self.core.local.get("udp", next(iter(self.core.local.values()))).host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            sink = socket.socket(family, socket.SOCK_DGRAM)
            sink.bind((host, 0))
        except OSError:
            return
        self._sink = sink
        self.sink_port = sink.getsockname()[1]

    def ready(self) -> bool:
        return self._ready

    @property
    def bound(self) -> list[ListenAddress]:
        """The addresses actually listened on (port 0 resolved): for status pages and tests."""
        return list(self.transports.bound)

    def statistics(self) -> Mapping[str, Any]:
        return {
            "listening": [str(a) for a in self.transports.bound],
            "transport": self.transports.statistics(),
            "messages": self.core.statistics(),
            "security": self.guard.statistics(),
            "registrations": self.registrar.statistics(),
            "trunks": self.trunks.statistics(),
            "calls": self.calls.statistics(),
            "outbound": self.outbound.statistics(),
        }

    def _advertised(self, address: ListenAddress) -> ListenAddress:
        host = self.settings.external_host or address.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return ListenAddress(address.transport, host, address.port)

    # ------------------------------------------------------------------------------------ VoiceChannel

    def endpoint_reachable(self, endpoint: str) -> bool:
        return self.registrar.reachable(endpoint)

    async def offer(self, interaction: Interaction, agent: str, endpoint: str) -> None:
        await self.calls.offer(interaction, agent, endpoint)

    async def hangup(self, interaction: Interaction, cause: str = "normal") -> None:
        self.calls.hangup(interaction, cause)

    async def ring_agent(self, interaction: Interaction, agent: str, endpoint: str) -> AgentLeg:
        """Ring a SIP agent for another channel's caller (an analog line): see ``_crosscalls``."""
        from ._crosscalls import ring_for

        return await ring_for(self.calls, interaction, agent, endpoint)

    async def answer(self, interaction: Interaction) -> bool:
        """Answer a ringing inbound call with the engine's own media (IVR, announcements)."""
        call = self.calls.calls.get(interaction.id)
        return call is not None and self.calls.answer_caller(call)

    async def play(self, interaction: Interaction, *, prompt: str | None = None, text: str | None = None) -> None:
        """Play a prompt, or speak ``text`` (espeak-ng, cached as WAV), to a caller the engine answered.
        With the engine's media framework running the audio is played on the call's RTP endpoint until
        it ends; without it there is no audio path of our own and this returns at once (the flow goes on
        as if the prompt had ended). Without espeak-ng, text is logged and skipped."""
        if text and not prompt:
            spoken = await self._speak(interaction, text)
            if spoken is not None:
                await self.calls.play_loaded(interaction, spoken)
            return
        await self.calls.play(interaction, prompt)

    async def _speak(self, interaction: Interaction, text: str) -> Any:
        if not self.calls.can_play(interaction):
            return None
        engine = getattr(self.context, "engine", None)
        if engine is None:
            return None
        if self._tts is None:
            from engine.media import TextToSpeech

            self._tts = TextToSpeech(engine.config.data_dir / "cache" / "tts")
        from engine.media import TtsUnavailableError

        language = engine.config.media.language or "en"
        try:
            return await self._tts.synthesize(text, voice=language)
        except TtsUnavailableError as exc:
            if not self._tts_missing_logged:
                self._tts_missing_logged = True
                log.warning("sip: text is not spoken to callers: %s", exc)
        except Exception as exc:  # a voice espeak-ng lacks, a timeout: the flow goes on
            log.warning("sip: text-to-speech failed for %s (%s): %s", interaction.id, safe_text(text, 60), exc)
        return None

    def hold_music(self, interaction: Interaction, prompt: Any) -> bool:
        """Loop ``prompt`` to a queued caller the engine has answered and anchored (see ``VoiceChannel``)."""
        return self.calls.hold_music(interaction, prompt)

    async def record(self, interaction: Interaction, path: Path, *, max_seconds: float, silence_seconds: float) -> float:
        """Record the caller (voicemail) from the anchored call's RTP endpoint into an 8 kHz mono WAV."""
        return await self.calls.record(interaction, path, max_seconds=max_seconds, silence_seconds=silence_seconds)

    async def transfer(self, interaction: Interaction, destination: str) -> None:
        """Blind transfer of an answered caller (IVR ``transfer`` nodes): to a registered SIP user, or to
        an outside number through an outbound trunk (``engine.check_dial`` first; the outside party is a
        call of its own, with its own CDR, bridged to the caller on the media engine).

        A transfer that fails (refused number, busy, no answer) hangs the caller up with the cause
        ``transfer-failed``. NotImplementedError: this call's audio does not pass through the engine."""
        call = self.calls.calls.get(interaction.id)
        if call is None:
            return  # the caller is gone
        target = destination.strip()
        for prefix in ("sip:", "tel:"):
            target = target.removeprefix(prefix)
        user = target.split("@", 1)[0].split(";", 1)[0]
        if user in self.registrar.users:
            if not self.registrar.contacts(user):
                await self._transfer_failed(interaction, f"SIP user {user} is not registered")
                return
            await self.calls._transfer(call, user)
            return
        await self._transfer_out(interaction, call, user)

    async def _transfer_out(self, interaction: Interaction, call: Any, number: str) -> None:
        from engine import Direction, InteractionState

        engine = getattr(self.context, "engine", None)
        if call.anchor is None or engine is None:
            raise NotImplementedError("a transfer to an outside number needs the engine's media framework")
        try:
            number = engine.check_dial(number, caller=interaction.from_, purpose="transfer")
            self.trunks.outbound_trunk(number)
        except ValueError as exc:  # DialRefused is a ValueError too
            await self._transfer_failed(interaction, str(exc))
            return
        outside = engine.new_interaction(
            InteractionKind.VOICE, Direction.OUTBOUND, from_=interaction.from_, to=number, channel=self.name,
            caller_name=interaction.caller_name, attributes={"transfer_of": interaction.id},
        )
        interaction.attributes["transferred_to"] = number
        try:
            result = await self.outbound.dial(
                outside, number, caller_id=interaction.from_, ring_timeout=self.settings.timers.ring_timeout
            )
        except BaseException:
            self.calls.hangup(outside)
            with trio.CancelScope(shield=True):
                await engine.end_interaction(outside, cause="transfer-cancelled")
            raise
        if result.outcome != "answered":
            from engine import Disposition

            disposition = {"busy": Disposition.BUSY, "no-answer": Disposition.NO_ANSWER,
                           "congestion": Disposition.CONGESTION}.get(result.outcome, Disposition.FAILED)
            await engine.end_interaction(outside, cause=result.outcome, disposition=disposition)
            await self._transfer_failed(interaction, f"{number}: {result.outcome}")
            return
        if outside.state is not InteractionState.ACTIVE:
            outside.transition(InteractionState.ACTIVE)
        outside_call = self.calls.calls.get(outside.id)
        if outside_call is None or not self.calls.link(call, outside_call):
            # The caller hung up while the number rang (or the outside party already left).
            self.calls.hangup(outside)
            await engine.end_interaction(outside, cause="caller-gone")
            return
        log.info("sip: %s transferred to %s (%s)", interaction.id, number, outside.id)

    async def _transfer_failed(self, interaction: Interaction, why: str) -> None:
        log.warning("sip: transfer of %s failed: %s", interaction.id, safe_text(why, 120))
        self.calls.hangup(interaction, "transfer-failed")
        engine = getattr(self.context, "engine", None)
        if engine is not None:
            await engine.end_interaction(interaction, cause="transfer-failed")

    async def dial(self, interaction: Interaction, number: str, *, caller_id: str, ring_timeout: float) -> DialResult:
        """Call a customer for the dialer or a callback: a registered SIP user, or a number through an
        outbound trunk (see ``docs/sip.md`` for the trunk choice and the outcome table)."""
        return await self.outbound.dial(interaction, number, caller_id=caller_id, ring_timeout=ring_timeout)

    async def connect_agent(self, interaction: Interaction, agent: str, endpoint: str) -> bool:
        """Ring ``agent``'s phone and bridge it to the answered customer of ``interaction``."""
        return await self.outbound.connect_agent(interaction, agent, endpoint)

    def media_of(self, interaction: Interaction) -> Any:
        """The engine's RTP endpoint facing the customer of ``interaction`` (None when the call is not
        anchored on ``engine.media``): what answering-machine detection and supervisors listen to."""
        return self.outbound.media_of(interaction)

    async def originate(self, body: Mapping[str, Any]) -> Interaction:
        """``POST /api/v1/calls``: ``{"to": "1001" or a number, "from": ..., "purpose": ...}``."""
        return await self.outbound.originate(dict(body))

    # -------------------------------------------------------------------------------------- internals

    def spawn(self, fn: Any, *args: Any) -> None:
        """Run async follow-up work (store writes, engine calls) in the channel's nursery."""
        if self.nursery is not None:
            self.nursery.start_soon(fn, *args)

    def _deliver(self, data: bytes, peer: Any) -> None:
        self.core.deliver(data, peer)

    def _wake_timer_task(self) -> None:
        self._wake.set()

    async def _timer_loop(self) -> None:
        while True:
            if self._wake.is_set():
                self._wake = trio.Event()
            deadline = self.scheduler.next_timer()
            with trio.move_on_at(deadline if deadline is not None else float("inf")):
                await self._wake.wait()
            self.scheduler.handle_timer(trio.current_time())

    def _expire_bans(self, now: float) -> None:
        for event in self.guard.handle_timer(now):
            self._security_event(event)

    def security_event(self, kind: str, peer: Any, *, username: str = "", detail: str = "") -> None:
        """Report a refusal the call layer decided (a destination outside the allowlist)."""
        self._security_event(SecurityEvent(kind, getattr(peer, "host", str(peer)), username, detail))

    def _security_event(self, event: SecurityEvent) -> None:
        if event.kind in ("banned", "user_locked"):
            # The guard is sans-IO: wake it when the ban or lock it just imposed runs out.
            policy = self.guard.policy
            length = policy.ban_time if event.kind == "banned" else policy.user_lock_time
            self.scheduler.call_at(trio.current_time() + length, self._expire_bans)
        # The source address comes from the socket layer (trustworthy); the rest is attacker-controlled.
        security_log.warning(
            "sip security: %s from %s user=%s %s",
            event.kind,
            event.source,
            safe_text(event.username, 80),
            safe_text(event.detail, 120),
        )
        bus = getattr(self.context, "bus", None)
        if bus is not None:
            bus.publish(
                "SipSecurityEvent",
                Kind=event.kind,
                RemoteAddress=event.source,
                Username=safe_text(event.username, 80),
                Detail=safe_text(event.detail, 120),
            )
