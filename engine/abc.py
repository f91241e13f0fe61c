"""Public abstract base classes that plugins implement.

Everything long-running follows one shape (DESIGN.md habit 5): ``async def run(self, *, task_status)``
started by the engine with ``nursery.start``, and ``aclose()`` to release resources. The engine owns the
nursery; plugins never spawn tasks outside the ``run`` they were given.
"""

from __future__ import annotations

import abc
import enum
from pathlib import Path
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import trio

if TYPE_CHECKING:
    from ._model import Contact, Interaction, InteractionKind


class Service(abc.ABC):
    """Something the engine runs for the engine's whole life.

    ``critical = True`` means: if it crashes, stop the engine with a clear message instead of
    restarting it with backoff.
    """

    name: str = "service"
    critical: ClassVar[bool] = False

    @abc.abstractmethod
    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Start, call ``task_status.started()`` once ready to serve, then serve until cancelled."""

    async def aclose(self) -> None:
        """Release resources. Called once after ``run`` returns or is cancelled; must be idempotent."""

    def statistics(self) -> Mapping[str, Any]:
        """Counters for ``/api/v1/status`` and ``/metrics``."""
        return {}

    def ready(self) -> bool:
        """``/readyz`` is 503 until every enabled plugin's services say they are ready."""
        return True


class Channel(Service):
    """A way customers reach the engine (SIP, SMS, email, chat). It turns traffic into Interactions."""

    #: The interaction kinds this channel carries.
    kinds: ClassVar[frozenset[InteractionKind]] = frozenset()


class VoiceChannel(Channel):
    """A channel that can ring agent endpoints and place calls (SIP, analog lines, headsets)."""

    #: Endpoint schemes this channel can ring, e.g. ``{"sip"}`` for ``endpoint = "sip:1001"``.
    schemes: ClassVar[frozenset[str]] = frozenset()

    def endpoint_reachable(self, endpoint: str) -> bool:
        """Can an offer ring ``endpoint`` right now (a SIP user is registered, a headset plugged in)?"""
        return True

    @abc.abstractmethod
    async def offer(self, interaction: Interaction, agent: str, endpoint: str) -> None:
        """Ring ``endpoint`` for ``interaction``; report the outcome through the engine API."""

    @abc.abstractmethod
    async def hangup(self, interaction: Interaction, cause: str = "normal") -> None:
        """End every leg of ``interaction`` that this channel owns."""

    # Media control, used by IVR flows, announcements and the dialer. A channel that cannot do one of
    # these leaves the default, and the engine says so instead of pretending.

    async def answer(self, interaction: Interaction) -> None:
        """Answer an inbound call so the engine can play prompts and hear digits (SIP 200 OK)."""
        raise NotImplementedError(f"{type(self).__name__} cannot answer calls itself")

    async def play(self, interaction: Interaction, *, prompt: str | None = None, text: str | None = None) -> None:
        """Play a prompt (a name in the prompt library) or speak ``text``; return when it has finished.

        Cancelling the caller stops the playback at once. Digits the caller presses meanwhile are reported
        through ``engine.dtmf_received`` as always.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot play prompts")

    async def transfer(self, interaction: Interaction, destination: str) -> None:
        """Blind-transfer the caller to ``destination`` (an extension or an outside number)."""
        raise NotImplementedError(f"{type(self).__name__} cannot transfer calls")

    async def record(self, interaction: Interaction, path: Path, *, max_seconds: float, silence_seconds: float) -> float:
        """Record what the caller says into the WAV file ``path`` (8 kHz mono) until ``max_seconds`` or
        ``silence_seconds`` of silence or the caller hangs up; return the seconds kept."""
        raise NotImplementedError(f"{type(self).__name__} cannot record callers")

    def hold_music(self, interaction: Interaction, prompt: Any) -> bool:
        """Loop ``prompt`` (an ``engine.media.Prompt``) to a caller waiting in a queue; None stops it.

        Called by the ACD when the caller joins a queue and when they leave it or an agent answers.
        Prompts played meanwhile (announcements) pause the music; it goes on after them. Return False
        when this channel cannot (the default: the caller hears whatever the channel gives them).
        """
        return False

    # Outbound, used by the dialer and callbacks.

    async def dial(self, interaction: Interaction, number: str, *, caller_id: str, ring_timeout: float) -> DialResult:
        """Call ``number`` (already checked by ``engine.check_dial``) for an outbound ``interaction``.

        Return once it is answered or has failed. An answered call stays up, owned by the channel.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot place outbound calls")

    async def connect_agent(self, interaction: Interaction, agent: str, endpoint: str) -> bool:
        """Ring ``endpoint`` and, when it answers, bridge it to the already answered ``interaction``.

        True when bridged. Unlike :meth:`offer` this bypasses routing: the dialer has chosen the agent.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot connect agents to outbound calls")

    # Calls that cross channels: an analog caller answered by a SIP agent, a SIP caller answered on the
    # receptionist's headset. The engine pairs the two halves through ``engine.media``.

    async def ring_agent(self, interaction: Interaction, agent: str, endpoint: str) -> AgentLeg:
        """Ring ``endpoint`` for ``interaction``, which *another* channel owns; return once it answered or failed.

        The answered leg's audio is an ``engine.media`` RTP endpoint or a Source/Sink pair; the engine joins
        it with the owner's :meth:`media_of`. Cancelled while ringing: stop ringing. The returned leg's
        ``ended`` is set when the agent hangs up (a channel may instead end the interaction itself).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot ring agents for other channels' calls")

    def media_of(self, interaction: Interaction) -> Any:
        """The audio of an answered ``interaction`` this channel owns, for a bridge to another channel's
        agent: an ``engine.media`` RTP endpoint, a ``(Source, Sink)`` pair, or None (no audio path here)."""
        return None


class AgentLeg:
    """An agent's phone rung by :meth:`VoiceChannel.ring_agent`: how it went and, once answered, its audio.

    ``outcome`` is ``answered``, ``busy``, ``rejected``, ``no-answer`` or ``failed``. When answered, the
    audio is ``endpoint`` (an ``engine.media`` RtpEndpoint) or ``source``/``sink``. ``hangup()`` ends the
    agent's side (idempotent); ``ended`` is set once it is over, whoever hung up.
    """

    def __init__(
        self,
        outcome: str,
        *,
        endpoint: Any = None,
        source: Any = None,
        sink: Any = None,
        on_hangup: Any = None,
    ) -> None:
        self.outcome = outcome
        self.endpoint = endpoint
        self.source = source
        self.sink = sink
        self.ended = trio.Event()
        self._on_hangup = on_hangup
        if outcome != "answered":
            self.ended.set()

    @property
    def answered(self) -> bool:
        return self.outcome == "answered"

    async def hangup(self) -> None:
        if self.ended.is_set():
            return
        self.ended.set()
        if self._on_hangup is not None:
            await self._on_hangup()


@dataclass(frozen=True)
class DialResult:
    """How an outbound call attempt went.

    ``outcome``: ``answered``, ``busy``, ``no-answer``, ``congestion``, ``invalid``, ``failed``.
    ``machine``: what answering-machine detection said, when the channel ran it (None: not run).
    ``status``: the SIP final response (or None for analog lines).
    """

    outcome: str
    status: int | None = None
    machine: bool | None = None


class MessagingChannel(Channel):
    """A channel of written messages (SMS, email, chat)."""

    @abc.abstractmethod
    async def send_message(self, interaction: Interaction, text: str) -> str:
        """Queue ``text`` for delivery (durably, through the outbox); returns the message id."""


class CrmBackend(abc.ABC):
    """Looks customers up and records what happened with them."""

    name: str = "crm"

    @abc.abstractmethod
    async def lookup(self, *, phone: str | None = None, email: str | None = None) -> Contact | None:
        """Find a contact. Must answer within the engine's CRM budget or be cut off."""

    async def record_interaction(self, interaction: Interaction, disposition: str | None = None) -> None:
        """Store (or push) the record of a finished interaction. Default: nothing."""


class Capability(enum.Flag):
    """What a device can do; a channel asks the device registry for a capability, never for a driver."""

    NONE = 0
    VOICE_LINE = enum.auto()  # place/answer calls on a phone line
    AUDIO = enum.auto()  # play and record PCM
    DTMF_IN = enum.auto()  # reports DTMF digits
    SMS = enum.auto()  # sends and receives SMS
    CALLER_ID = enum.auto()  # reports the caller's number
    ANSWER_SUPERVISION = enum.auto()  # reports when the far end answers (dialer may use predictive mode)


class DeviceHealth(enum.Enum):
    STARTING = "starting"
    OK = "ok"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    DISCONNECTED = "disconnected"
    UNAVAILABLE = "unavailable"  # a library or package the driver needs is missing


@dataclass(frozen=True)
class DeviceSpec:
    """One ``[[devices]]`` entry as the driver factory receives it."""

    name: str
    driver: str
    port: str = ""
    profile: str = "generic"
    options: Mapping[str, Any] = field(default_factory=dict)


class Device(Service):
    """A hardware driver instance bound to one physical (or emulated) device."""

    capabilities: Capability = Capability.NONE

    def health(self) -> DeviceHealth:
        return DeviceHealth.OK

    def describe(self) -> Mapping[str, Any]:
        """What ``centralita devices`` and the console show: model, signal, SIM state..."""
        return {}


class EngineAPI(abc.ABC):
    """What the console server, the CLI and plugins may ask of a running engine.

    The engine implements it; ``engine.testing`` has a harness that runs the real one. Methods that
    change state raise ``KeyError`` for an unknown id and ``ValueError`` for a request that does not
    fit the current state (the HTTP layer maps them to 404 and 409).
    """

    @abc.abstractmethod
    def status(self) -> dict[str, Any]:
        """Plugins (with load errors), services and their readiness, counters: ``/api/v1/status``."""

    @abc.abstractmethod
    def ready(self) -> tuple[bool, list[str]]:
        """(ready?, reasons it is not): ``/readyz``."""

    @abc.abstractmethod
    def list_agents(self) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def set_agent_state(self, agent: str, state: str, reason: str = "") -> dict[str, Any]: ...

    @abc.abstractmethod
    def list_queues(self) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def queue_detail(self, name: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    def list_interactions(self, state: str | None = None) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def interaction_action(self, interaction: str, action: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``accept|reject|hangup|transfer|disposition|reply`` on one interaction."""

    @abc.abstractmethod
    async def originate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/v1/calls``: ``{"to": "+3491...", "agent": "alice"}`` or ``{"to", "from"}``."""

    @abc.abstractmethod
    async def cdr(self, since: float | None = None) -> list[dict[str, Any]]:
        """CDR rows (Master.csv column names as keys), oldest first."""

    async def report(self, since: float, until: float | None = None, *, interval: float = 1800.0,
                     short_abandon: float = 5.0, fcr_window: float = 7 * 86400.0) -> dict[str, Any]:
        """Service level, ASA, AHT, ACW, abandonment, occupancy, FCR per queue, agent, interval, channel
        and campaign (``engine.reporting``)."""
        raise NotImplementedError

    async def staffing(self, *, days: int = 28, target: float = 0.8, threshold: float = 20.0) -> list[dict[str, Any]]:
        """Erlang C agents needed per queue and half hour from history."""
        raise NotImplementedError

    async def list_voicemail(self, box: str | None = None) -> list[dict[str, Any]]:
        """Voicemail messages, newest first (all boxes, or one)."""
        raise NotImplementedError

    async def voicemail_audio(self, message: str) -> bytes:
        """A message's WAV file (and it counts as heard); ``KeyError`` for an unknown id."""
        raise NotImplementedError
