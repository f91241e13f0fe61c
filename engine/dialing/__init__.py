"""Centralita's outbound dialer: campaigns, pacing, compliance, answering-machine detection.

Everything here is sans-IO (no trio, no sockets, no files except the CSV import and the CLI entry points);
time is always an argument. The engine wires it up like this::

    from engine.dialing import CampaignDialer, Hopper, validate_campaigns

    campaigns, problems = validate_campaigns(raw_config.get("campaigns"), agents=..., queues=...)
    # problems: engine._schema.Problem(path, message) -> print with file:line like other sections
    for settings in campaigns:
        hopper, interrupted = Hopper.restore(store.journal(settings.name), now=now,
                                             retry=settings.retry_rule)
        dialer = CampaignDialer(settings, now=now, hopper=hopper, dnc=shared_dnc,
                                answer_supervision=all_lines_report_answer)

    # the campaign task (trio), per event and whenever next_timer() is due:
    dialer.agent_ready("alice", now)          # / agent_away, set_inbound_at_risk(True|False)
    dialer.answered(call, now, machine=False) # now = when AMD decided (end of the person's greeting)
    dialer.failed(call, now, outcome_from_sip(486))
    dialer.beep(call, now); dialer.ended(call, now); dialer.disposition(call, "callback", now, callback_at=t)
    journal, audit = dialer.drain_records()   # persist FIRST (write-ahead) ...
    for command in dialer.poll(now): ...      # ... then PlaceCall / ConnectAgent / PlayMessage / Hangup /
                                              # ShowPreview / Remind / PacingChanged

Pieces, each usable alone:

* :class:`Dialer` (``_pacing``): preview / progressive / predictive pacing and call-to-agent matching,
  with the 2-second abandon clock and the ring timeout. Actions: :class:`Dial`, :class:`Connect`,
  :class:`Abandon`, :class:`StopRinging`, :class:`OfferPreview`, :class:`ModeChanged`.
* :class:`Hopper`: the durable dialing order (journal records as data), retries, callbacks, reminders.
* Compliance policies: :class:`UsFccPolicy` (default), :class:`UkOfcomPolicy` (register more through
  ``centralita_register_compliance_policies``), :class:`CallingWindow`, :class:`DoNotCallList`,
  :class:`AttemptLimiter`, :class:`RecontactLockout`, :class:`AuditLog` and
  :func:`recompute_abandonment` for auditors.
* :mod:`engine.dialing.leads`: CSV import, :func:`checked_dial_string` (the only way a number becomes a
  dial string), ``run_import_cli(argv)`` for ``centralita import-leads``.
* :mod:`engine.dialing.amd`: :class:`CadenceDetector` (answering machine), :class:`BeepDetector`;
  :class:`AnswerListener` runs both on an answered call's frames as they arrive (gaps count as silence).
* :mod:`engine.dialing.simulate`: ``run_cli(argv)`` for ``centralita simulate dialer``.
"""

from __future__ import annotations

from ._campaign import (DEFAULT_RETRY, CampaignSettings, Outcome, RetryRule, ScheduleSettings, outcome_from_sip,
                        outcome_from_sit, validate_campaigns)
from ._compliance import (POLICIES, AbandonmentPolicy, amd_confusion, AbandonTally, AttemptLimiter, AuditLog, AuditRecord,
                          CallingWindow, CompliancePolicy, DncEntry, DoNotCallList, RecontactLockout,
                          UkOfcomPolicy, UsFccPolicy, recompute_abandonment, register_compliance_policies, zones_for)
from ._hopper import Attempt, Callback, Hopper
from ._pacing import (Abandon, Connect, Dial, Dialer, DialerStatistics, ModeChanged, OfferPreview,
                      PacingSettings, StopRinging)
from ._runner import (CampaignDialer, Command, ConnectAgent, Hangup, PacingChanged, PlaceCall, PlayMessage,
                      Remind, ShowPreview)
from .amd import (AmdResult, AmdSettings, AmdVerdict, AnsweringMachineDetector, BeepDetector, CadenceDetector,
                  FaxDetector, register_amd_detectors)
from ._listen import AnswerListener, BeepEnded, Decided
from .leads import InvalidDialString, checked_dial_string, import_leads, run_import_cli
from .simulate import run_cli as run_simulate_cli

__all__ = [
    "DEFAULT_RETRY", "POLICIES", "Abandon", "AbandonTally", "AbandonmentPolicy", "AmdResult", "AmdSettings",
    "AmdVerdict", "AnswerListener", "AnsweringMachineDetector", "BeepEnded", "Decided", "Attempt", "AttemptLimiter", "AuditLog", "AuditRecord",
    "BeepDetector", "CadenceDetector", "Callback", "CallingWindow", "CampaignDialer", "CampaignSettings",
    "Command", "CompliancePolicy", "Connect", "ConnectAgent", "Dial", "Dialer", "DialerStatistics", "DncEntry",
    "DoNotCallList", "FaxDetector", "Hangup", "Hopper", "InvalidDialString", "ModeChanged", "OfferPreview", "Outcome",
    "PacingChanged", "PacingSettings", "PlaceCall", "PlayMessage", "RecontactLockout", "Remind", "RetryRule",
    "ScheduleSettings", "ShowPreview", "StopRinging", "UkOfcomPolicy", "UsFccPolicy", "checked_dial_string",
    "amd_confusion", "import_leads", "outcome_from_sip", "outcome_from_sit", "recompute_abandonment", "register_amd_detectors", "register_compliance_policies", "run_import_cli",
    "run_simulate_cli", "validate_campaigns", "zones_for",
]
