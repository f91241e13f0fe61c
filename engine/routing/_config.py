"""Queue and agent settings as the router uses them, built from the ``[[queues]]``/``[[agents]]`` tables.

Everything is checked here, once, when the config loads: a misspelled strategy, a target expression
with a syntax error or an unknown skill, a member that is not an agent, a negative timeout. Problems
are collected as ``(key path, message)`` pairs (``queues[0].strategy``) so the engine's config loader
can add the file and line; :func:`build_queues` / :func:`build_agents` raise
:class:`RoutingConfigError` with the first problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._expr import Expression, ExpressionError, compile_expression
from ._schedule import Schedule, ScheduleError, parse_schedule

__all__ = [
    "CHANNEL_KINDS", "STRATEGIES", "AgentConfig", "QueueConfig", "RelaxStep", "RoutingConfigError",
    "build_agents", "build_queues", "validate_routing_config",
]

STRATEGIES = ("ring-all", "longest-idle", "round-robin", "fewest-calls", "least-talk-time", "linear",
              "random", "weighted-random", "skills")
CHANNEL_KINDS = ("voice", "chat", "email", "sms")
OVERFLOW_KINDS = ("queue", "flow", "voicemail", "callback")

Problem = tuple[str, str]


class RoutingConfigError(ValueError):
    """A queue/agent/route/flow setting is invalid. ``key`` is the path (``queues[0].strategy``)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


@dataclass(frozen=True)
class RelaxStep:
    """After ``after`` seconds of waiting: lower every threshold by ``lower_by``, or use ``target``
    instead; ``add_members`` join the eligible pool (an overflow team)."""

    after: float
    target: Expression | None
    add_members: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueConfig:
    name: str
    strategy: str = "longest-idle"
    members: tuple[str, ...] = ()
    timeout: float = 15.0              # seconds a voice offer rings
    retry: float = 5.0                 # seconds an agent who missed an offer sits out for that caller
    reservation_timeout: float = 60.0  # seconds a messaging offer stays reserved
    wrapup: float = 10.0
    target: Expression | None = None
    relax: tuple[RelaxStep, ...] = ()
    priority: int = 0
    max_wait: float | None = None
    overflow: tuple[str, str] | None = None
    max_length: int = 0                # 0: unlimited
    join_empty: bool = True            # join when no member is logged in
    leave_when_empty: bool = False     # leave (overflow) when the last member logs out
    hours: Schedule | None = None
    autopause_after: int = 0           # consecutive missed offers; 0: never
    announce_frequency: float = 0.0    # seconds between position announcements; 0: never
    callback_attempts: int = 3
    callback_retry_delay: float = 300.0
    weights: dict[str, float] = field(default_factory=dict)
    service_level_seconds: float = 20.0

    def stage_at(self, waited: float) -> int:
        """How many relaxation steps apply after ``waited`` seconds (0: the plain target)."""
        stage = 0
        for step in self.relax:
            if waited < step.after:
                break
            stage += 1
        return stage

    def stages(self) -> list[tuple[int, Expression | None, frozenset[str]]]:
        """(stage, target, extra members) for every stage, from the plain target to the last step."""
        return [self.target_at(-1.0)] + [self.target_at(step.after) for step in self.relax]

    def target_at(self, waited: float) -> tuple[int, Expression | None, frozenset[str]]:
        """(stage index, target, extra members) in force for a caller who has waited ``waited`` s."""
        stage, target, extra = 0, self.target, set()
        for index, step in enumerate(self.relax, start=1):
            if waited >= step.after:
                stage = index
                if step.target is not None:
                    target = step.target
                extra.update(step.add_members)
        return stage, target, frozenset(extra)


@dataclass(frozen=True)
class AgentConfig:
    id: str
    skills: dict[str, float] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=lambda: {"voice": 1})
    auto_login: bool = True
    wrapup: float | None = None        # overrides the queue's wrap-up
    voice_blocks_others: bool = False  # while on a voice call, no chat/email/sms offers
    weight: float = 1.0
    endpoint: str = ""


def _number(problems: list[Problem], key: str, value: Any, *, minimum: float = 0,
            integer: bool = False, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    ok_types = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_types) or (
            isinstance(value, float) and not math.isfinite(value)):
        kind = "an integer" if integer else "a number"
        problems.append((key, f"expected {kind}, got {value!r}"))
        return None
    if value < minimum:
        problems.append((key, f"expected a value >= {minimum}, got {value!r}"))
        return None
    return value


def _did_you_mean(word: str, options: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(str(word), options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _expression(problems: list[Problem], key: str, queue: str, text: Any, skills: set[str] | None,
                lower_by: float = 0) -> Expression | None:
    try:
        return compile_expression(text, lower_by=lower_by, known_names=skills)
    except ExpressionError as err:
        problems.append((key, f"queue {queue!r}: {err.reason} at column {err.column} in {err.expression!r}"))
        return None


def _queue(problems: list[Problem], index: int, raw: Any, agents: set[str] | None,
           skills: set[str] | None) -> QueueConfig | None:
    where = f"queues[{index}]"
    if not isinstance(raw, dict):
        problems.append((where, f"expected a table, got {type(raw).__name__}"))
        return None
    before = len(problems)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append((f"{where}.name", "expected a non-empty string"))
        name = f"#{index}"
    strategy = raw.get("strategy", "longest-idle")
    if strategy not in STRATEGIES:
        problems.append((f"{where}.strategy", f"queue {name!r}: unknown strategy {strategy!r}, expected one "
                         f"of {', '.join(STRATEGIES)}{_did_you_mean(strategy, STRATEGIES)}"))
    members = raw.get("members", [])
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        problems.append((f"{where}.members", "expected a list of agent ids"))
        members = []
    if agents is not None:
        for j, member in enumerate(members):
            if member not in agents:
                problems.append((f"{where}.members[{j}]", f"queue {name!r}: no agent with id {member!r}"))
    kw: dict[str, Any] = {}
    for key, integer in (("timeout", False), ("retry", False), ("reservation_timeout", False), ("wrapup", False),
                         ("max_length", True), ("autopause_after", True), ("announce_frequency", False),
                         ("callback_attempts", True), ("callback_retry_delay", False),
                         ("service_level_seconds", False)):
        if key in raw:
            kw[key] = _number(problems, f"{where}.{key}", raw[key], integer=integer)
    if "priority" in raw:
        kw["priority"] = _number(problems, f"{where}.priority", raw["priority"], integer=True, minimum=-10**9)
    if "max_wait" in raw:
        kw["max_wait"] = _number(problems, f"{where}.max_wait", raw["max_wait"])
    for key in ("join_empty", "leave_when_empty"):
        if key in raw:
            if not isinstance(raw[key], bool):
                problems.append((f"{where}.{key}", f"expected true or false, got {raw[key]!r}"))
            kw[key] = raw[key]
    if "overflow" in raw:
        overflow = raw["overflow"]
        if (isinstance(overflow, dict) and len(overflow) == 1
                and next(iter(overflow)) in OVERFLOW_KINDS):
            kind, target = next(iter(overflow.items()))
            kw["overflow"] = (kind, "" if target is True else str(target))
        else:
            problems.append((f"{where}.overflow", "expected one of { queue = \"...\" }, { flow = \"...\" }, "
                             "{ voicemail = \"...\" }, { callback = true }"))
    target = None
    if "target" in raw:
        target = _expression(problems, f"{where}.target", name, raw["target"], skills)
    steps: list[RelaxStep] = []
    relax = raw.get("relax", [])
    if not isinstance(relax, list):
        problems.append((f"{where}.relax", "expected a list of tables"))
        relax = []
    last_after = -1.0
    for j, step in enumerate(relax):
        key = f"{where}.relax[{j}]"
        if not isinstance(step, dict):
            problems.append((key, "expected a table like { after = 60, lower_by = 20 }"))
            continue
        unknown = set(step) - {"after", "lower_by", "target", "add_members"}
        if unknown:
            problems.append((f"{key}.{sorted(unknown)[0]}", "unknown key (expected after, lower_by, target, "
                             "add_members)"))
        after = _number(problems, f"{key}.after", step.get("after"))
        if after is not None and after <= last_after:
            problems.append((f"{key}.after", "steps must come in increasing order of 'after'"))
        last_after = after if after is not None else last_after
        step_target = None
        if "target" in step:
            step_target = _expression(problems, f"{key}.target", name, step["target"], skills)
        elif "lower_by" in step:
            lower_by = _number(problems, f"{key}.lower_by", step["lower_by"])
            if target is None and "target" not in raw:
                problems.append((f"{key}.lower_by", f"queue {name!r} has no target to lower"))
            elif target is not None and lower_by is not None:
                step_target = target.relaxed(lower_by)
        add = step.get("add_members", [])
        if not isinstance(add, list) or not all(isinstance(m, str) for m in add):
            problems.append((f"{key}.add_members", "expected a list of agent ids"))
            add = []
        if agents is not None:
            for k, member in enumerate(add):
                if member not in agents:
                    problems.append((f"{key}.add_members[{k}]", f"queue {name!r}: no agent with id {member!r}"))
        steps.append(RelaxStep(after or 0.0, step_target, tuple(add)))
    hours = None
    if "hours" in raw:
        try:
            hours = parse_schedule(raw["hours"])
        except ScheduleError as err:
            problems.append((f"{where}.hours" + (f".{err.key}" if err.key else ""), str(err).split(": ", 1)[-1]))
    weights = raw.get("weights", {})
    if not isinstance(weights, dict):
        problems.append((f"{where}.weights", "expected a table of agent id = weight"))
        weights = {}
    for agent, weight in weights.items():
        _number(problems, f"{where}.weights.{agent}", weight)
    if len(problems) > before:
        return None
    return QueueConfig(name=name, strategy=strategy, members=tuple(members), target=target,
                       relax=tuple(steps), hours=hours, weights=dict(weights),
                       **{k: v for k, v in kw.items() if v is not None})


def _agent(problems: list[Problem], index: int, raw: Any) -> AgentConfig | None:
    where = f"agents[{index}]"
    if not isinstance(raw, dict):
        problems.append((where, f"expected a table, got {type(raw).__name__}"))
        return None
    before = len(problems)
    agent_id = raw.get("id")
    if not isinstance(agent_id, str) or not agent_id:
        problems.append((f"{where}.id", "expected a non-empty string"))
    skills = raw.get("skills", {})
    if not isinstance(skills, dict):
        problems.append((f"{where}.skills", "expected a table like { es = 80 }"))
        skills = {}
    for skill, level in skills.items():
        value = _number(problems, f"{where}.skills.{skill}", level)
        if value is not None and value > 100:
            problems.append((f"{where}.skills.{skill}", f"expected a level from 0 to 100, got {level!r}"))
    channels = raw.get("channels", {"voice": 1})
    if not isinstance(channels, dict):
        problems.append((f"{where}.channels", "expected a table like { voice = 1, chat = 3 }"))
        channels = {"voice": 1}
    for kind, count in channels.items():
        if kind not in CHANNEL_KINDS:
            problems.append((f"{where}.channels.{kind}", f"unknown channel, expected one of "
                             f"{', '.join(CHANNEL_KINDS)}{_did_you_mean(kind, CHANNEL_KINDS)}"))
        _number(problems, f"{where}.channels.{kind}", count, integer=True)
    kw: dict[str, Any] = {}
    if "wrapup" in raw:
        kw["wrapup"] = _number(problems, f"{where}.wrapup", raw["wrapup"], allow_none=True)
    if "weight" in raw:
        kw["weight"] = _number(problems, f"{where}.weight", raw["weight"])
    for key in ("auto_login", "voice_blocks_others"):
        if key in raw:
            if not isinstance(raw[key], bool):
                problems.append((f"{where}.{key}", f"expected true or false, got {raw[key]!r}"))
            kw[key] = raw[key]
    if len(problems) > before:
        return None
    return AgentConfig(id=agent_id, skills=dict(skills), channels=dict(channels),
                       endpoint=str(raw.get("endpoint", "")), **kw)


def _names(tables: Any, key: str) -> set[str]:
    """The string names of a list of tables (anything else in a hostile file is skipped here and
    reported where the table itself is checked)."""
    if not isinstance(tables, list):
        return set()
    return {t[key] for t in tables if isinstance(t, dict) and isinstance(t.get(key), str)}


def _collect(raw: dict[str, Any]) -> tuple[list[Problem], list[QueueConfig], list[AgentConfig]]:
    problems: list[Problem] = []
    raw_agents = raw.get("agents", [])
    raw_queues = raw.get("queues", [])
    if not isinstance(raw_agents, list):
        problems.append(("agents", "expected an array of tables [[agents]]"))
        raw_agents = []
    if not isinstance(raw_queues, list):
        problems.append(("queues", "expected an array of tables [[queues]]"))
        raw_queues = []
    agents = [a for i, r in enumerate(raw_agents) if (a := _agent(problems, i, r)) is not None]
    agent_ids = _names(raw_agents, "id")
    skills = {s for r in raw_agents if isinstance(r, dict) and isinstance(r.get("skills"), dict)
              for s in r["skills"] if isinstance(s, str)}
    queues = [q for i, r in enumerate(raw_queues) if (q := _queue(problems, i, r, agent_ids, skills))]
    names = [r.get("name") for r in raw_queues if isinstance(r, dict)]
    for i, queue in enumerate(queues):
        if queue.overflow and queue.overflow[0] == "queue" and queue.overflow[1] not in names:
            index = names.index(queue.name)
            problems.append((f"queues[{index}].overflow", f"queue {queue.name!r}: no queue named "
                             f"{queue.overflow[1]!r}"))
    return problems, queues, agents


def build_queues(raw: dict[str, Any]) -> list[QueueConfig]:
    """The queues of a parsed config (``raw`` holds ``queues`` and ``agents``); raises
    :class:`RoutingConfigError` naming the first problem."""
    problems, queues, _ = _collect(raw)
    if problems:
        raise RoutingConfigError(*problems[0])
    return queues


def build_agents(raw: dict[str, Any]) -> list[AgentConfig]:
    problems, _, agents = _collect(raw)
    if problems:
        raise RoutingConfigError(*problems[0])
    return agents


def validate_routing_config(raw: dict[str, Any], *, prompt_exists: Any = None,
                            node_types: Any = None) -> list[Problem]:
    """Every problem in ``[[queues]]``, ``[[agents]]``, ``[[routes]]`` and ``[[flows]]`` of a parsed
    config, as ``(key path, message)`` pairs; empty when valid."""
    problems, _, _ = _collect(raw)
    queue_names = _names(raw.get("queues"), "name")
    flow_names = _names(raw.get("flows"), "name")
    agent_ids = _names(raw.get("agents"), "id")
    routes = raw.get("routes", [])
    for i, route in enumerate(routes if isinstance(routes, list) else []):
        where = f"routes[{i}]"
        if not isinstance(route, dict):
            problems.append((where, "expected a table"))
            continue
        if not isinstance(route.get("match"), str) or not route.get("match"):
            problems.append((f"{where}.match", "expected a non-empty string"))
        targets = [k for k in ("queue", "flow", "agent") if k in route]
        if len(targets) != 1:
            problems.append((where, f"expected exactly one of queue, flow, agent, got {len(targets)}"))
        for key, names in (("queue", queue_names), ("flow", flow_names), ("agent", agent_ids)):
            if key in route and (not isinstance(route[key], str) or route[key] not in names):
                problems.append((f"{where}.{key}", f"no {key} named {route[key]!r}"))
        if "priority" in route:
            _number(problems, f"{where}.priority", route["priority"], integer=True, minimum=-10**9)
    if "flows" in raw:
        from ..ivr import validate_flows

        problems.extend(validate_flows(raw.get("flows"), queues=queue_names, agents=agent_ids,
                                       prompt_exists=prompt_exists, node_types=node_types))
    return problems
