"""The dialer service: runs each ``[[campaigns]]`` entry's sans-IO ``CampaignDialer`` for real.

Per campaign one task loads new leads from the store, tells the dialer which agents are free, asks it
what to do, **persists the hopper journal and audit records first** (write-ahead: nobody is dialed
twice after a restart), and then carries the commands out through the engine's voice channels.
Agents busy on an outbound call are paused in routing with the reason ``outbound`` so inbound queues do
not offer them anything meanwhile (blending); inbound service-level risk holds the dialer back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from ._dialer_listen import listen_to_answer
from ._dialer_optouts import OptOuts
from ._model import Direction, Disposition, Interaction, InteractionKind, InteractionState
from ._registry import Migration
from .abc import DialResult, Service
from .dialing import (
    AnswerListener,
    AuditRecord,
    BeepEnded,
    CampaignDialer,
    CampaignSettings,
    ConnectAgent,
    Decided,
    Hangup,
    Hopper,
    Outcome,
    PacingChanged,
    PlaceCall,
    PlayMessage,
    Remind,
    ShowPreview,
    amd_confusion,
    outcome_from_sip,
)
from .dialing.leads import Lead

if TYPE_CHECKING:
    from ._engine import Engine

log = logging.getLogger("centralita.dialer")

MIGRATIONS = [
    Migration(
        "dialer",
        1,
        """
        CREATE TABLE dialer_leads (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, campaign TEXT NOT NULL, lead TEXT NOT NULL,
            numbers TEXT NOT NULL, fields TEXT NOT NULL, imported REAL NOT NULL,
            UNIQUE (campaign, lead)
        );
        CREATE TABLE dialer_numbers (campaign TEXT NOT NULL, number TEXT NOT NULL, PRIMARY KEY (campaign, number));
        CREATE TABLE dialer_journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, campaign TEXT NOT NULL, record TEXT NOT NULL);
        CREATE INDEX dialer_journal_campaign ON dialer_journal(campaign, seq);
        CREATE TABLE dialer_audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, campaign TEXT NOT NULL, time REAL NOT NULL,
                                   kind TEXT NOT NULL, record TEXT NOT NULL);
        CREATE INDEX dialer_audit_campaign ON dialer_audit(campaign, time);
        """,
    )
]

_DIAL_OUTCOMES = {
    "busy": Outcome.BUSY,
    "no-answer": Outcome.NO_ANSWER,
    "congestion": Outcome.CONGESTION,
    "invalid": Outcome.INVALID,
    "fax": Outcome.FAX,
}


class Campaign:
    """One running campaign: the sans-IO dialer plus the calls it has in flight."""

    def __init__(self, service: DialerService, settings: CampaignSettings, dialer: CampaignDialer) -> None:
        self.service = service
        self.settings = settings
        self.dialer = dialer
        self.calls: dict[str, Interaction] = {}  # dialer call id -> interaction
        self.by_interaction: dict[str, str] = {}
        self.agents_on_calls: dict[str, str] = {}  # agent -> dialer call id
        self.ringing: dict[str, trio.CancelScope] = {}  # dialer call id -> its channel.dial() in progress
        self.ready_agents: set[str] = set()
        self.last_lead_seq = 0
        self.kick = trio.Event()
        self.previews: dict[str, dict[str, Any]] = {}
        #: completed passes of the campaign loop (status pages; tests wait on it)
        self.passes = 0


class DialerService(Service):
    name = "dialer"

    def __init__(self, engine: Engine, campaigns: list[CampaignSettings], clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = [c for c in campaigns if c.enabled]
        self.campaigns: dict[str, Campaign] = {}
        self._nursery: trio.Nursery | None = None
        #: one do-not-call list for every campaign: voice opt-outs and other channels' (SMS STOP...)
        self.opt_outs = OptOuts(engine, clock)
        self.dnc = self.opt_outs.dnc

    def ready(self) -> bool:
        return self._nursery is not None

    def statistics(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, campaign in self.campaigns.items():
            now = self.clock()
            out[name] = {"live_calls": len(campaign.calls), "abandon_rate": campaign.dialer.abandon_rate(now),
                         "hopper": len(campaign.dialer.hopper), "mode": campaign.dialer.dialer.mode,
                         "paused": campaign.dialer.paused,
                         # detector said / disposition said, e.g. "machine/human": people classed as machines
                         "amd": {f"{said}/{truth}": n for (said, truth), n in sorted(campaign.dialer.amd_confusion.items())}}
        return out

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await self.opt_outs.restore(s.region for s in self.settings)
            for settings in self.settings:
                self.campaigns[settings.name] = await self._restore(settings)
            self._nursery = nursery
            for campaign in self.campaigns.values():
                nursery.start_soon(self._serve, campaign)
            nursery.start_soon(self._flush_at_exit)
            task_status.started()

    async def _flush_at_exit(self) -> None:
        """At shutdown, write the records made since the last pass (a disposition given a moment before
        the stop, the hang-ups of calls ended by it): the audit log must not lose them."""
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                for campaign in self.campaigns.values():
                    try:
                        await self._persist(campaign)
                    except Exception:
                        log.exception("campaign %s: audit and journal records could not be saved at shutdown",
                                      campaign.settings.name)

    async def _restore(self, settings: CampaignSettings) -> Campaign:
        store = self.engine.store
        assert store is not None
        rows = await store.fetchall("SELECT record FROM dialer_journal WHERE campaign = ? ORDER BY seq", (settings.name,))
        hopper, interrupted = Hopper.restore([json.loads(r["record"]) for r in rows], now=self.clock(),
                                             retry=settings.retry_rule)
        if interrupted:
            log.warning("campaign %s: %d calls were in flight at the last stop; closed as interrupted",
                        settings.name, len(interrupted))
        supervised = self._lines_report_answer()
        policy = self.engine.compliance_policies.get(settings.compliance)
        dialer = CampaignDialer(settings, now=self.clock(), hopper=hopper, answer_supervision=supervised, policy=policy,
                                dnc=self.dnc)
        # The detector's verdicts against agents' dispositions so far (the audit log keeps both).
        rows = await store.fetchall("SELECT record FROM dialer_audit WHERE campaign = ? AND kind IN "
                                    "('answer-live', 'answer-machine', 'disposition') ORDER BY seq", (settings.name,))
        dialer.amd_confusion.update(amd_confusion(
            (AuditRecord(**json.loads(r["record"])) for r in rows), settings.name))
        campaign = Campaign(self, settings, dialer)
        last = await store.fetchone("SELECT max(seq) AS seq FROM dialer_leads WHERE campaign = ? AND lead IN "
                                    "(SELECT json_extract(record, '$.lead') FROM dialer_journal WHERE campaign = ? "
                                    "AND json_extract(record, '$.op') = 'lead')", (settings.name, settings.name))
        campaign.last_lead_seq = int(last["seq"] or 0) if last else 0
        return campaign

    def _lines_report_answer(self) -> bool:
        """Predictive pacing needs answer supervision; analog lines without it force a downgrade."""
        from .abc import Capability

        lines = self.engine.devices.with_capability(Capability.VOICE_LINE)
        return all(Capability.ANSWER_SUPERVISION in d.capabilities for d in lines)

    # ---------------------------------------------------------------------------------- the loop

    async def _serve(self, campaign: Campaign) -> None:
        while True:
            await self.opt_outs.apply_new(self.campaigns.values())
            await self._load_leads(campaign)
            now = self.clock()
            self._sync_agents(campaign, now)
            campaign.dialer.handle_timer(now)
            commands = campaign.dialer.poll(now)
            await self._persist(campaign)
            for command in commands:
                self._carry_out(campaign, command)
            campaign.passes += 1
            due = campaign.dialer.next_timer()
            timeout = 1.0 if due is None else min(1.0, max(0.0, due - self.clock()))
            with trio.move_on_after(timeout):
                await campaign.kick.wait()
            campaign.kick = trio.Event()

    async def _load_leads(self, campaign: Campaign) -> None:
        store = self.engine.store
        assert store is not None
        rows = await store.fetchall(
            "SELECT seq, lead, numbers, fields FROM dialer_leads WHERE campaign = ? AND seq > ? ORDER BY seq LIMIT 1000",
            (campaign.settings.name, campaign.last_lead_seq),
        )
        for row in rows:
            campaign.dialer.hopper.add_lead(row["lead"], json.loads(row["numbers"]), json.loads(row["fields"]))
            campaign.last_lead_seq = row["seq"]

    async def _persist(self, campaign: Campaign) -> None:
        journal, audit = campaign.dialer.drain_records()
        if not journal and not audit:
            return
        name = campaign.settings.name
        statements: list[tuple[str, Any]] = [
            ("INSERT INTO dialer_journal(campaign, record) VALUES (?, ?)", (name, json.dumps(r))) for r in journal
        ]
        statements += [
            ("INSERT INTO dialer_audit(campaign, time, kind, record) VALUES (?, ?, ?, ?)",
             (name, r.time, r.kind, json.dumps(dataclasses.asdict(r), default=dict)))
            for r in audit
        ]
        assert self.engine.store is not None
        await self.engine.store.write_many(statements)

    def _campaign_agents(self, campaign: Campaign) -> set[str]:
        agents = set(campaign.settings.agents)
        for queue in self.engine.config.queues:
            if queue.name in campaign.settings.queues:
                agents.update(queue.members)
        return agents

    def _sync_agents(self, campaign: Campaign, now: float) -> None:
        """Tell the dialer who is free: available in routing, idle, phone reachable, not on our calls."""
        router = self.engine.acd.router
        for agent in self._campaign_agents(campaign):
            status = router.agent_status(agent)
            free = (status["status"] == "available" and not status["offers"] and not status["active"]
                    and agent not in campaign.agents_on_calls
                    and self.engine.endpoint_reachable(self.engine.agent_endpoint(agent)))
            if free and agent not in campaign.ready_agents:
                campaign.ready_agents.add(agent)
                campaign.dialer.agent_ready(agent, now)
            elif not free and agent in campaign.ready_agents:
                campaign.ready_agents.discard(agent)
                campaign.dialer.agent_away(agent, now)

    # ------------------------------------------------------------------------------- commands

    def _carry_out(self, campaign: Campaign, command: Any) -> None:
        assert self._nursery is not None
        if isinstance(command, PlaceCall):
            self._nursery.start_soon(self._place_call, campaign, command)
        elif isinstance(command, ConnectAgent):
            self._nursery.start_soon(self._connect_agent, campaign, command)
        elif isinstance(command, PlayMessage):
            self._nursery.start_soon(self._play_message, campaign, command)
        elif isinstance(command, Hangup):
            interaction = campaign.calls.get(command.call)
            ringing = campaign.ringing.get(command.call)
            if ringing is not None:
                ringing.cancel()  # still dialing: the channel cancels the attempt (SIP CANCEL)
            elif interaction is not None:
                self._nursery.start_soon(self._hang_up, campaign, interaction, command.reason)
        elif isinstance(command, ShowPreview):
            campaign.previews[command.agent] = {"lead": command.lead, "number": command.number, "fields": dict(command.fields)}
            self.engine.bus.publish("DialerPreview", Campaign=campaign.settings.name, Agent=command.agent,
                                    Lead=command.lead, Number=command.number)
        elif isinstance(command, Remind):
            self.engine.bus.publish("DialerCallbackReminder", Campaign=campaign.settings.name,
                                    Lead=command.callback.lead, Agent=command.callback.agent or "", Due=command.callback.at)
        elif isinstance(command, PacingChanged):
            log.warning("campaign %s: pacing %s -> %s (%s)", campaign.settings.name, command.old, command.new, command.reason)
            self.engine.bus.publish("DialerPacingChanged", Campaign=campaign.settings.name, Old=command.old,
                                    New=command.new, Reason=command.reason)

    def _channel(self) -> Any:
        return self.engine.dialing_channel()

    async def _place_call(self, campaign: Campaign, command: PlaceCall) -> None:
        now = self.clock()
        channel = self._channel()
        try:
            number = self.engine.check_dial(command.number, caller=command.caller_id, purpose="dialer")
        except ValueError as exc:
            log.error("campaign %s: %s", campaign.settings.name, exc)
            campaign.dialer.failed(command.call, now, Outcome.INVALID)
            return self._wake(campaign)
        if channel is None:
            log.error("campaign %s: no voice channel can place calls", campaign.settings.name)
            campaign.dialer.failed(command.call, now, Outcome.FAILED)
            return self._wake(campaign)
        interaction = self.engine.new_interaction(
            InteractionKind.VOICE, Direction.OUTBOUND, from_=command.caller_id or campaign.settings.caller_id,
            to=number, channel=channel.name, attributes={"campaign": campaign.settings.name, "lead": command.lead},
        )
        campaign.calls[command.call] = interaction
        campaign.by_interaction[interaction.id] = command.call
        result = DialResult("no-answer")  # unless dial() says otherwise: cancelled by the ring timeout
        with trio.CancelScope() as ringing:
            campaign.ringing[command.call] = ringing
            try:
                result = await channel.dial(
                    interaction, number, caller_id=command.caller_id, ring_timeout=campaign.dialer.dialer.settings.ring_timeout
                )
            except Exception:
                log.exception("campaign %s: dialing %s failed", campaign.settings.name, number)
                result = DialResult("failed")
            finally:
                campaign.ringing.pop(command.call, None)
        now = self.clock()
        if not campaign.dialer.awaiting_answer(command.call):
            # The dialer gave up first (its ring timeout): the attempt is already closed and audited.
            self._forget(campaign, interaction)
            if result.outcome == "answered":  # the answer crossed our CANCEL
                await self._hang_up(campaign, interaction, "no-answer")
            await self.engine.end_interaction(interaction, cause="no-answer", disposition=Disposition.NO_ANSWER)
        elif result.outcome == "answered":
            interaction.transition(InteractionState.ACTIVE)
            endpoint = None
            if result.machine is None and campaign.settings.amd_detector and command.agent is None:
                endpoint = _listenable_media(channel, interaction)
            if endpoint is None:
                # The channel ran detection itself, the campaign does not want it, a preview agent is
                # already waiting, or the call has no media of ours to listen to: a person until told.
                campaign.dialer.answered(command.call, now, machine=bool(result.machine))
            else:
                campaign.dialer.picked_up(command.call)  # a late answer is not cut off by the ring timeout
                await self._detect(campaign, command.call, interaction, endpoint, now)
        else:
            outcome = outcome_from_sip(result.status) if result.status else _DIAL_OUTCOMES.get(result.outcome, Outcome.FAILED)
            campaign.dialer.failed(command.call, now, outcome)
            self._forget(campaign, interaction)
            await self.engine.end_interaction(interaction, cause=result.outcome,
                                              disposition=_disposition_for(result.outcome))
        self._wake(campaign)

    async def _detect(self, campaign: Campaign, call: str, interaction: Interaction, endpoint: Any,
                      started: float) -> None:
        """Listen to the answered call: tell the dialer who answered as soon as the detector decides,
        then (machine, ``on_machine = "message"``) when the beep has ended."""
        # the campaign's detector (``amd = "name"``): the built-in one or a plugin's, new for each call
        factory = self.engine.amd_detectors[campaign.settings.amd_detector or ""]
        listener = AnswerListener(started, detector=factory(campaign.settings),
                                  listen_for_beep=campaign.settings.on_machine == "message",
                                  beep_wait=campaign.settings.beep_wait)

        def on_event(event: Decided | BeepEnded) -> bool:
            if isinstance(event, Decided):
                if not campaign.dialer.awaiting_answer(call):
                    return False  # hung up (or timed out) while we listened
                verdict = event.result.verdict.value
                interaction.attributes["amd"] = verdict
                interaction.attributes["amd_cause"] = event.result.cause
                campaign.dialer.answered(call, event.at, machine=event.machine, amd=event.result.cause)
                self.engine.bus.publish("DialerAmdResult", interaction.id, Campaign=campaign.settings.name,
                                        Result=verdict, Cause=event.result.cause,
                                        AudioSeconds=event.result.decided_at, GreetingEnd=event.result.greeting_end)
            else:
                if call not in campaign.calls:
                    return False
                interaction.attributes["beep"] = "heard" if event.heard else "not-heard"
                campaign.dialer.beep(call, event.at)
            self._wake(campaign)
            return True

        await listen_to_answer(endpoint, listener, self.clock, on_event)
        if listener.decision is None and campaign.dialer.awaiting_answer(call):
            # the media went away before a decision (the endpoint closed): the far end is gone
            campaign.dialer.answered(call, self.clock(), machine=False, amd="NOMEDIA")

    async def _connect_agent(self, campaign: Campaign, command: ConnectAgent) -> None:
        interaction = campaign.calls.get(command.call)
        channel = self._channel()
        if interaction is None or channel is None:
            return
        campaign.agents_on_calls[command.agent] = command.call
        campaign.ready_agents.discard(command.agent)
        router = self.engine.acd
        router.agent_state(command.agent, "paused", "outbound")
        interaction.agent = command.agent
        interaction.attributes["script"] = command.script
        try:
            connected = await channel.connect_agent(interaction, command.agent, self.engine.agent_endpoint(command.agent))
        except Exception:
            log.exception("campaign %s: connecting %s failed", campaign.settings.name, command.agent)
            connected = False
        if not connected:
            log.warning("campaign %s: agent %s did not take call %s", campaign.settings.name, command.agent, command.call)
            await self._hang_up(campaign, interaction, "agent-unavailable")
        self._wake(campaign)

    async def _play_message(self, campaign: Campaign, command: PlayMessage) -> None:
        interaction = campaign.calls.get(command.call)
        channel = self._channel()
        if interaction is None or channel is None:
            return
        try:
            if command.recording:
                await channel.play(interaction, prompt=command.recording)
        finally:
            await self._hang_up(campaign, interaction, command.reason)

    async def _hang_up(self, campaign: Campaign, interaction: Interaction, reason: str) -> None:
        channel = self.engine.channels.get(interaction.channel)
        hangup = getattr(channel, "hangup", None)
        if hangup is not None:
            await hangup(interaction, reason)
        await self.engine.end_interaction(interaction, cause=reason)  # comes back through interaction_ended

    def interaction_ended(self, interaction: Interaction) -> None:
        """A campaign call ended, whoever hung up (the engine calls this from ``end_interaction``)."""
        campaign = self._campaign_of(interaction)
        if campaign is None:
            return
        call = campaign.by_interaction.get(interaction.id)
        if call is not None:
            interaction.attributes["dialer_call"] = call
            campaign.dialer.ended(call, self.clock())
        self._forget(campaign, interaction)
        self._wake(campaign)

    def _campaign_of(self, interaction: Interaction) -> Campaign | None:
        return self.campaigns.get(str(interaction.attributes.get("campaign", "")))

    def _forget(self, campaign: Campaign, interaction: Interaction) -> None:
        call = campaign.by_interaction.pop(interaction.id, None)
        if call is not None:
            campaign.calls.pop(call, None)
        for agent, agent_call in list(campaign.agents_on_calls.items()):
            if agent_call == call:
                del campaign.agents_on_calls[agent]
                self.engine.acd.agent_state(agent, "available", "")

    def disposition(self, interaction: Interaction, code: str, *, callback_at: float | None = None) -> None:
        campaign = self._campaign_of(interaction)
        if campaign is None:
            return
        call = campaign.by_interaction.get(interaction.id) or interaction.attributes.get("dialer_call")
        if call is not None:
            campaign.dialer.disposition(str(call), code, self.clock(), callback_at=callback_at)
            self._wake(campaign)

    def _wake(self, campaign: Campaign) -> None:
        campaign.kick.set()

    # ------------------------------------------------------------ control (engine/console/_campaign_api.py)

    def campaign(self, name: str) -> Campaign:
        campaign = self.campaigns.get(name)
        if campaign is None:
            raise KeyError(f"campaign {name!r}")
        return campaign

    def answer_preview(self, name: str, agent: str, lead: str, *, start: bool) -> None:
        """The agent dials (``start``) or skips the lead it was shown; ``ValueError`` when that lead is
        not on show to that agent (another agent's, already answered, or the agent went away)."""
        campaign = self.campaign(name)
        attempt = campaign.dialer.previewed(agent)
        if attempt is None or attempt.lead != lead:
            raise ValueError(f"lead {lead!r} is not on preview for {agent} in campaign {name!r}")
        if start:
            campaign.dialer.preview_start(agent, self.clock())
        else:
            campaign.dialer.preview_skip(agent, self.clock())
        campaign.previews.pop(agent, None)
        self._wake(campaign)  # the next pass persists the journal, then places the call

    def previews_for(self, agent: str) -> list[dict[str, Any]]:
        """Leads on show to ``agent`` now, one per preview campaign."""
        out = []
        for name, campaign in self.campaigns.items():
            attempt = campaign.dialer.previewed(agent)
            shown = campaign.previews.get(agent)
            if attempt is not None and shown is not None and shown["lead"] == attempt.lead:
                out.append({"campaign": name, "script": campaign.settings.script, **shown})
        return out

    def set_paused(self, name: str, paused: bool, *, by: str = "") -> None:
        campaign = self.campaign(name)
        campaign.dialer.set_paused(paused, self.clock(), by=by)
        self._wake(campaign)

    def leads_added(self, name: str) -> None:
        """New rows are in ``dialer_leads``: load them now rather than at the next pass."""
        self._wake(self.campaign(name))


def _listenable_media(channel: Any, interaction: Interaction) -> Any:
    """The answered call's RTP endpoint from ``VoiceChannel.media_of`` (None when the channel has no
    media of the engine's for it, or offers a Source/Sink pair: detection reads endpoint sinks)."""
    media_of = getattr(channel, "media_of", None)
    media = media_of(interaction) if media_of is not None else None
    return media if isinstance(getattr(media, "sinks", None), list) else None


def _disposition_for(outcome: str) -> Disposition:
    return {"busy": Disposition.BUSY, "no-answer": Disposition.NO_ANSWER,
            "congestion": Disposition.CONGESTION}.get(outcome, Disposition.FAILED)


class StoreLeadSink:
    """Where ``centralita import-leads`` puts leads: the store, for the running engine to pick up."""

    def __init__(self, campaign: str, existing: set[str]) -> None:
        self.campaign = campaign
        self.numbers = set(existing)
        self.leads: list[Lead] = []

    def has_number(self, number: str) -> bool:
        return number in self.numbers

    def add(self, lead: Lead) -> None:
        self.leads.append(lead)
        self.numbers.update(lead.numbers)

    def close(self) -> None:
        pass

    def statements(self, now: float) -> list[tuple[str, Any]]:
        batch = uuid.uuid4().hex[:10]  # lead ids unique across imports of the same file
        out: list[tuple[str, Any]] = []
        for lead in self.leads:
            lead_id = f"{batch}-{lead.line}"
            out.append(("INSERT OR IGNORE INTO dialer_leads(campaign, lead, numbers, fields, imported) VALUES (?,?,?,?,?)",
                        (self.campaign, lead_id, json.dumps(list(lead.numbers)), json.dumps(dict(lead.fields)), now)))
            out += [("INSERT OR IGNORE INTO dialer_numbers(campaign, number) VALUES (?, ?)", (self.campaign, n))
                    for n in lead.numbers]
        return out
