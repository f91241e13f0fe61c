"""The engine: one root nursery, services started in dependency order, graceful shutdown.

Start order: store, then channels and devices, then other services (routing, dialing, CRM outboxes),
then the console. Shutdown: stop taking new interactions, give live ones ``drain_timeout`` seconds,
then close everything in reverse order.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import trio

from . import _sdnotify, reporting
from ._bus import EventBus
from ._config import Config
from ._acd import AGENT_QUEUE_PREFIX, Acd
from ._context import PluginContext
from ._voicemail import MIGRATIONS as VOICEMAIL_MIGRATIONS
from ._voicemail import Voicemail
from ._dialer import MIGRATIONS as DIALER_MIGRATIONS
from ._dialer import DialerService
from ._ivr_runner import IvrRunner
from ._devices import DeviceDirectory
from ._events import safe_text
from ._dialplan import matches, specificity
from ._model import AgentState, Direction, Disposition, Interaction, InteractionKind, InteractionState
from ._plugins import PluginManager
from ._registry import (
    AmdDetectorRegistry,
    ChannelRegistry,
    CompliancePolicyRegistry,
    IvrNodeRegistry,
    CrmRegistry,
    DeviceDriverRegistry,
    HttpRouteRegistry,
    MigrationRegistry,
    ServiceRegistry,
)
from ._services import Supervisor
from .abc import DeviceSpec, EngineAPI, Service, VoiceChannel
from ._errors import ConfigError
from .dialing import register_amd_detectors, register_compliance_policies, validate_campaigns
from ._call_recording import CallRecorder
from ._crossconnect import CrossConnect
from .media import MediaEngine, PromptLibrary, apply_retention
from .store import Store, open_store

log = logging.getLogger("centralita.engine")

#: ended interactions kept in memory for the API (CDRs in the store keep all of them)
RECENT_INTERACTIONS = 1000


@dataclass(frozen=True)
class RouteTarget:
    kind: str  # "queue" | "flow" | "agent"
    name: str
    priority: int = 0


class Engine(EngineAPI):
    """A running Centralita. Channels talk to it through the interaction methods below."""

    def __init__(self, config: Config, plugins: PluginManager, *, demo: bool = False) -> None:
        self.config = config
        self.plugins = plugins
        self.hooks = plugins.hooks
        self.bus = EventBus()
        self.bus.add_listener(self.hooks.event)
        self.supervisor = Supervisor(
            backoff=config.engine.restart_backoff, backoff_max=config.engine.restart_backoff_max
        )
        self.devices = DeviceDirectory()
        self.channels: dict[str, Service] = {}
        self.crm: dict[str, Any] = {}
        #: live interactions; ended ones move to ``recent`` (bounded) so a long run does not grow
        self.interactions: dict[str, Interaction] = {}
        self.recent: collections.deque[Interaction] = collections.deque(maxlen=RECENT_INTERACTIONS)
        self.agent_settings = {a.id: a for a in config.agents}
        required = config.plugins.required
        self.ivr_nodes = self.hooks.register("centralita_register_ivr_nodes", IvrNodeRegistry(), required=required)
        self.compliance_policies = CompliancePolicyRegistry()
        register_compliance_policies(self.compliance_policies)  # the built-in ones (US FCC, UK Ofcom)
        self.hooks.register("centralita_register_compliance_policies", self.compliance_policies, required=required)
        self.amd_detectors = AmdDetectorRegistry()
        register_amd_detectors(self.amd_detectors)  # the built-in one ("cadence")
        self.hooks.register("centralita_register_amd_detectors", self.amd_detectors, required=required)
        self.acd = Acd(self)
        self.crossconnect = CrossConnect(self)
        #: starts and stops call recordings ([[queues]] record, POST .../record)
        self.recorder = CallRecorder(self)
        self.ivr: IvrRunner | None = None
        self.campaigns, problems = validate_campaigns(
            config.raw.get("campaigns"), agents=set(self.agent_settings), queues={q.name for q in config.queues},
            policies=set(self.compliance_policies), detectors=set(self.amd_detectors),
        )
        if problems:  # load_config reports these with file and line; this is a safety net for embedders
            raise ConfigError([f"{config.where(p.path)}: {p.path}: {p.message}" for p in problems])
        self.dialer: DialerService | None = None
        self.voicemail = Voicemail(self)
        media = config.media
        self.media = MediaEngine(
            host=media.host,
            port_range=(media.port_range[0], media.port_range[1]) if media.port_range else None,
            on_recording_alarm=self._recording_alarm,
        )
        self.prompts = PromptLibrary(config.data_dir / media.prompts, fallback=(media.language, "en"))
        self.recordings_dir = config.data_dir / media.recordings
        self.http_routes = HttpRouteRegistry()
        self.device_drivers = DeviceDriverRegistry()
        self._nursery: trio.Nursery | None = None
        #: ``centralita run --demo``: simulated callers and agents (and emulated devices, from plugins)
        self.demo = demo
        self.demo_rate = 6.0  # simulated arrivals per minute
        self.store: Store | None = None
        self.queue_log: reporting.QueueLog
        self.console: Any = None
        self.accepting = False
        self.started_at: float | None = None
        self._stop = trio.Event()
        self._routes = sorted(config.routes, key=lambda r: specificity(r.match))

    # ------------------------------------------------------------------------------------- lifecycle

    def reload(self, config: Config) -> None:
        """Apply a new, already validated configuration without dropping live interactions.

        Queues, agents and routes change at once; what is waiting keeps its place; calls in progress go
        on. Listen addresses, the data directory and plugin sets need a restart (logged when they differ).
        """
        for key in ("data_dir",):
            if getattr(config.engine, key) != getattr(self.config.engine, key):
                log.warning("reload: [engine] %s changed; it takes effect at the next restart", key)
        if config.console.listen != self.config.console.listen:
            log.warning("reload: [console] listen changed; it takes effect at the next restart")
        self.acd.reconfigure(config)
        self.config = config
        self.agent_settings = {a.id: a for a in config.agents}
        self._routes = sorted(config.routes, key=lambda r: specificity(r.match))
        log.info("configuration reloaded: %d queues, %d agents, %d routes", len(config.queues), len(config.agents), len(config.routes))

    def request_stop(self) -> None:
        """Begin a graceful shutdown (SIGTERM, SIGINT, API)."""
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[Engine] = trio.TASK_STATUS_IGNORED) -> None:
        migrations = MigrationRegistry()
        self.hooks.register("centralita_register_migrations", migrations, required=self.config.plugins.required)
        from . import console

        for migration in [*console.MIGRATIONS, *DIALER_MIGRATIONS, *VOICEMAIL_MIGRATIONS, *reporting.MIGRATIONS]:
            migrations.add(migration)
        async with open_store(self.config.data_dir / "centralita.db", migrations.migrations) as store:
            self.store = store
            self.queue_log = reporting.QueueLog(store)
            self.bus.add_listener(self.queue_log.listener)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self.supervisor.start(nursery, self.queue_log, name="queue-log", plugin="engine")
                await self.supervisor.start(nursery, self.media, name="media", plugin="engine")
                nursery.start_soon(self._housekeeping)
                await self._start_plugins(nursery)
                await self.supervisor.start(nursery, self.acd, name="acd", plugin="engine")
                self.ivr = IvrRunner(self, self.ivr_nodes)
                await self.supervisor.start(nursery, self.ivr, name="ivr", plugin="engine")
                if self.campaigns:
                    self.dialer = DialerService(self, self.campaigns)
                    await self.supervisor.start(nursery, self.dialer, name="dialer", plugin="engine")
                await self._start_services(nursery)
                await self._start_console(nursery)
                self.accepting = True
                self.started_at = time.time()
                log.info("engine ready")
                self.hooks.engine_started(self)
                _sdnotify.notify("READY=1")
                nursery.start_soon(self._watchdog)
                task_status.started(self)
                await self._stop.wait()
                log.info("engine stopping: no new interactions; draining for up to %.0fs", self.config.engine.drain_timeout)
                _sdnotify.notify("STOPPING=1")
                self.accepting = False
                self.hooks.engine_stopping(self)
                await self._drain()
                await self.supervisor.stop_all()
                nursery.cancel_scope.cancel()
        log.info("engine stopped")

    async def _drain(self) -> None:
        with trio.move_on_after(self.config.engine.drain_timeout):
            while any(i.state is not InteractionState.ENDED for i in self.interactions.values()):
                await trio.sleep(0.05)
        live = [i for i in self.interactions.values() if i.state is not InteractionState.ENDED]
        for interaction in live:
            await self.end_interaction(interaction, cause="shutdown")

    def _recording_alarm(self, recording: Any, error: OSError) -> None:
        log.error("recording %s stopped: %s (the call goes on)", getattr(recording, "path", "?"), error)
        self.bus.publish("RecordingFailed", File=str(getattr(recording, "path", "")), Cause=str(error))

    async def _housekeeping(self) -> None:
        """Once an hour: delete recordings past the retention period."""
        days = self.config.media.retention_days
        if not days:
            return
        while True:
            try:
                removed = await trio.to_thread.run_sync(apply_retention, self.recordings_dir, days)
                if removed:
                    log.info("retention: deleted %d old recordings", len(removed))
            except OSError as exc:
                log.error("retention of %s failed: %s", self.recordings_dir, exc)
            await trio.sleep(3600)

    async def _watchdog(self) -> None:
        interval = _sdnotify.watchdog_interval()
        if interval is None:
            return
        while True:
            _sdnotify.notify("WATCHDOG=1")
            await trio.sleep(interval)

    def _context(self, plugin: str, name: str, section: str | None = None) -> PluginContext:
        assert self.store is not None
        return PluginContext(
            plugin=plugin,
            name=name,
            settings=self.config.section(section or name),
            config=self.config,
            bus=self.bus,
            store=self.store,
            engine=self,
            data_dir=self.config.data_dir,
            devices=self.devices,
            media=self.media,
            prompts=self.prompts,
        )

    async def _start_plugins(self, nursery: trio.Nursery) -> None:
        required = self.config.plugins.required
        if self.demo:
            from ._demo import DemoChannel

            demo = DemoChannel(self, rate=self.demo_rate)
            self.channels[demo.name] = demo
            await self.supervisor.start(nursery, demo, name="channel:demo", plugin="engine")
        channels = self.hooks.register("centralita_register_channels", ChannelRegistry(), required=required)
        for name, factory in channels.items():
            owner = channels.owner(name)
            service = self._build(owner, name, lambda: factory(self._context(owner, name)))
            if service is None:
                log.info("channel %s is not configured; not started", name)
            else:
                self.channels[name] = service
                await self.supervisor.start(nursery, service, name=f"channel:{name}", plugin=owner)
        self.device_drivers = self.hooks.register("centralita_register_devices", DeviceDriverRegistry(), required=required)
        for spec in self.config.devices:
            await self.attach_device(DeviceSpec(spec.name, spec.driver, spec.port, spec.profile, dict(spec.options)),
                                     nursery=nursery)
        crms = self.hooks.register("centralita_register_crm_backends", CrmRegistry(), required=required)
        for name, factory in crms.items():
            owner = crms.owner(name)
            backend = self._build(owner, name, lambda: factory(self._context(owner, name)))
            if backend is not None:
                self.crm[name] = backend
        self.hooks.register("centralita_register_http_routes", self.http_routes, required=required)

    async def _start_services(self, nursery: trio.Nursery) -> None:
        required = self.config.plugins.required
        services = self.hooks.register("centralita_register_services", ServiceRegistry(), required=required)
        for name, factory in services.items():
            owner = services.owner(name)
            service = self._build(owner, name, lambda: factory(self._context(owner, name)))
            if service is not None:  # None: the plugin has nothing to run in this configuration
                await self.supervisor.start(nursery, service, name=f"service:{name}", plugin=owner)

    async def attach_device(self, spec: DeviceSpec, *, nursery: trio.Nursery | None = None) -> bool:
        """Build ``spec`` with its driver and run it supervised (at start, or later: demo and hot-plug).

        False when no installed driver claims it (logged with the drivers that exist).
        """
        factory = self.device_drivers.get(spec.driver)
        if factory is None:
            log.error("device %s: no driver %r is installed (known: %s)", spec.name, spec.driver, ", ".join(self.device_drivers))
            return False
        owner = self.device_drivers.owner(spec.driver)
        device = self._build(owner, spec.name, lambda: factory(spec, self._context(owner, spec.name, "devices")))
        if device is None:
            return False
        self.devices.add(spec.name, device)
        target = nursery or self._nursery
        assert target is not None, "attach_device needs a running engine"
        await self.supervisor.start(target, device, name=f"device:{spec.name}", plugin=owner)
        return True

    def _build(self, plugin: str, name: str, make: Any) -> Any:
        """Call ``make()`` (a plugin's factory, at once); None means "not configured, nothing to run".

        A factory that raises is logged with the plugin's name and the engine goes on without it,
        unless the plugin is required."""
        try:
            return make()
        except Exception as exc:
            if plugin in self.config.plugins.required:
                raise
            log.exception("plugin %s: building %s failed; continuing without it", plugin, name)
            self.plugins.fail(plugin, f"building {name} failed: {type(exc).__name__}: {exc}")
            return None

    async def _start_console(self, nursery: trio.Nursery) -> None:
        from .console import ConsoleServer

        assert self.store is not None
        self.console = ConsoleServer(
            self, self.bus, self.store, self.config.console, self.http_routes, data_dir=self.config.data_dir
        )
        await self.supervisor.start(nursery, self.console, name="console", plugin="engine")

    # ----------------------------------------------------------------------------------- interactions

    def new_interaction(
        self,
        kind: InteractionKind,
        direction: Direction,
        *,
        from_: str,
        to: str,
        channel: str,
        caller_name: str = "",
        attributes: Mapping[str, Any] | None = None,
        message: str | None = None,
    ) -> Interaction:
        """Register a new interaction (a call arriving, a message received) and announce it.

        ``message``: the first message's text, for messaging channels (it goes into the
        ``MessageReceived`` event so agents' desks can show it).

        Raises ``RuntimeError`` while the engine is starting or shutting down: the channel should refuse
        the interaction the way its protocol says (SIP 503, SMTP 4xx...).
        """
        if not self.accepting:
            raise RuntimeError("the engine is not taking new interactions (starting or shutting down)")
        interaction = Interaction(kind, direction, from_, to, channel, caller_name=caller_name)
        if attributes:
            interaction.attributes.update(attributes)
        priority = self.hooks.interaction_priority(interaction)
        if priority is not None:
            interaction.attributes["priority"] = priority
        self.interactions[interaction.id] = interaction
        self.bus.publish(
            "Newchannel" if kind is InteractionKind.VOICE else "MessageReceived",
            interaction=interaction.id,
            Channel=channel,
            Kind=kind.value,
            CallerIDNum=from_,
            CallerIDName=caller_name,
            Exten=to,
            **({"Message": message} if message is not None else {}),
        )
        return interaction

    def find_route(self, destination: str) -> RouteTarget | None:
        """Which ``[[routes]]`` entry an inbound interaction to ``destination`` reaches (most specific first)."""
        for route in self._routes:
            if matches(route.match, destination):
                for kind in ("queue", "flow", "agent"):
                    name = getattr(route, kind)
                    if name:
                        return RouteTarget(kind, name, route.priority)
        return None

    def route(self, interaction: Interaction) -> RouteTarget | None:
        """Route an inbound interaction by its destination (``interaction.to``); None: nothing matched.

        The caller (a channel) decides what "no route" means in its protocol (SIP 404, a bounce...).
        """
        target = self.find_route(interaction.to)
        if target is not None:
            self.deliver(interaction, target)
        return target

    def deliver(self, interaction: Interaction, target: RouteTarget) -> None:
        """Hand ``interaction`` to a queue, an agent (direct route) or an IVR flow."""
        if target.kind == "queue":
            self.acd.enqueue(interaction, target.name, priority=target.priority)
        elif target.kind == "agent":
            self.acd.enqueue(interaction, f"{AGENT_QUEUE_PREFIX}{target.name}", priority=target.priority)
        elif target.kind == "flow":
            if self.ivr is None:
                raise RuntimeError("IVR flows are not available yet: the engine is starting")
            self.ivr.start_flow(interaction, target.name)
        else:
            raise ValueError(f"unknown route target kind {target.kind!r}")

    async def deliver_to(self, interaction: Interaction, kind: str, target: str) -> None:
        """Overflow destinations (``queue``, ``flow``, ``voicemail``, ``callback``)."""
        if kind in ("queue", "flow", "agent"):
            self.deliver(interaction, RouteTarget(kind, target))
            return
        if kind == "voicemail":
            await self.voicemail.record(interaction, target or interaction.queue or "general")
            return
        log.warning("overflow to %s is not available; ending interaction %s", kind, interaction.id)
        await self.reject_interaction(interaction, cause=f"overflow-{kind}-unavailable")

    async def reject_interaction(self, interaction: Interaction, *, cause: str) -> None:
        """Refuse an interaction nobody can take (queue closed or full with no overflow)."""
        channel = self.channels.get(interaction.channel)
        hangup = getattr(channel, "hangup", None)
        if hangup is not None:
            await hangup(interaction, cause)
        await self.end_interaction(interaction, cause=cause, disposition=Disposition.CONGESTION)

    async def dial_callback(self, event: Any) -> None:
        """Call a customer back for a queued callback: the agent is already reserved (``event.agent``).

        The attempt id is recorded in the store before dialing, so an attempt is never dialed twice,
        even if the engine restarts in between (the router re-emits unfinished attempts with the same id).
        """
        assert self.store is not None
        done = await self.store.fetchone(
            "SELECT value FROM kv WHERE component = 'callbacks' AND key = ?", (event.attempt_id,)
        )
        if done is not None:
            log.info("callback attempt %s was already dialed before a restart; not dialing again", event.attempt_id)
            self.acd.apply(self.acd.router.callback_result(event.request_id, done["value"] == "answered", now=self.acd.clock()))
            return
        await self.store.write(
            "INSERT OR REPLACE INTO kv(component, key, value) VALUES ('callbacks', ?, 'dialing')", (event.attempt_id,)
        )
        answered = False
        channel = self.dialing_channel()
        try:
            number = self.check_dial(event.number, caller=event.agent, purpose="callback")
            if channel is None:
                raise ValueError("no voice channel can place calls")
            call = self.new_interaction(
                InteractionKind.VOICE, Direction.OUTBOUND, from_=event.agent, to=number, channel=channel.name,
                attributes={"callback_for": event.interaction, "callback_attempt": event.attempt_id},
            )
            call.queue = event.queue
            result = await channel.dial(call, number, caller_id="", ring_timeout=30.0)
            if result.outcome == "answered":
                call.transition(InteractionState.ACTIVE)
                answered = await channel.connect_agent(call, event.agent, self.agent_endpoint(event.agent))
                if answered:
                    call.agent = event.agent
                else:
                    await self.reject_interaction(call, cause="agent-unavailable")
            else:
                await self.end_interaction(call, cause=result.outcome, disposition=Disposition.NO_ANSWER)
        except (ValueError, NotImplementedError) as exc:
            log.error("callback %s cannot be dialed: %s", event.request_id, exc)
        await self.store.write(
            "UPDATE kv SET value = ? WHERE component = 'callbacks' AND key = ?",
            ("answered" if answered else "failed", event.attempt_id),
        )
        self.acd.apply(self.acd.router.callback_result(event.request_id, answered, now=self.acd.clock()))
        if answered and call.state is InteractionState.ENDED:
            # The customer (or agent) hung up while the outcome was being recorded: routing heard of the
            # connection only now, so the request completes now (else the agent stays held on it).
            self.acd.ended(call, reason="normal")

    def dialing_channel(self) -> Any:
        """The first voice channel that can place outbound calls (implements ``VoiceChannel.dial``)."""
        for channel in self.channels.values():
            if isinstance(channel, VoiceChannel) and type(channel).dial is not VoiceChannel.dial:
                return channel
        return None

    def offer_answered(self, interaction: Interaction, agent: str) -> bool:
        """A channel reports that ``agent`` answered the offer. False: too late (taken or withdrawn)."""
        return self.acd.answered(interaction, agent)

    def offer_failed(self, interaction: Interaction, agent: str, cause: str = "no-answer") -> None:
        """A channel reports the offer failed: ``cause`` is ``rejected``, ``busy`` or ``no-answer``."""
        self.acd.failed(interaction, agent, cause)

    # ---------------------------------------------------------------------------------- endpoints

    def agent_endpoint(self, agent: str) -> str:
        settings = self.agent_settings.get(agent)
        return settings.endpoint if settings else ""

    def voice_channel_for(self, endpoint: str) -> Any:
        """The running voice channel that rings ``endpoint`` (by scheme: ``sip:1001`` -> the SIP channel)."""
        scheme = endpoint.partition(":")[0]
        for channel in self.channels.values():
            if scheme and scheme in getattr(channel, "schemes", ()):
                return channel
        return None

    def endpoint_reachable(self, endpoint: str) -> bool:
        channel = self.voice_channel_for(endpoint)
        return bool(channel is not None and channel.endpoint_reachable(endpoint))

    def endpoint_state_changed(self, endpoint: str, reachable: bool) -> None:
        """Channels call this when an endpoint registers, unregisters or stops answering qualify."""
        for agent_id, settings in self.agent_settings.items():
            if settings.endpoint == endpoint:
                self.acd.reachable(agent_id, reachable)
        self.bus.publish("DeviceStateChange", Device=endpoint, State="NOT_INUSE" if reachable else "UNAVAILABLE")

    def retire(self, interaction: Interaction) -> None:
        """An interaction is over (``ended``): out of the live table, into the bounded recent list.

        Not while routing still holds it (a callback keeps the caller's place after the call ended);
        the ACD retires it when routing lets go.
        """
        if self.acd.holds(interaction.id):
            return
        if self.interactions.pop(interaction.id, None) is not None:
            self.recent.append(interaction)

    def all_interactions(self) -> list[Interaction]:
        """Live interactions, then the recently ended ones."""
        return [*self.interactions.values(), *self.recent]

    def find_interaction(self, interaction_id: str) -> Interaction:
        """A live or recently ended interaction; ``KeyError`` when unknown."""
        found = self.interactions.get(interaction_id)
        if found is not None:
            return found
        for item in reversed(self.recent):
            if item.id == interaction_id:
                return item
        raise KeyError(interaction_id)

    def dtmf_received(self, interaction: Interaction, digit: str, duration_ms: int = 0, *, direction: str = "Received") -> None:
        """A channel heard a DTMF digit on ``interaction`` (RFC 4733, SIP INFO, in-band or a DLE code)."""
        self.bus.publish("DTMFEnd", interaction=interaction.id, Digit=digit, DurationMs=int(duration_ms), Direction=direction)
        if direction == "Received" and self.ivr is not None:
            self.ivr.digit(interaction, digit)

    def check_dial(self, number: str, *, caller: str = "", purpose: str = "agent") -> str:
        """Check an outbound destination before it reaches a trunk or a line; returns it normalised.

        Only ``+`` and digits pass (no separators, no URI or AT-command text), and the
        ``centralita_allow_dial`` decision hook may veto. Raises ``ValueError`` saying why.
        """
        cleaned = number.strip()
        if not (1 <= len(cleaned) <= 20) or not (cleaned.lstrip("+").isdigit() and cleaned.count("+") <= 1) or \
                ("+" in cleaned and not cleaned.startswith("+")) or not cleaned.isascii():
            raise ValueError(f"refused dial string {safe_text(number, 40)!r}: only '+' and up to 20 digits are allowed")
        if not self.hooks.allow_dial(cleaned, caller, purpose):
            raise ValueError(f"dialing {cleaned} is not allowed for {safe_text(caller, 40) or 'this caller'} ({purpose})")
        return cleaned

    async def end_interaction(
        self, interaction: Interaction, *, cause: str = "normal", disposition: Disposition | None = None
    ) -> None:
        """The conversation is over (hang-up, closed thread): CDR, routing, plugins. Idempotent.

        If the agent has after-call work, the interaction stays in ``wrapup`` until it is done.
        """
        if interaction.state in (InteractionState.ENDED, InteractionState.WRAPUP):
            return
        now = time.time()
        if self.ivr is not None:
            self.ivr.caller_gone(interaction)
        self.acd.ended(interaction, reason=cause)
        if interaction.state is not InteractionState.WRAPUP:
            interaction.transition(InteractionState.ENDED, now=now)
            self.retire(interaction)
        interaction.attributes["hangup"] = now
        # Kind, Direction, Customer and Campaign let reports split by channel and campaign and find repeat
        # contacts (first-contact resolution) from the queue log alone.
        inbound = interaction.direction is Direction.INBOUND
        self.bus.publish("Hangup", interaction=interaction.id, Cause=cause, CallerIDNum=interaction.from_,
                         Kind=interaction.kind.value, Direction=interaction.direction.value,
                         Customer=interaction.from_ if inbound else interaction.to,
                         Campaign=str(interaction.attributes.get("campaign") or ""), Agent=interaction.agent or "",
                         Answered=interaction.answered)
        if self.dialer is not None:
            self.dialer.interaction_ended(interaction)
        self.hooks.interaction_ended(interaction)
        if disposition is None:
            disposition = Disposition.ANSWERED if interaction.answered else Disposition.NO_ANSWER
        await self._write_cdr(interaction, disposition, now)

    async def _write_cdr(self, i: Interaction, disposition: Disposition, end: float) -> None:
        assert self.store is not None
        duration = int(round(end - i.created))
        billsec = int(round(end - i.answered)) if i.answered else 0
        await self.store.write(
            'INSERT OR IGNORE INTO cdr(accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, '
            'lastdata, start, answer, "end", duration, billsec, disposition, amaflags, uniqueid, userfield) '
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                "", i.from_, i.to, i.queue or "", f'"{i.caller_name}" <{i.from_}>', i.channel,
                i.agent or "", "Queue" if i.queue else "", i.queue or "", i.created, i.answered, end,
                duration, billsec, disposition.value, "DOCUMENTATION", i.id, i.kind.value,
            ),
        )

    # ---------------------------------------------------------------------------------- EngineAPI

    def ready(self) -> tuple[bool, list[str]]:
        reasons: list[str] = []
        if self.store is None:
            reasons.append("store not open")
        if not self.accepting:
            reasons.append("engine starting" if self.started_at is None else "engine stopping")
        for state in self.supervisor.states:
            if state.name == "console":
                continue
            if not state.running or not state.service.ready():
                reasons.append(f"{state.name} ({state.plugin}) not ready" + (f": {state.last_error}" if state.last_error else ""))
        return (not reasons, reasons)

    def status(self) -> dict[str, Any]:
        ok, reasons = self.ready()
        by_state: dict[str, int] = {}
        for i in self.interactions.values():
            by_state[i.state.value] = by_state.get(i.state.value, 0) + 1
        agents = self.list_agents()
        return {
            "ready": ok,
            "not_ready": reasons,
            "started_at": self.started_at,
            "uptime": time.time() - self.started_at if self.started_at else 0.0,
            "plugins": [p.to_json() for p in self.plugins.plugin_list()],
            "services": [s.to_json() for s in self.supervisor.states],
            "interactions": by_state,
            "agents": {s.value: sum(1 for a in agents if a["state"] == s.value) for s in AgentState},
            "routing": self.acd.statistics(),
            "ivr": self.ivr.statistics() if self.ivr else None,
            "dialer": self.dialer.statistics() if self.dialer else None,
            "media": self.media.statistics(),
            "recordings": self.recorder.statistics(),
            "bus": vars(self.bus.statistics()),
            "store": self.store.statistics() if self.store else None,
            "channels": {name: dict(ch.statistics()) for name, ch in self.channels.items()},
            "devices": {
                name: {"health": d.health().value, **dict(d.describe())} for name, d in self.devices.items()
            },
        }

    def list_agents(self) -> list[dict[str, Any]]:
        out = []
        for agent_id, settings in self.agent_settings.items():
            status = self.acd.router.agent_status(agent_id)
            out.append({
                **status,
                "endpoint": settings.endpoint,
                "name": settings.name or agent_id,
                "skills": dict(settings.skills),
                "channels": dict(settings.channels),
                "reachable": self.endpoint_reachable(settings.endpoint) if settings.endpoint else None,
            })
        return out

    def set_agent_state(self, agent: str, state: str, reason: str = "") -> dict[str, Any]:
        if agent not in self.agent_settings:
            raise KeyError(agent)
        if state not in {s.value for s in AgentState}:
            raise ValueError(f"state must be one of {[s.value for s in AgentState]}, got {state!r}")
        self.acd.agent_state(agent, state, reason)
        return next(a for a in self.list_agents() if a["id"] == agent)

    def list_queues(self) -> list[dict[str, Any]]:
        return [self.queue_detail(q.name) for q in self.config.queues]

    def queue_detail(self, name: str) -> dict[str, Any]:
        if name not in {q.name for q in self.config.queues}:
            raise KeyError(name)
        detail = self.acd.router.queue_status(name, now=time.time())
        callers = detail.get("callers", [])
        detail["longest_wait"] = max((c["wait"] for c in callers), default=0.0)
        detail["available"] = sum(1 for status in detail.get("members", {}).values() if status == "available")
        return detail

    def list_interactions(self, state: str | None = None) -> list[dict[str, Any]]:
        everything = self.all_interactions()
        if state is not None:
            try:
                wanted = InteractionState(state)
            except ValueError:
                raise ValueError(f"state must be one of {[s.value for s in InteractionState]}, got {state!r}") from None
            return [i.to_json() for i in everything if i.state is wanted]
        return [i.to_json() for i in everything]

    def _record_action(self, item: Interaction, what: Any) -> dict[str, Any]:
        """On-demand recording: start now (a connected call), or once connected (queued, ringing); stop."""
        if what not in ("start", "stop"):
            raise ValueError("record needs 'action': 'start' or 'stop'")
        if item.kind is not InteractionKind.VOICE or item.state in (InteractionState.ENDED, InteractionState.WRAPUP):
            raise ValueError(f"interaction {item.id} is not a call in progress")
        if what == "start":
            item.attributes["record"] = True
            if item.state is InteractionState.ACTIVE and self.recorder.recording(item) is None:
                self.recorder.start(item)  # RecordingUnavailable (a ValueError: 409) when no audio passes here
        else:
            item.attributes["record"] = False
            self.recorder.stop(item, cause="api")
        return {**item.to_json(), "recording": item.attributes.get("recording"),
                "recording_active": self.recorder.recording(item) is not None}

    async def interaction_action(self, interaction: str, action: str, body: Mapping[str, Any]) -> dict[str, Any]:
        item = self.find_interaction(interaction)
        channel = self.channels.get(item.channel)
        if action in ("accept", "reject"):
            agent = body.get("agent")
            if not isinstance(agent, str) or agent not in self.agent_settings:
                raise ValueError(f"{action} needs 'agent': the id of a configured agent")
            if action == "accept":
                if not self.offer_answered(item, agent):
                    raise ValueError(f"interaction {interaction} is not offered to {agent} (taken or withdrawn)")
            else:
                self.offer_failed(item, agent, "rejected")
            return item.to_json()
        if action == "hangup":
            hangup = getattr(channel, "hangup", None)
            if hangup is not None:
                await hangup(item, "api")
            await self.end_interaction(item, cause="api")
            return item.to_json()
        if action == "record":
            return self._record_action(item, body.get("action"))
        if action == "transfer":
            queue = body.get("queue")
            if not isinstance(queue, str) or queue not in {q.name for q in self.config.queues}:
                raise ValueError("transfer needs 'queue': the name of a configured queue")
            if item.state in (InteractionState.QUEUED, InteractionState.OFFERED):
                self.acd.apply(self.acd.router.transfer(item.id, queue, now=self.acd.clock()))
            elif item.state is InteractionState.ACTIVE:
                self.acd.ended(item, reason="transfer")
                self.acd.enqueue(item, queue)
            else:
                raise ValueError(f"interaction {interaction} cannot be transferred while {item.state.value}")
            return item.to_json()
        if action == "disposition":
            code = body.get("disposition") or body.get("code")
            if not isinstance(code, str) or not code:
                raise ValueError("disposition needs a non-empty string 'disposition'")
            item.attributes["disposition"] = code
            if self.dialer is not None and "campaign" in item.attributes:
                callback_at = body.get("callback_at")
                self.dialer.disposition(item, code, callback_at=float(callback_at) if callback_at else None)
            if item.state is InteractionState.WRAPUP and item.agent:
                self.acd.wrapup_done(item.agent, item.id)
            for backend in self.crm.values():
                with trio.move_on_after(2.0):  # a slow CRM delays the answer a little, never forever
                    try:
                        await backend.record_interaction(item, code)
                    except Exception:
                        log.exception("CRM %s: recording the disposition of %s failed", getattr(backend, "name", "?"), item.id)
            return item.to_json()
        if action == "reply":
            text = body.get("text")
            if not isinstance(text, str) or not text:
                raise ValueError("reply needs a non-empty string 'text'")
            send = getattr(channel, "send_message", None)
            if send is None:
                raise ValueError(f"interaction {interaction} is on channel {item.channel!r}, which cannot send messages")
            message_id = await send(item, text)
            return {**item.to_json(), "message_id": message_id}
        if action == "read":  # the agent opened a messaging conversation: its customer messages are read
            mark_read = getattr(channel, "mark_read", None)
            if mark_read is None:
                raise ValueError(f"interaction {interaction} is on channel {item.channel!r}, which has no messages to read")
            return {**item.to_json(), "marked_read": await mark_read(item)}
        raise ValueError(f"unknown action {action!r}")

    async def originate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        to = body.get("to")
        if not isinstance(to, str) or not to:
            raise ValueError("originate needs 'to'")
        for channel in self.channels.values():
            originate = getattr(channel, "originate", None)
            if originate is not None:
                interaction = await originate(dict(body))
                return interaction.to_json()  # type: ignore[no-any-return]
        raise ValueError("no voice channel that can originate calls is enabled")

    async def report(self, since: float, until: float | None = None, *, interval: float = 1800.0,
                     short_abandon: float = 5.0, fcr_window: float = 7 * 86400.0) -> dict[str, Any]:
        """Queue, agent, interval, channel and campaign figures from the queue log (``engine.reporting``)."""
        rows = await self.queue_log.rows(since, until)
        later = await self.queue_log.rows(until, until + fcr_window) if until is not None else []
        result = reporting.compute(
            rows,
            threshold={q.name: q.service_level_seconds for q in self.config.queues},
            short_abandon=short_abandon,
            interval=interval,
            now=time.time(),
            until=min(until, time.time()) if until is not None else time.time(),
            fcr_window=fcr_window,
            later=[r for r in later if r["event"] == "Hangup"],
        )
        return {"since": since, "until": until, "fcr_window": fcr_window, **result.as_json()}

    async def staffing(self, *, days: int = 28, target: float = 0.8, threshold: float = 20.0) -> list[dict[str, Any]]:
        """Erlang C agents needed per queue and half hour, from the last ``days`` of history."""
        rows = await self.queue_log.rows(reporting._staffing.history_start(days))
        return reporting.forecast(rows, days=days, target=target, threshold=threshold)

    async def list_voicemail(self, box: str | None = None) -> list[dict[str, Any]]:
        return await self.voicemail.list(box)

    async def voicemail_audio(self, message: str) -> bytes:
        path = await self.voicemail.audio(message)
        return await trio.Path(path).read_bytes()

    async def cdr(self, since: float | None = None) -> list[dict[str, Any]]:
        assert self.store is not None
        rows = await self.store.fetchall(
            'SELECT accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata, start, answer, '
            '"end", duration, billsec, disposition, amaflags, uniqueid, userfield FROM cdr WHERE start >= ? ORDER BY seq',
            (since or 0.0,),
        )
        return rows
