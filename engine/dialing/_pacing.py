"""The pacing core: how many calls to launch, and who gets an answered call. Sans-IO.

:class:`Dialer` is fed what happened (an agent became ready, a call was answered by a person or a
machine, a call failed) and the current time, and returns :class:`Action` objects for the telephony
layer to carry out (dial, connect to an agent, play the information message and hang up, stop ringing).
It never imports trio and never does I/O; ``next_timer()``/``handle_timer(now)`` drive its clock, so the
simulator runs it on a virtual clock and the engine on the real one.

Call states (``CALL_TRANSITIONS``)::

    RINGING --live answer--> WAITING --agent free within abandon_after--> CONNECTED --end--> ENDED
       |                        +--no agent in time / far end hangs up--> ENDED (abandoned)
       +--machine answer--> MACHINE --end--> ENDED
       +--busy, no answer, failure, ring timeout--> ENDED

Agent states (``AGENT_TRANSITIONS``): AWAY <-> READY -> RESERVED (preview) -> BUSY -> READY.

Predictive pacing (the model, in short; docs/dialer.md has the long form)
--------------------------------------------------------------------------
For a look-ahead ``h`` = 0..ring timeout, the *demand* ``D(h)`` is the number of live answers that will
need an agent by ``h``: calls already waiting, plus for each ringing call the learned probability that
it is answered live in ``(e, e+h]`` given it has rung ``e`` seconds, plus ``k`` calls launched now. The
*supply* ``S(h)`` is the agents ready now plus, for every busy agent, the learned probability that it is
ready by ``h + abandon_after``. Both are sums of independent Bernoullis, approximated as normals. An
abandon happens when demand outruns supply, so the expected number of abandons among these calls is
approximated by ``A(k) = max_h E[(D(h) - S(h))+]`` (the running maximum of the excess is what a
queue with 2-second patience loses). The pacer launches the largest ``k`` for which the projected abandon
rate of the calls in flight, ``A(k) / E[live answers among them]``, stays within a limit. Dials that
cannot abandon (at most one ringing call per ready agent) are always allowed.

The limit is the aim (2.5%) divided by a calibration factor: how many abandons really happened per
abandon the model forecast for the same calls (the max of expectations understates the expected max).
The aim is never raised to use up slack from a quiet period ("no catching up"); it is lowered as the
measured rate for the compliance window climbs from the aim towards the hard cap, and reaches zero
(only the dials that cannot abandon) at 60% of the way from aim to cap.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .._errors import InvalidTransition
from ._estimators import AnswerModel, HandleModel

Mode = Literal["preview", "progressive", "predictive"]


class CallState(enum.Enum):
    RINGING = "ringing"
    WAITING = "waiting"  # answered by a person, no agent yet; the abandon clock runs
    CONNECTED = "connected"
    MACHINE = "machine"
    ENDED = "ended"


class AgentState(enum.Enum):
    AWAY = "away"
    READY = "ready"
    RESERVED = "reserved"  # a preview/reserved call is dialing for this agent
    BUSY = "busy"


CALL_TRANSITIONS: dict[tuple[CallState, str], CallState] = {
    (CallState.RINGING, "live"): CallState.WAITING,
    (CallState.RINGING, "machine"): CallState.MACHINE,
    (CallState.RINGING, "fail"): CallState.ENDED,
    (CallState.WAITING, "connect"): CallState.CONNECTED,
    (CallState.WAITING, "abandon"): CallState.ENDED,
    (CallState.MACHINE, "end"): CallState.ENDED,
    (CallState.MACHINE, "to_agent"): CallState.WAITING,  # the campaign passes machines to an agent
    (CallState.CONNECTED, "end"): CallState.ENDED,
}

AGENT_TRANSITIONS: dict[tuple[AgentState, str], AgentState] = {
    (AgentState.AWAY, "ready"): AgentState.READY,
    (AgentState.READY, "ready"): AgentState.READY,
    (AgentState.READY, "reserve"): AgentState.RESERVED,
    (AgentState.READY, "connect"): AgentState.BUSY,
    (AgentState.RESERVED, "connect"): AgentState.BUSY,
    (AgentState.RESERVED, "release"): AgentState.READY,
    (AgentState.BUSY, "ready"): AgentState.READY,
    (AgentState.AWAY, "away"): AgentState.AWAY,
    (AgentState.READY, "away"): AgentState.AWAY,
    (AgentState.BUSY, "away"): AgentState.AWAY,
    (AgentState.RESERVED, "away"): AgentState.AWAY,
}


# ------------------------------------------------------------------------------------------ actions


@dataclass(frozen=True)
class Dial:
    """Launch a call. ``agent`` is set when the call is reserved for one agent (preview)."""

    call: str
    agent: str | None = None


@dataclass(frozen=True)
class Connect:
    call: str
    agent: str
    wait: float  # seconds the person waited after answering (0 when an agent was free)


@dataclass(frozen=True)
class Abandon:
    """No agent within ``abandon_after``: play the recorded information message, then hang up."""

    call: str
    play_message: bool = True


@dataclass(frozen=True)
class StopRinging:
    """The ring timeout passed: hang up (outcome: no answer)."""

    call: str


@dataclass(frozen=True)
class OfferPreview:
    """Preview mode: show this agent the next lead; it answers with ``preview_start``/``preview_skip``."""

    agent: str


@dataclass(frozen=True)
class ModeChanged:
    """The pacer changed its own mode (for example predictive on lines without answer supervision)."""

    old: Mode
    new: Mode
    reason: str


Action = Dial | Connect | Abandon | StopRinging | OfferPreview | ModeChanged


# ----------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class PacingSettings:
    mode: Mode = "predictive"
    #: progressive: lines per ready agent (1.0 never abandons); predictive: the upper bound per agent
    lines_per_agent: float = 1.0
    max_lines_per_agent: float = 6.0
    max_lines: int | None = None  # trunk/line capacity
    ring_timeout: float = 25.0
    abandon_after: float = 2.0
    target_abandon_rate: float = 0.025
    max_abandon_rate: float = 0.03
    #: lines that report answer; without it predictive is refused (downgraded to progressive)
    answer_supervision: bool = True
    expected_answer_rate: float = 0.3
    expected_handle_time: float = 180.0
    tick: float = 1.0
    #: live answers of prior belief that the measured rate is at the aim (damps the first minutes)
    rate_prior_weight: float = 40.0
    #: progressive above one line per agent drops to one line when the measured rate nears the cap
    #: (off only for the simulator's fixed-ratio baseline)
    cap_guard: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("preview", "progressive", "predictive"):
            raise ValueError(f"mode must be preview, progressive or predictive, got {self.mode!r}")
        if not 0 < self.target_abandon_rate <= self.max_abandon_rate < 1:
            raise ValueError("expected 0 < target_abandon_rate <= max_abandon_rate < 1")
        if self.lines_per_agent < 1 or self.max_lines_per_agent < 1:
            raise ValueError("lines per agent must be at least 1")
        if self.ring_timeout <= 0 or self.abandon_after < 0:
            raise ValueError("ring_timeout must be positive and abandon_after not negative")


@dataclass
class _Call:
    id: str
    state: CallState
    launched: float
    agent: str | None = None
    answered: float | None = None
    charge: float = 0.0


@dataclass
class _Agent:
    id: str
    state: AgentState
    since: float
    offered: bool = False


@dataclass
class DialerStatistics:
    dialed: int = 0
    live_answers: int = 0
    machine_answers: int = 0
    connected: int = 0
    abandoned: int = 0
    no_answer: int = 0
    failed: int = 0
    total_wait: float = 0.0
    model_abandons: float = 0.0  # what the pacing model expected, for calibration reports
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def abandon_rate(self) -> float:
        """US rule: abandoned / calls answered by a live person."""
        return self.abandoned / self.live_answers if self.live_answers else 0.0


# ---------------------------------------------------------------------------------------- the maths

#: Variance added to every excess estimate. Sums of a few low-probability Bernoullis are skewed and the
#: normal approximation understates their upper tail. 1.0 was best of 0.25/0.6/1.0 over the full
#: benchmarks/dialer.py grid (at a 15% answer rate +4 to +5 points of utilization over 0.25, about -0.5
#: to -1 at 30-50%); 0.05 and 2.0 were tried on fewer runs and were not better.
_VAR_EXTRA = 1.0
#: (abandons, forecast abandons) of prior belief for the calibration factor, and its floor
_CAL_PRIOR = (15.0, 10.0)
_CAL_MIN = 0.4
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: numpy has no erf and scipy is not a dependency.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def expected_excess(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E[max(X, 0)] for X ~ Normal(mean, sd)."""
    z = mean / sd
    cdf = 0.5 * (1.0 + _erf(z / _SQRT2))
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    return mean * cdf + sd * pdf


# ------------------------------------------------------------------------------------------ dialer


class Dialer:
    """One campaign's pacing and call-to-agent matching on a caller-supplied clock."""

    def __init__(self, settings: PacingSettings, *, now: float, call_prefix: str = "c") -> None:
        self.settings = settings
        self.mode: Mode = settings.mode
        self._calls: dict[str, _Call] = {}
        self._ringing: dict[str, _Call] = {}
        #: ringing calls the far end has picked up while detection decides who it is: no ring timeout
        self._picked_up: set[str] = set()
        self._waiting: OrderedDict[str, _Call] = OrderedDict()
        self._agents: dict[str, _Agent] = {}
        self._ready: OrderedDict[str, _Agent] = OrderedDict()  # longest ready first
        self._busy: dict[str, _Agent] = {}
        self._present: set[str] = set()  # not away
        self._prefix = call_prefix
        self._next_id = 0
        self._pending: list[Action] = []
        self.stats = DialerStatistics()
        self.answers = AnswerModel(ring_timeout=settings.ring_timeout,
                                   prior_answer_rate=settings.expected_answer_rate)
        self.handling = HandleModel(prior_mean=settings.expected_handle_time)
        self._horizons = np.arange(0.0, settings.ring_timeout + 2.0, 2.0)
        self._limit = settings.target_abandon_rate / 1.5
        self.calibration = 1.5
        self._charged_resolved = 0.0  # expected abandons the model charged to calls now finished
        self._tables_due = -math.inf
        self._busy_table_due = -math.inf
        self._changed = True
        self._inbound_at_risk = False
        #: a supervisor paused the campaign: launch and offer nothing new (calls in flight carry on)
        self.paused = False
        self._answer_supervision = settings.answer_supervision
        self._next_tick = now
        #: measured compliance window, fed by the caller (30-day ledger); defaults to this dialer's own
        self._window_live: int | None = None
        self._window_abandoned: int | None = None
        if self.mode == "predictive" and not self._answer_supervision:
            self._downgrade("lines cannot report answer (no answer supervision)")

    # ---------------------------------------------------------------------------- inputs: agents

    def _agent_event(self, agent_id: str, event: str, now: float) -> _Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = self._agents[agent_id] = _Agent(agent_id, AgentState.AWAY, now)
        new = AGENT_TRANSITIONS.get((agent.state, event))
        if new is None:
            raise InvalidTransition(f"agent {agent_id!r}: {event!r} not allowed in state {agent.state.value}")
        if agent.state is AgentState.BUSY and new is AgentState.READY:
            self.handling.record(now - agent.since)
        if new is not agent.state:
            agent.state = new
            agent.since = now
            agent.offered = False
        if new is AgentState.READY:
            self._ready.setdefault(agent_id, agent)
        else:
            self._ready.pop(agent_id, None)
        if new is AgentState.BUSY:
            self._busy[agent_id] = agent
        else:
            self._busy.pop(agent_id, None)
        if new is AgentState.AWAY:
            self._present.discard(agent_id)
        else:
            self._present.add(agent_id)
        self._changed = True
        return agent

    def agent_ready(self, agent_id: str, now: float) -> None:
        """The agent logged in, or finished the previous call and its wrap-up."""
        self._agent_event(agent_id, "ready", now)
        self._connect_waiting(now)

    def agent_away(self, agent_id: str, now: float) -> None:
        """Paused or logged out: not counted as supply any more."""
        self._agent_event(agent_id, "away", now)

    def preview_start(self, agent_id: str, now: float) -> str:
        """Preview: the agent chose to call the lead shown. Returns the call id to dial."""
        self._agent_event(agent_id, "reserve", now)
        call = self._launch(now, agent=agent_id)
        return call.id

    def preview_skip(self, agent_id: str, now: float) -> None:
        agent = self._agents[agent_id]
        agent.offered = False
        self._changed = True

    # ----------------------------------------------------------------------------- inputs: calls

    def _call_event(self, call_id: str, event: str) -> _Call:
        call = self._calls.get(call_id)
        if call is None:
            raise InvalidTransition(f"unknown or finished call {call_id!r}")
        new = CALL_TRANSITIONS.get((call.state, event))
        if new is None:
            raise InvalidTransition(f"call {call_id!r}: {event!r} not allowed in state {call.state.value}")
        call.state = new
        self._changed = True
        if new is CallState.ENDED:
            del self._calls[call_id]
            self._charged_resolved += call.charge
        return call

    def call_picked_up(self, call_id: str) -> None:
        """The far end answered and answering-machine detection is listening. The ring timeout no longer
        applies, but the call still counts as ringing (in flight, not yet a live answer) until
        :meth:`call_answered` says who it was, so no agent is promised twice meanwhile."""
        if call_id in self._ringing:
            self._picked_up.add(call_id)

    def call_answered(self, call_id: str, now: float, *, machine: bool = False) -> None:
        """The far end answered. ``machine`` when answering-machine detection said so.

        For a person, ``now`` is the end of the greeting (when detection decided): the 2-second rule runs
        from there.
        """
        call = self._call_event(call_id, "machine" if machine else "live")
        self._changed |= self.mode != "predictive"
        self._ringing.pop(call_id, None)
        self._picked_up.discard(call_id)
        self.answers.record(now - call.launched, "machine" if machine else "live")
        call.answered = now
        if machine:
            self.stats.machine_answers += 1
            if call.agent is not None:  # a reserved (preview) agent hears whatever answered
                self._release_reserved(call, now)
            return
        self.stats.live_answers += 1
        self._waiting[call_id] = call
        self._connect_waiting(now)

    def call_failed(self, call_id: str, now: float, *, no_answer: bool = False) -> None:
        """Busy, congestion, invalid number, fax, or the network reported no answer."""
        call = self._call_event(call_id, "fail")
        self._changed |= self.mode != "predictive"  # predictive re-plans on its next tick
        self._ringing.pop(call_id, None)
        self._picked_up.discard(call_id)
        self.answers.record(now - call.launched, "none")
        if no_answer:
            self.stats.no_answer += 1
        else:
            self.stats.failed += 1
        if call.agent is not None:
            self._release_reserved(call, now)

    def call_ended(self, call_id: str, now: float) -> None:
        """The far end hung up. Before an agent took the call, that counts as abandoned."""
        call = self._calls.get(call_id)
        if call is None:
            return
        if call.state is CallState.WAITING:
            self._abandon(call, now, play_message=False)
        elif call.state is CallState.RINGING:
            self.call_failed(call_id, now, no_answer=True)
        else:
            self._call_event(call_id, "end")

    def withdraw(self, call_id: str, now: float) -> None:
        """A launched call was never placed (no lead was allowed): forget it without counting it."""
        call = self._calls.pop(call_id, None)
        if call is None or call.state is not CallState.RINGING:
            raise InvalidTransition(f"call {call_id!r} cannot be withdrawn (unknown or already answered)")
        self._ringing.pop(call_id, None)
        self._picked_up.discard(call_id)
        self.stats.dialed -= 1
        if call.agent is not None:
            self._release_reserved(call, now)
        self._changed = True

    def ready_agents(self) -> list[str]:
        """Agents ready for a call, longest-ready first."""
        return list(self._ready)

    def machine_to_agent(self, call_id: str, now: float) -> None:
        """The campaign passes machine answers to an agent: queue it like a live answer."""
        call = self._call_event(call_id, "to_agent")
        self._waiting[call_id] = call
        self._connect_waiting(now)

    # -------------------------------------------------------------------------- inputs: context

    def set_inbound_at_risk(self, at_risk: bool) -> None:
        """Blending: while inbound service level is at risk, launch nothing new."""
        self._inbound_at_risk = at_risk
        self._changed = True

    def set_paused(self, paused: bool) -> None:
        """Pause (launch and offer nothing new; calls in flight are still connected) or resume."""
        self.paused = paused
        self._changed = True

    def set_answer_supervision(self, available: bool) -> None:
        self._answer_supervision = available
        if not available and self.mode == "predictive":
            self._downgrade("lines cannot report answer (no answer supervision)")

    def set_compliance_window(self, live_answers: int, abandoned: int) -> None:
        """The measured figures for the whole compliance window (e.g. 30 days from the audit log)."""
        self._window_live = live_answers
        self._window_abandoned = abandoned
        self._changed = True

    def _downgrade(self, reason: str) -> None:
        old = self.mode
        self.mode = "progressive"
        self._pending.append(ModeChanged(old, "progressive", reason))

    # ---------------------------------------------------------------------------------- timers

    def next_timer(self) -> float | None:
        deadlines = [self._next_tick]
        if self._waiting:
            first = next(iter(self._waiting.values()))
            deadlines.append(first.answered + self.settings.abandon_after)  # type: ignore[operator]
        first_ringing = next((c for c in self._ringing.values() if c.id not in self._picked_up), None)
        if first_ringing is not None:
            deadlines.append(first_ringing.launched + self.settings.ring_timeout)
        return min(deadlines)

    def handle_timer(self, now: float) -> None:
        limit = self.settings.abandon_after
        while self._waiting:
            call = next(iter(self._waiting.values()))
            if call.answered + limit > now:  # type: ignore[operator]
                break
            self._abandon(call, now, play_message=True)
        for call in list(self._ringing.values()):  # in launch order
            if call.launched + self.settings.ring_timeout > now:
                break
            if call.id in self._picked_up:
                continue
            self._pending.append(StopRinging(call.id))
            self.call_failed(call.id, now, no_answer=True)
        if now >= self._next_tick:
            self._next_tick = now + self.settings.tick
            self._changed = True

    # ------------------------------------------------------------------------------- decisions

    def poll(self, now: float) -> list[Action]:
        """Fire due timers, decide what to launch, and return every action due now."""
        timer = self.next_timer()
        if timer is not None and timer <= now:
            self.handle_timer(now)
        if self._changed:
            self._changed = False
            self._decide(now)
        actions, self._pending = self._pending, []
        return actions

    def statistics(self) -> DialerStatistics:
        return self.stats

    @property
    def in_flight(self) -> int:
        return len(self._ringing)

    @property
    def projected_rate_limit(self) -> float:
        """The projected abandon rate the pacer currently allows for the calls in flight."""
        return self._limit

    def measured_abandon_rate(self) -> float:
        live = self._window_live if self._window_live is not None else self.stats.live_answers
        abandoned = self._window_abandoned if self._window_abandoned is not None else self.stats.abandoned
        return abandoned / live if live else 0.0

    def _effective_aim(self) -> float:
        """The aim, lowered as the measured rate nears the cap; never raised to use up slack."""
        s = self.settings
        live = self._window_live if self._window_live is not None else self.stats.live_answers
        abandoned = self._window_abandoned if self._window_abandoned is not None else self.stats.abandoned
        prior = s.rate_prior_weight
        measured = (abandoned + s.target_abandon_rate * prior) / (live + prior)
        stop_at = s.target_abandon_rate + 0.6 * (s.max_abandon_rate - s.target_abandon_rate)
        if measured <= s.target_abandon_rate:
            return s.target_abandon_rate
        if measured >= stop_at:
            return 0.0
        return s.target_abandon_rate * (stop_at - measured) / (stop_at - s.target_abandon_rate)

    def _decide(self, now: float) -> None:
        if self.paused:
            return
        if self.mode == "preview":
            for agent in self._ready.values():
                if not agent.offered and not self._inbound_at_risk:
                    agent.offered = True
                    self._pending.append(OfferPreview(agent.id))
            return
        if self._inbound_at_risk:
            return
        ready = len(self._ready)
        in_flight = len(self._ringing) + len(self._waiting)
        room = self._line_room()
        charge = 0.0
        if self.mode == "progressive":
            ratio = self.settings.lines_per_agent
            if ratio > 1.0 and self.settings.cap_guard and self._effective_aim() <= 0.0:
                ratio = 1.0  # measured rate at the cap: only lines that cannot abandon
            want = math.floor(ratio * ready + 1e-9) - in_flight
        else:
            want, charge = self._predictive(now, ready, in_flight, room)
        for _ in range(min(want, room)):
            self._launch(now).charge = charge

    def _line_room(self) -> int:
        s = self.settings
        cap = math.floor(s.max_lines_per_agent * len(self._present))
        if s.max_lines is not None:
            cap = min(cap, s.max_lines)
        return max(0, cap - len(self._ringing) - len(self._waiting))

    def _predictive(self, now: float, ready: int, in_flight: int, room: int) -> tuple[int, float]:
        """How many calls to launch now, and the expected abandons each one adds."""
        s = self.settings
        safe = max(0, ready - in_flight)  # one ringing call per ready agent can never abandon
        aim = self._effective_aim()
        self._control(now, aim)
        busy = [a.since for a in self._busy.values()]
        if room <= safe or aim <= 0.0 or (not busy and ready == 0):
            return safe, 0.0
        self._refresh_tables(now)
        horizons = self._horizons
        if self._ringing:
            elapsed = now - np.fromiter((c.launched for c in self._ringing.values()), float, len(self._ringing))
            rows = np.minimum((elapsed * 2.0).astype(np.intp), len(self._q_table) - 1)
            q = self._q_table[rows]
            demand = q.sum(axis=0) + len(self._waiting)
            demand_var = demand - len(self._waiting) - (q * q).sum(axis=0)
        else:
            demand = np.full(horizons.shape, float(len(self._waiting)))
            demand_var = np.zeros(horizons.shape)
        supply = np.full(horizons.shape, float(ready))
        supply_var = np.zeros(horizons.shape)
        if busy:
            busy_for = now - np.asarray(busy)
            rows = np.minimum((busy_for * 0.25).astype(np.intp), len(self._r_table) - 1)
            r = self._r_table[rows]
            supply = supply + r.sum(axis=0)
            supply_var = r.sum(axis=0) - (r * r).sum(axis=0)
        fresh = self._q_table[0]
        p_live = max(self._p_live, 1e-3)
        fresh_var = fresh * (1.0 - fresh)
        # Marginal cost grows with k, so look at a first block of candidates and widen only if all pass.
        top = min(room, safe + 8 + 2 * ready)
        while True:
            k = np.arange(top + 1, dtype=float)[:, None]
            mean = demand[None, :] + k * fresh[None, :] - supply[None, :]
            var = demand_var[None, :] + k * fresh_var[None, :] + supply_var[None, :] + _VAR_EXTRA
            expected = expected_excess(mean, np.sqrt(var)).max(axis=1)
            live = demand[-1] + k[1:, 0] * p_live
            over = np.nonzero(expected[1:] > self._limit * live)[0]
            if over.size or top >= room:
                break
            top = min(room, 2 * top + 8)
        launch = int(over[0]) if over.size else top
        launch = max(launch, safe)
        added = float(expected[launch] - expected[0])
        self.stats.model_abandons += added
        return launch, (added / launch if launch else 0.0)

    def _refresh_tables(self, now: float) -> None:
        """Tabulate the learned probabilities on a grid; refreshed every few seconds, not per decision."""
        if now < self._tables_due:
            return
        self._tables_due = now + 5.0
        s = self.settings
        ring_grid = np.arange(0.0, s.ring_timeout + 1.0, 0.5)
        self._q_table = self.answers.live_within(ring_grid, self._horizons)
        self._p_live = float(self.answers.live_eventually(np.zeros(1))[0])
        if now >= self._busy_table_due:
            self._busy_table_due = now + 30.0
            busy_grid = np.arange(0.0, 3600.0, 4.0)
            self._r_table = self.handling.ready_within(busy_grid, self._horizons + s.abandon_after)

    def _control(self, now: float, aim: float) -> None:
        """Set the projected-rate limit: the aim, corrected by how the model's past forecasts fared.

        The model's ``max_h E[excess]`` understates the true abandons (the expectation of a maximum is
        larger than the maximum of expectations), so the ratio of abandons that happened to abandons it
        forecast for the same calls scales the limit. The prior (15 against 10) starts from the bias seen
        in simulation and lets real data take over after a few dozen abandons.
        """
        calibration = (self.stats.abandoned + _CAL_PRIOR[0]) / (self._charged_resolved + _CAL_PRIOR[1])
        self.calibration = min(max(calibration, _CAL_MIN), 3.0)
        self._limit = aim / self.calibration

    # ---------------------------------------------------------------------------------- helpers

    def _launch(self, now: float, agent: str | None = None) -> _Call:
        self._next_id += 1
        call = _Call(f"{self._prefix}{self._next_id}", CallState.RINGING, now, agent=agent)
        self._calls[call.id] = call
        self._ringing[call.id] = call
        self.stats.dialed += 1
        self._pending.append(Dial(call.id, agent))
        return call

    def _release_reserved(self, call: _Call, now: float) -> None:
        agent = self._agents.get(call.agent or "")
        if agent is not None and agent.state is AgentState.RESERVED:
            self._agent_event(agent.id, "release", now)

    def _connect_waiting(self, now: float) -> None:
        while self._waiting:
            call = next(iter(self._waiting.values()))
            if call.agent is not None and self._agents[call.agent].state is AgentState.RESERVED:
                agent_id = call.agent
            elif self._ready:
                agent_id = next(iter(self._ready))
            else:
                return
            del self._waiting[call.id]
            self._call_event(call.id, "connect")
            self._agent_event(agent_id, "connect", now)
            call.agent = agent_id
            wait = now - (call.answered if call.answered is not None else now)
            self.stats.connected += 1
            self.stats.total_wait += wait
            self._pending.append(Connect(call.id, agent_id, wait))

    def _abandon(self, call: _Call, now: float, *, play_message: bool) -> None:
        self._waiting.pop(call.id, None)
        self._call_event(call.id, "abandon")
        self.stats.abandoned += 1
        self._pending.append(Abandon(call.id, play_message))
