"""One campaign end to end, sans-IO: pacing + hopper + compliance + audit, as commands.

:class:`CampaignDialer` is what the engine runs per ``[[campaigns]]`` entry. Its trio shell (the lead's)
feeds it what the telephony layer reports and carries out the :data:`Command` objects it returns from
:meth:`CampaignDialer.poll`, persisting :meth:`CampaignDialer.drain_records` output *before* placing the
calls that poll returned (the journal is write-ahead: nobody is dialed twice after a restart).

Commands::

    PlaceCall(call, number, caller_id, lead, agent)     number is a checked E.164 dial string
    ConnectAgent(call, agent, lead, fields, script)
    PlayMessage(call, recording, reason)                the information message on an abandoned call,
                                                        or the campaign's message after a machine's beep
    Hangup(call, reason)
    ShowPreview(agent, lead, number, fields)            preview: answer with preview_start/preview_skip
    Remind(callback)                                    a scheduled callback is near
    PacingChanged(old, new, reason)                     e.g. predictive refused on unsupervised lines
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._campaign import CampaignSettings, Outcome
from ._compliance import (POLICIES, AbandonmentPolicy, AbandonTally, AttemptLimiter, AuditLog, AuditRecord,
                          CallingWindow, CompliancePolicy, DoNotCallList, RecontactLockout)
from ._hopper import Attempt, Callback, Hopper
from ._pacing import Abandon, Connect, Dial, Dialer, ModeChanged, OfferPreview, PacingSettings, StopRinging


@dataclass(frozen=True)
class PlaceCall:
    call: str
    number: str
    caller_id: str
    lead: str
    agent: str | None = None


@dataclass(frozen=True)
class ConnectAgent:
    call: str
    agent: str
    lead: str
    fields: Mapping[str, str] = field(default_factory=dict)
    script: str = ""


@dataclass(frozen=True)
class PlayMessage:
    call: str
    recording: str
    reason: str  # "abandoned" or "machine"


@dataclass(frozen=True)
class Hangup:
    call: str
    reason: str


@dataclass(frozen=True)
class ShowPreview:
    agent: str
    lead: str
    number: str
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Remind:
    callback: Callback


@dataclass(frozen=True)
class PacingChanged:
    old: str
    new: str
    reason: str


Command = PlaceCall | ConnectAgent | PlayMessage | Hangup | ShowPreview | Remind | PacingChanged


@dataclass
class _Live:
    attempt: Attempt
    verdict: str | None = None  # "live" / "machine" from detection
    connected_agent: str | None = None
    finished: bool = False


class CampaignDialer:
    """One campaign's dialer; see the module docstring for the protocol."""

    def __init__(self, settings: CampaignSettings, *, now: float, hopper: Hopper | None = None,
                 dnc: DoNotCallList | None = None, audit: AuditLog | None = None,
                 policy: AbandonmentPolicy | None = None, answer_supervision: bool = True) -> None:
        self.settings = settings
        self.policy = policy or POLICIES.get(settings.compliance) or POLICIES["us-fcc"]
        ring_timeout = max(settings.ring_timeout, self.policy.min_ring)
        self.dialer = Dialer(PacingSettings(
            mode=settings.mode, lines_per_agent=settings.lines_per_agent, max_lines=settings.max_lines,
            ring_timeout=ring_timeout, abandon_after=min(settings.abandon_after, self.policy.abandon_after),
            target_abandon_rate=min(settings.target_abandon_rate, self.policy.max_rate),
            max_abandon_rate=min(settings.max_abandon_rate, self.policy.max_rate),
            answer_supervision=answer_supervision), now=now, call_prefix=f"{settings.name}-")
        schedule = settings.schedule
        self.compliance = CompliancePolicy(
            abandonment=self.policy,
            window=CallingWindow(schedule.start, schedule.end, tuple(schedule.days), frozenset(schedule.holidays),
                                 schedule.timezone),
            dnc=dnc if dnc is not None else DoNotCallList(),
            attempts=AttemptLimiter(settings.max_attempts_per_day),
            lockout=RecontactLockout(settings.recontact_lockout))
        self.hopper = hopper or Hopper(retry=settings.retry_rule)
        self.audit = audit or AuditLog()
        self._calls: dict[str, _Live] = {}
        self._previews: dict[str, Attempt] = {}  # agent -> the lead shown to it
        self._commands: list[Command] = []
        self._window: deque[tuple[float, str]] = deque()
        self._window_counts: Counter[str] = Counter()
        self.amd_confusion: Counter[tuple[str, str]] = Counter()  # (detector said, disposition said)

    # ------------------------------------------------------------------------------------ helpers

    def _record(self, now: float, kind: str, **detail: Any) -> AuditRecord:
        return self.audit.append(now, self.settings.name, kind, **detail)

    def _count(self, now: float, kind: str) -> None:
        self._window.append((now, kind))
        self._window_counts[kind] += 1

    def _expire(self, now: float) -> None:
        while self._window and self._window[0][0] < now - self.policy.window:
            _, kind = self._window.popleft()
            self._window_counts[kind] -= 1

    def tally(self, now: float) -> AbandonTally:
        self._expire(now)
        return AbandonTally(self._window_counts["live"], self._window_counts["abandon"],
                            self._window_counts["machine"], self.machine_misclassified())

    def abandon_rate(self, now: float) -> float:
        """The campaign's rate under its policy, over the policy's window (30 days for the US)."""
        return self.policy.rate(self.tally(now))

    def machine_misclassified(self) -> float:
        """Share of machine verdicts that agents' dispositions showed to be people."""
        said_machine = self.amd_confusion[("machine", "human")] + self.amd_confusion[("machine", "machine")]
        return self.amd_confusion[("machine", "human")] / said_machine if said_machine else 0.0

    def _gate(self, number: str, now: float) -> tuple[str, float | None] | None:
        reason = self.compliance.refusal(number, now)
        if reason is None:
            return None
        self._record(now, "refused", number=number, reason=reason)
        if reason.startswith("do-not-call"):
            return reason, math.inf
        if self.compliance.window is not None and self.compliance.window.refusal(number, now) == reason:
            return reason, self.compliance.window.next_open(number, now)
        return reason, now + 3600.0

    def _place(self, call: str, attempt: Attempt, now: float, agent: str | None = None) -> None:
        self._calls[call] = _Live(attempt)
        self.compliance.attempts.record(attempt.number, now)
        self._record(now, "dial", call=call, number=attempt.number, lead=attempt.lead, attempt=attempt.attempt,
                     agent=agent)
        self._commands.append(PlaceCall(call, attempt.number, self.settings.caller_id, attempt.lead, agent))

    def _finish(self, call: str, outcome: Outcome, now: float) -> None:
        live = self._calls.get(call)
        if live is None or live.finished:
            return
        live.finished = True
        self.hopper.finish(live.attempt.attempt, outcome, now)

    # ------------------------------------------------------------------------------------- inputs

    def agent_ready(self, agent: str, now: float) -> None:
        self.dialer.agent_ready(agent, now)

    def agent_away(self, agent: str, now: float) -> None:
        self.dialer.agent_away(agent, now)
        attempt = self._previews.pop(agent, None)
        if attempt is not None:
            self.hopper.finish(attempt.attempt, Outcome.SKIPPED, now)

    def set_inbound_at_risk(self, at_risk: bool) -> None:
        self.dialer.set_inbound_at_risk(at_risk)

    def previewed(self, agent: str) -> Attempt | None:
        """The lead on show to ``agent`` (preview mode), waiting for start or skip."""
        return self._previews.get(agent)

    @property
    def paused(self) -> bool:
        return self.dialer.paused

    def set_paused(self, paused: bool, now: float, *, by: str = "") -> None:
        """A supervisor pauses or resumes the campaign (audited; calls in flight carry on)."""
        if paused != self.dialer.paused:
            self.dialer.set_paused(paused)
            self._record(now, "paused" if paused else "resumed", by=by)

    def preview_start(self, agent: str, now: float) -> None:
        attempt = self._previews.pop(agent)
        call = self.dialer.preview_start(agent, now)
        self._place(call, attempt, now, agent)

    def preview_skip(self, agent: str, now: float) -> None:
        attempt = self._previews.pop(agent)
        self.hopper.finish(attempt.attempt, Outcome.SKIPPED, now)
        self._record(now, "skipped", number=attempt.number, lead=attempt.lead, agent=agent)
        self.dialer.preview_skip(agent, now)

    def awaiting_answer(self, call: str) -> bool:
        """True while ``call`` is placed and nobody has said yet who answered (detection may still run)."""
        live = self._calls.get(call)
        return live is not None and not live.finished and live.verdict is None

    def picked_up(self, call: str) -> None:
        """The far end answered and detection is listening (then :meth:`answered`): no ring timeout now."""
        if self.awaiting_answer(call):
            self.dialer.call_picked_up(call)

    def answered(self, call: str, now: float, *, machine: bool = False, amd: str | None = None) -> None:
        """Far end answered; ``now`` is when detection decided (the end of a person's greeting).
        ``amd``: the detector's cause (``HUMAN``, ``NOTSURE``, ``LONGGREETING``...), kept in the audit
        record so its verdicts can be checked against agents' dispositions later."""
        live = self._calls[call]
        live.verdict = "machine" if machine else "live"
        self._count(now, "machine" if machine else "live")
        detail = {} if amd is None else {"amd": amd}
        self._record(now, "answer-machine" if machine else "answer-live", call=call, number=live.attempt.number,
                     **detail)
        self.dialer.call_answered(call, now, machine=machine)
        if machine and live.attempt.agent is None:
            action = self.settings.on_machine
            if action == "hangup":
                self._commands.append(Hangup(call, "machine"))
                self.dialer.call_ended(call, now)
                self._finish(call, Outcome.MACHINE, now)
            elif action == "agent":
                self.dialer.machine_to_agent(call, now)

    def beep(self, call: str, now: float) -> None:
        """The machine's beep ended: leave the campaign's message, if it has one."""
        live = self._calls.get(call)
        if live is None or live.finished:
            return  # hung up meanwhile
        if self.settings.on_machine == "message" and live.verdict == "machine" and live.connected_agent is None:
            self._commands.append(PlayMessage(call, self.settings.machine_message, "machine"))
            self._record(now, "machine-message", call=call, number=live.attempt.number)

    def failed(self, call: str, now: float, outcome: Outcome) -> None:
        """Busy, congestion, invalid number, fax, or no answer reported by the network."""
        live = self._calls[call]
        self.dialer.call_failed(call, now, no_answer=outcome is Outcome.NO_ANSWER)
        self._record(now, outcome.value, call=call, number=live.attempt.number)
        self._finish(call, outcome, now)

    def ended(self, call: str, now: float) -> None:
        """The call is over (either side hung up)."""
        live = self._calls.get(call)
        if live is None:
            return
        self.dialer.call_ended(call, now)
        self._pump(now)  # a person hanging up while waiting is an abandon: record it now
        if not live.finished:
            outcome = (Outcome.HUMAN if live.connected_agent else
                       Outcome.MACHINE if live.verdict == "machine" else Outcome.NO_ANSWER)
            self._finish(call, outcome, now)
        self._record(now, "hangup", call=call, number=live.attempt.number)

    def disposition(self, call: str, disposition: str, now: float, *, callback_at: float | None = None,
                    callback_agent: str | None = None, anyone: bool = False) -> None:
        """The agent's disposition. ``callback`` schedules a callback (owned by the agent unless
        ``anyone``); ``do-not-call`` adds an opt-out; ``machine`` feeds the detector's measured accuracy."""
        if disposition not in self.settings.dispositions:
            raise ValueError(f"unknown disposition {disposition!r}; the campaign has {self.settings.dispositions}")
        live = self._calls.pop(call)
        lead = live.attempt.lead
        if live.verdict is not None:
            self.amd_confusion[(live.verdict, "machine" if disposition == "machine" else "human")] += 1
        self._record(now, "disposition", call=call, number=live.attempt.number, disposition=disposition,
                     agent=live.connected_agent)
        if disposition == "callback":
            if callback_at is None:
                raise ValueError("a callback disposition needs callback_at")
            owner = None if anyone else (callback_agent or live.connected_agent)
            self.hopper.schedule_callback(lead, callback_at, agent=owner)
        elif disposition == "do-not-call":
            self.compliance.dnc.opt_out(live.attempt.number, "voice", now, note=f"campaign {self.settings.name}")
            self._record(now, "opt-out", number=live.attempt.number, channel="voice")
            self.hopper.close(lead, "do-not-call")
        elif disposition in ("sale", "wrong-number", "no-sale"):
            self.hopper.close(lead, disposition)

    def opted_out(self, number: str, channel: str, now: float, note: str = "") -> None:
        """Someone asked, on ``channel`` (``sms``, ``email``...), not to be contacted: never dial ``number``
        again (the do-not-call list may be shared by every campaign) and say so in the audit log."""
        if self.compliance.dnc.match(number) is None:
            self.compliance.dnc.opt_out(number, channel, now, note=note)
        self._record(now, "opt-out", number=number, channel=channel)

    # -------------------------------------------------------------------------------------- clock

    def next_timer(self) -> float | None:
        return self.dialer.next_timer()

    def handle_timer(self, now: float) -> None:
        self.dialer.handle_timer(now)

    def drain_records(self) -> tuple[list[dict[str, Any]], list[AuditRecord]]:
        """(hopper journal, audit records) added since last time: persist both before placing calls."""
        return self.hopper.drain(), self.audit.drain()

    def poll(self, now: float) -> list[Command]:
        """Everything to do now. Persist :meth:`drain_records` first, then carry these out in order."""
        tally = self.tally(now)
        self.dialer.set_compliance_window(tally.live_answers, tally.abandoned)
        ready = self.dialer.ready_agents()
        if ready and not self.dialer.paused:  # paused: no callbacks either, nothing new at all
            attempt = self.hopper.take_callback(now, ready_agents=ready, gate=self._gate)
            if attempt is not None and attempt.agent is not None:
                call = self.dialer.preview_start(attempt.agent, now)
                self._place(call, attempt, now, attempt.agent)
        for callback in self.hopper.reminders(now):
            self._commands.append(Remind(callback))
        self._pump(now)
        commands, self._commands = self._commands, []
        return commands

    def _pump(self, now: float) -> None:
        for action in self.dialer.poll(now):
            if isinstance(action, Dial):
                if action.call in self._calls:
                    continue  # placed already (preview or callback)
                attempt = self.hopper.take(now, self._gate)
                if attempt is None:
                    self.dialer.withdraw(action.call, now)
                else:
                    self._place(action.call, attempt, now)
            elif isinstance(action, Connect):
                live = self._calls[action.call]
                live.connected_agent = action.agent
                self._record(now, "connect", call=action.call, number=live.attempt.number, agent=action.agent,
                             wait=round(action.wait, 3))
                self._commands.append(ConnectAgent(action.call, action.agent, live.attempt.lead,
                                                   self.hopper.lead_fields(live.attempt.lead), self.settings.script))
            elif isinstance(action, Abandon):
                live = self._calls[action.call]
                self._count(now, "abandon")
                self._record(now, "abandon", call=action.call, number=live.attempt.number,
                             message=action.play_message)
                self.compliance.lockout.abandoned(live.attempt.number, now)
                if action.play_message:
                    self._commands.append(PlayMessage(action.call, self.settings.abandon_message, "abandoned"))
                    self._commands.append(Hangup(action.call, "abandoned"))
                self._finish(action.call, Outcome.ABANDONED, now)
            elif isinstance(action, StopRinging):
                live = self._calls[action.call]
                self._record(now, "no-answer", call=action.call, number=live.attempt.number)
                self._commands.append(Hangup(action.call, "no-answer"))
                self._finish(action.call, Outcome.NO_ANSWER, now)
            elif isinstance(action, OfferPreview):
                attempt = self.hopper.take(now, self._gate)
                if attempt is None:
                    self.dialer.preview_skip(action.agent, now)  # nothing to show yet; offered again later
                else:
                    self._previews[action.agent] = attempt
                    self._commands.append(ShowPreview(action.agent, attempt.lead, attempt.number,
                                                      self.hopper.lead_fields(attempt.lead)))
            elif isinstance(action, ModeChanged):
                self._record(now, "mode-changed", old=action.old, new=action.new, reason=action.reason)
                self._commands.append(PacingChanged(action.old, action.new, action.reason))
