"""Routing: the ACD core for every channel (voice, sms, email, chat), sans-IO.

How the engine drives it
========================

Build once from the config, then feed inputs; every input takes ``now`` (seconds, the engine's clock)
and returns a list of events/commands::

    from engine.routing import Router, build_queues, build_agents, validate_routing_config

    problems = validate_routing_config(raw_toml_dict)       # [("queues[0].strategy", "..."), ...]
    router = Router(build_queues(raw), build_agents(raw), now=clock(), chooser=hook_facade)

    router.enqueue(interaction.id, "support", now=t, kind="voice", priority=route_prio + hook_prio,
                   attributes={...})
    router.accept(iid, "alice", now=t)        # agent answered / accepted the reservation (API)
    router.reject(iid, "alice", now=t, cause="rejected" | "busy")
    router.end(iid, now=t, reason="caller")   # hang-up: abandon if waiting, complete if active
    router.wrapup_done("alice", now=t)
    router.login / logout / pause(agent, reason) / unpause / set_reachable(agent, bool)
    router.request_callback(iid, CallbackRequest(request_id, number, window), now=t)
    router.callback_result(request_id, answered=True | False, now=t)
    router.transfer(iid, "other-queue", now=t)
    router.configure(new_queues, new_agents, now=t)          # reload: live interactions stay
    when = router.next_timer(); router.handle_timer(now)     # one trio task sleeps until `when`
    data = router.snapshot(); router.restore(data, now=t)    # JSON-able; callbacks/messages survive

Outputs the engine acts on (commands) and publishes (bus events; ``event.ami`` is the CONTRACT.md
name, ``event.to_fields()`` the AMI-style fields):

==========================  =====================  ===================================================
class                       bus event (``ami``)    what the engine does
==========================  =====================  ===================================================
QueueCallerJoin             QueueCallerJoin        interaction state -> queued
JoinRefused                 QueueCallerLeave       send to ``destination`` (or play "closed"/hang up)
QueueCallerLeave            QueueCallerLeave       (answered, overflow, callback-failed, ...)
QueueCallerAbandon          QueueCallerAbandon     CDR: NO ANSWER
Offer                       AgentCalled            ring ``agent``'s endpoint / reserve the message
CancelOffer                 —                      stop ringing / release the reservation
AgentRingNoAnswer           AgentRingNoAnswer      (ring timeout, rejected, busy)
Connect                     AgentConnect           bridge caller and agent; state -> active
AgentComplete               AgentComplete          state -> wrapup until ``wrapup_until``
Overflow                    —                      ("flow"|"voicemail"|"callback", target); "queue"
                                                   moves are done by the router itself
Announce                    —                      play position and the wait range
DialCallback                —                      dial ``number`` (dedupe on ``attempt_id``), then
                                                   report ``callback_result``
CallbackFailed              —                      notify (attempts exhausted / window closed)
AgentStatusChanged          QueueMemberStatus      agent activity for the console
AgentPauseChanged           QueueMemberPause
==========================  =====================  ===================================================

Every :class:`Offer` carries an :class:`Explanation`: the strategy, who was chosen and why, and for
every other member why not (``"paused (lunch)"``, ``"skills: es=40 fails es >= 60"``...); the API can
also ask :meth:`Router.explain` for a waiting interaction.

``Router.check_invariants()`` asserts the rules listed in ``_router.py`` (capacity, one offer at a
time outside ring-all, every offer has a timer, queue order); the tests call it after every step.
"""

from __future__ import annotations

from ._config import (
    CHANNEL_KINDS,
    STRATEGIES,
    AgentConfig,
    QueueConfig,
    RelaxStep,
    RoutingConfigError,
    build_agents,
    build_queues,
    validate_routing_config,
)
from ._events import (
    AgentComplete,
    AgentPauseChanged,
    AgentRingNoAnswer,
    AgentStatusChanged,
    Announce,
    CallbackFailed,
    CancelOffer,
    Connect,
    DialCallback,
    Explanation,
    JoinRefused,
    Offer,
    Overflow,
    QueueCallerAbandon,
    QueueCallerJoin,
    QueueCallerLeave,
    RouterEvent,
)
from ._expr import Expression, ExpressionError, compile_expression
from ._router import CallbackRequest, NoSuchOffer, Router, RoutingError, UnknownAgent, UnknownInteraction
from ._schedule import Schedule, ScheduleError, parse_schedule

__all__ = [
    "CHANNEL_KINDS", "STRATEGIES",
    "AgentComplete", "AgentConfig", "AgentPauseChanged", "AgentRingNoAnswer", "AgentStatusChanged",
    "Announce", "CallbackFailed", "CallbackRequest", "CancelOffer", "Connect", "DialCallback",
    "Explanation", "Expression", "ExpressionError", "JoinRefused", "NoSuchOffer", "Offer", "Overflow",
    "QueueCallerAbandon", "QueueCallerJoin", "QueueCallerLeave", "QueueConfig", "RelaxStep", "Router",
    "RouterEvent", "RoutingConfigError", "RoutingError", "Schedule", "ScheduleError", "UnknownAgent",
    "UnknownInteraction", "build_agents", "build_queues", "compile_expression", "parse_schedule",
    "validate_routing_config",
]
