"""IVR flows: a flow model, its validation, and a sans-IO interpreter.

How the engine drives it::

    from engine.ivr import load_flows, FlowSession

    flows = load_flows(raw["flows"], queues={...}, prompt_exists=media.has_prompt,
                       node_types=dict(ivr_node_registry.items()))   # FlowError names flow and node
    session = FlowSession(flows["main"], caller="+34600111222", session_id=interaction.id)
    commands = session.start(now)
    commands = session.digit("1", now)          # RFC 2833 / in-band digit
    commands = session.playback_done(now)       # the last Play ended
    commands = session.crm_result(CrmResult(request_id, record), now)
    commands = session.hangup(now)              # the caller went away
    when = session.next_timer(); session.handle_timer(now)

Commands: :class:`Play`, :class:`StopPlayback`, :class:`LookupCrm`, and the final ones
:class:`EnterQueue`, :class:`Transfer`, :class:`Voicemail`, :class:`RequestCallback`,
:class:`Hangup`; :class:`FlowEnded` always comes last with the outcome and the variables.

Voicemail: after a flow's :class:`Voicemail` command, a :class:`VoicemailSession` plays the greeting
and the beep, then says when to stop recording (maximum length, silence cut-off, "#", hang-up) and
how much to keep; it ends with :class:`VoicemailRecorded` (store and notify) or
:class:`VoicemailDiscarded`.

Node types: play, menu, collect, set, branch, schedule, crm, queue, transfer, voicemail, callback,
hangup; plugins add more through ``centralita_register_ivr_nodes`` (see ``_nodes.NodeType``).
"""

from __future__ import annotations

from ._commands import (
    CrmResult,
    Digit,
    EnterQueue,
    FlowCommand,
    FlowEnded,
    Hangup,
    LookupCrm,
    Play,
    PlaybackDone,
    RequestCallback,
    StopPlayback,
    Transfer,
    Voicemail,
)
from ._flows import Flow, FlowError, load_flows, node_type_table, validate_flows
from ._nodes import BUILTIN_NODE_TYPES, MAX_PROMPT_SECONDS, NodeType
from ._session import MAX_BUFFERED_DIGITS, FlowSession
from ._voicemail import StartRecording, StopRecording, VoicemailDiscarded, VoicemailRecorded, VoicemailSession

__all__ = [
    "BUILTIN_NODE_TYPES", "MAX_BUFFERED_DIGITS", "MAX_PROMPT_SECONDS",
    "CrmResult", "Digit", "EnterQueue", "Flow", "FlowCommand", "FlowEnded", "FlowError", "FlowSession",
    "Hangup", "LookupCrm", "NodeType", "Play", "PlaybackDone", "RequestCallback", "StartRecording",
    "StopPlayback", "StopRecording", "Transfer", "Voicemail", "VoicemailDiscarded", "VoicemailRecorded",
    "VoicemailSession", "load_flows", "node_type_table", "validate_flows",
]
