"""Every hook a Centralita plugin can implement.

Plugins are found through the ``centralita`` entry-point group (third-party and in-tree alike) and
implement hooks with :data:`engine.hookimpl`. All hooks are **synchronous**: pluggy cannot await. They
come in four kinds:

**Registration** hooks are called once at start-up with a registry; the plugin adds classes or
factories. The engine later builds the objects and runs their ``async def run(*, task_status)`` in its
own nursery, so every task has an owner.

**Decision** hooks are ``firstresult``: the first implementation that returns something other than
``None`` decides. They sit on hot paths: they must be pure and fast, with no I/O and no blocking.

**Notification** hooks fan out to every plugin. They must not block: to do async work, hand it to your
own service with ``send_nowait`` on a memory channel it reads.

**Wrappers**: any decision hook also accepts ``@hookimpl(wrapper=True)`` implementations, which run
around the others (``result = yield``) for metrics, audit or overriding; see
:func:`centralita_choose_agent`.

Calls from the engine go through the typed façade :class:`engine._plugins.Hooks`, never raw ``pm.hook``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._config import Config
    from ._events import Event
    from ._model import Interaction
    from ._registry import (
        AmdDetectorRegistry,
        ChannelRegistry,
        CliRegistry,
        CompliancePolicyRegistry,
        ConfigSectionRegistry,
        CrmRegistry,
        DeviceDriverRegistry,
        HttpRouteRegistry,
        IvrNodeRegistry,
        MigrationRegistry,
        ServiceRegistry,
    )

PROJECT = "centralita"
hookspec = pluggy.HookspecMarker(PROJECT)

# --------------------------------------------------------------------------------------- registration


@hookspec
def centralita_add_config_sections(registry: ConfigSectionRegistry) -> None:
    """Declare the schema of this plugin's own top-level config section.

    Kind: registration. Called once, before the configuration file is validated, also by
    ``centralita check-config``. The schema is a dataclass; fields with defaults are optional keys.
    Unknown keys, wrong types and missing required keys are then reported with file and line.

    Example::

        @dataclass(frozen=True)
        class EmailSettings:
            imap: str
            smtp: str
            address: str
            poll_interval: float = 60.0

        @hookimpl
        def centralita_add_config_sections(registry):
            registry.add("email", EmailSettings)
    """


@hookspec
def centralita_register_migrations(registry: MigrationRegistry) -> None:
    """Add versioned SQLite schema migrations for this plugin's own tables.

    Kind: registration. Called once before the store opens. Each component numbers its migrations
    1, 2, 3...; the store applies the missing ones in one transaction each and refuses to open a
    database whose version for a component is newer than any migration the code knows.

    Example::

        @hookimpl
        def centralita_register_migrations(registry):
            registry.add(Migration("email", 1, "CREATE TABLE email_seen (uid INTEGER PRIMARY KEY)"))
    """


@hookspec
def centralita_register_channels(registry: ChannelRegistry) -> None:
    """Register channel factories (SIP, SMS, email, chat).

    Kind: registration. Called once at start-up. ``registry.add(name, factory)``; the engine calls
    ``factory(context)`` with a :class:`engine.PluginContext` and runs the returned
    :class:`engine.abc.Channel` with ``nursery.start(channel.run)`` after the store is open. A factory
    returns ``None`` when the channel is not configured (its section is absent): nothing is started.

    Example::

        @hookimpl
        def centralita_register_channels(registry):
            registry.add("sip", SipChannel)
    """


@hookspec
def centralita_register_crm_backends(registry: CrmRegistry) -> None:
    """Register CRM backend factories.

    Kind: registration. Called once at start-up. ``registry.add(name, factory)``; ``factory(context)``
    returns an :class:`engine.abc.CrmBackend`.

    Example::

        @hookimpl
        def centralita_register_crm_backends(registry):
            registry.add("webhook", WebhookCrm)
    """


@hookspec
def centralita_register_devices(registry: DeviceDriverRegistry) -> None:
    """Register hardware driver factories by driver name (``voice-modem``, ``gsm-modem``...).

    Kind: registration. Called once at start-up. For each ``[[devices]]`` entry whose ``driver`` matches,
    the engine calls ``factory(spec, context)`` and runs the returned :class:`engine.abc.Device`.

    Example::

        @hookimpl
        def centralita_register_devices(registry):
            registry.add("dtmf-board", DtmfBoard)
    """


@hookspec
def centralita_register_services(registry: ServiceRegistry) -> None:
    """Register background services that are neither channels nor devices.

    Kind: registration. Called once at start-up. ``factory(context)`` returns an
    :class:`engine.abc.Service`; services start after channels and devices. A service that raises is
    restarted with exponential backoff unless it is ``critical``.

    Example::

        @hookimpl
        def centralita_register_services(registry):
            registry.add("crm-outbox", OutboxPusher)
    """


@hookspec
def centralita_register_ivr_nodes(registry: IvrNodeRegistry) -> None:
    """Add IVR node types usable in ``[[flows]]``.

    Kind: registration. Called once when flows are loaded (also by ``check-config``).

    Example::

        @hookimpl
        def centralita_register_ivr_nodes(registry):
            registry.add("lottery", LotteryNode)
    """


@hookspec
def centralita_register_compliance_policies(registry: CompliancePolicyRegistry) -> None:
    """Add outbound dialing compliance policies (abandonment formulas, calling windows).

    Kind: registration. Called once at start-up; campaigns name the policy they follow.

    Example::

        @hookimpl
        def centralita_register_compliance_policies(registry):
            registry.add("uk-ofcom", UkOfcomPolicy())
    """


@hookspec
def centralita_register_amd_detectors(registry: AmdDetectorRegistry) -> None:
    """Add answering-machine detectors that campaigns choose with ``amd = "name"``.

    Kind: registration. Called once at start-up, before campaigns are checked (a campaign naming a
    detector nobody registered is a configuration error). ``registry.add(name, factory)``:
    ``factory(campaign)`` gets the campaign's :class:`engine.dialing.CampaignSettings` and returns a
    **new** detector for one answered call, an :class:`engine.dialing.AnsweringMachineDetector`
    (``feed(frame) -> AmdResult | None`` on 20 ms frames of 8 kHz int16, and ``result``). The
    built-in one is ``"cadence"`` (``amd = true``). ``feed`` runs on the call's audio as it arrives:
    keep it fast, with no I/O.

    Example::

        @hookimpl
        def centralita_register_amd_detectors(registry):
            registry.add("strict", lambda campaign: CadenceDetector(AmdSettings(greeting=1.5)))
    """


@hookspec
def centralita_register_cli_commands(registry: CliRegistry) -> None:
    """Add ``centralita`` subcommands.

    Kind: registration. Called once when the command line is parsed.
    ``registry.add(name, help, configure, run)``: ``configure(parser)`` adds arguments and
    ``run(args) -> int`` does the work and returns the exit code.

    Example::

        @hookimpl
        def centralita_register_cli_commands(registry):
            registry.add("devices", "list serial and audio devices", _configure, _run)
    """


@hookspec
def centralita_register_http_routes(registry: HttpRouteRegistry) -> None:
    """Serve extra HTTP/WebSocket routes from the console server (the chat widget, console pages).

    Kind: registration. Called once before the console server starts.
    ``registry.add(prefix, app, public=False)``: ``app`` is an ASGI application that receives every
    request whose path starts with ``prefix``. Routes are authenticated like the API unless
    ``public=True`` (for visitor-facing endpoints such as the chat widget).

    Example::

        @hookimpl
        def centralita_register_http_routes(registry):
            registry.add("/chat/", chat_asgi_app, public=True)
    """


# ------------------------------------------------------------------------------------------ decisions


@hookspec(firstresult=True)
def centralita_choose_agent(interaction: Interaction, queue: str, candidates: Sequence[str]) -> str | None:
    """Choose which of ``candidates`` (agent ids, best first by the queue's strategy) gets the offer.

    Kind: decision (firstresult; wrappers welcome). Called on every routing decision, so it must be pure
    and fast: no I/O. Return an agent id from ``candidates``, or ``None`` to let the queue's strategy
    decide. An id not in ``candidates`` is ignored (and logged).

    Example::

        @hookimpl
        def centralita_choose_agent(interaction, queue, candidates):
            if interaction.attributes.get("language") == "es":
                return next((a for a in candidates if a.startswith("es-")), None)
            return None
    """


@hookspec(firstresult=True)
def centralita_interaction_priority(interaction: Interaction) -> int | None:
    """Give an arriving interaction a priority (higher is served first) from caller data.

    Kind: decision (firstresult). Called once when an interaction enters routing; pure and fast (use
    data already loaded, e.g. a VIP list or the CRM segment in ``interaction.attributes``).

    Example::

        @hookimpl
        def centralita_interaction_priority(interaction):
            return 10 if "vip" in interaction.attributes.get("segments", ()) else None
    """


@hookspec(firstresult=True)
def centralita_allow_dial(number: str, caller: str, purpose: str) -> bool | None:
    """Veto or allow an outbound destination before it reaches a trunk or a line.

    Kind: decision (firstresult). Called before every outbound call (agent offers excepted) is placed.
    ``number`` is already checked against the strict dial-string
    allowlist (``+`` and digits). ``purpose`` is ``"agent"``, ``"dialer"``, ``"callback"`` or
    ``"transfer"``. Return ``False`` to refuse, ``True`` to allow, ``None`` to defer to the next plugin
    (the default allows).

    Example::

        @hookimpl
        def centralita_allow_dial(number, caller, purpose):
            return False if number.startswith("+1900") else None
    """


# -------------------------------------------------------------------------------------- notifications


@hookspec(historic=True)
def centralita_configure(config: Config) -> None:
    """Receive the validated configuration.

    Kind: notification (historic: a plugin registered late still receives it). Called once after the
    configuration loads, before anything starts. Keep what you need; do no I/O.

    Example::

        @hookimpl
        def centralita_configure(config):
            global SETTINGS
            SETTINGS = config.section("email")
    """


@hookspec
def centralita_engine_started(engine: Any) -> None:
    """The engine is serving: store open, channels and services started.

    Kind: notification. Called once. Must not block.

    Example::

        @hookimpl
        def centralita_engine_started(engine):
            log.info("engine ready with %d channels", len(engine.channels))
    """


@hookspec
def centralita_engine_stopping(engine: Any) -> None:
    """The engine is shutting down: no new interactions are taken from now on.

    Kind: notification. Called once, before live interactions are drained. Must not block.

    Example::

        @hookimpl
        def centralita_engine_stopping(engine):
            my_service.stop_taking_work_nowait()
    """


@hookspec
def centralita_event(event: Event) -> None:
    """See every event published on the bus (the same ones ``WS /api/v1/events`` sends).

    Kind: notification. Called synchronously for every event on the core's hot path: never block and
    never do I/O; hand work to your own service with ``send_nowait``.

    Example::

        @hookimpl
        def centralita_event(event):
            if event.event == "QueueCallerAbandon":
                ABANDONS.inc()
    """


@hookspec
def centralita_interaction_ended(interaction: Interaction) -> None:
    """An interaction reached the ``ended`` state (its CDR is being written).

    Kind: notification. Called once per interaction. Must not block.

    Example::

        @hookimpl
        def centralita_interaction_ended(interaction):
            crm_outbox.send_nowait(interaction.to_json())
    """
