"""Flows as loaded from ``[[flows]]``, and their validation.

Shape (documented in docs/ivr.md)::

    [[flows]]
    name = "main"
    start = "welcome"
    [flows.nodes.welcome]
    type = "menu"
    prompt = "welcome"
    options = { "1" = "sales", "2" = "support" }
    [flows.nodes.sales]
    type = "queue"
    queue = "sales"

Validation finds: unknown node types (with a did-you-mean), missing targets, unreachable nodes, loops
with no exit (nodes from which no final node can be reached), missing prompts (``prompt_exists``),
queues that do not exist, and each node type's own setting errors. Every problem is a
``(key path, message)`` pair such as ``("flows[0].nodes.menu.options.1", "flow 'main', node 'menu':
no node named 'salse'")``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._nodes import BUILTIN_NODE_TYPES

__all__ = ["Flow", "FlowError", "load_flows", "node_type_table", "validate_flows"]

Problem = tuple[str, str]


class FlowError(ValueError):
    """A flow is invalid; ``key`` is the path of the first problem, ``problems`` all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.key = problems[0][0]
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems))


@dataclass
class Flow:
    name: str
    start: str
    nodes: dict[str, dict[str, Any]]
    types: Mapping[str, Any]
    expressions: dict[str, Any] = field(default_factory=dict, repr=False)
    schedules: dict[int, Any] = field(default_factory=dict, repr=False)


def node_type_table(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The built-in node types plus plugin ones (classes are instantiated once)."""
    table: dict[str, Any] = dict(BUILTIN_NODE_TYPES)
    for name, node_type in (extra or {}).items():
        table[name] = node_type() if isinstance(node_type, type) else node_type
    return table


def _targets(node_type: Any, node: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    for key in getattr(node_type, "target_keys", ()):
        if key in node:
            yield key, node[key]
    for key in getattr(node_type, "target_maps", ()):
        table = node.get(key)
        if isinstance(table, dict):
            for option, target in table.items():
                yield f"{key}.{option}", target


def validate_flows(raw_flows: Any, *, queues: Iterable[str] | None = None, agents: Iterable[str] | None = None,
                   prompt_exists: Callable[[str], bool] | None = None,
                   node_types: Mapping[str, Any] | None = None) -> list[Problem]:
    """All problems of a ``[[flows]]`` array (as parsed from TOML); empty when valid."""
    problems: list[Problem] = []
    if raw_flows is None:
        return problems
    if not isinstance(raw_flows, list):
        return [("flows", "expected an array of tables [[flows]]")]
    types = node_type_table(node_types)
    queue_names = {q for q in queues if isinstance(q, str)} if queues is not None else None
    names: set[str] = set()
    for i, flow in enumerate(raw_flows):
        where = f"flows[{i}]"
        if not isinstance(flow, dict):
            problems.append((where, "expected a table"))
            continue
        name = flow.get("name")
        if not isinstance(name, str) or not name:
            problems.append((f"{where}.name", "expected a non-empty string"))
            name = f"#{i}"
        elif name in names:
            problems.append((f"{where}.name", f"duplicate flow name {name!r}"))
        names.add(name)
        nodes = flow.get("nodes")
        if not isinstance(nodes, dict) or not nodes:
            problems.append((f"{where}.nodes", f"flow {name!r}: expected at least one [flows.nodes.NAME] table"))
            continue
        start = flow.get("start")
        if not isinstance(start, str) or start not in nodes:
            problems.append((f"{where}.start", f"flow {name!r}: start node {start!r} does not exist"
                             + _suggest(start, nodes)))
            start = None
        edges: dict[str, list[str]] = {}
        finals: set[str] = set()
        for node_name, node in nodes.items():
            at = f"{where}.nodes.{node_name}"
            who = f"flow {name!r}, node {node_name!r}"
            edges[node_name] = []
            if not isinstance(node, dict):
                problems.append((at, f"{who}: expected a table"))
                continue
            kind = node.get("type")
            node_type = types.get(kind) if isinstance(kind, str) else None
            if node_type is None:
                problems.append((f"{at}.type", f"{who}: unknown node type {kind!r}, expected one of "
                                 f"{', '.join(sorted(types))}" + _suggest(kind, types)))
                finals.add(node_name)  # do not pile reachability errors on top of this one
                continue
            for key, message in node_type.check(node):
                problems.append((f"{at}.{key}", f"{who}: {message}"))
            for key, target in _targets(node_type, node):
                if not isinstance(target, str):
                    continue
                if target not in nodes:
                    problems.append((f"{at}.{key}", f"{who}: no node named {target!r}" + _suggest(target, nodes)))
                else:
                    edges[node_name].append(target)
            if getattr(node_type, "final", False):
                finals.add(node_name)
            if prompt_exists is not None:
                for key in getattr(node_type, "prompt_keys", ()):
                    prompt = node.get(key)
                    if not isinstance(prompt, str) or not prompt:
                        continue
                    verdict = prompt_exists(prompt)  # True, False, or a message saying what is wrong
                    if isinstance(verdict, str):
                        problems.append((f"{at}.{key}", f"{who}: {verdict}"))
                    elif not verdict:
                        problems.append((f"{at}.{key}", f"{who}: prompt {prompt!r} not found"))
            if kind in ("queue", "callback") and "queue" in node:
                queue = node["queue"]
                if not isinstance(queue, str) or not queue:
                    problems.append((f"{at}.queue", f"{who}: expected a queue name, got {queue!r}"))
                elif queue_names is not None and queue not in queue_names:
                    problems.append((f"{at}.queue", f"{who}: no queue named {queue!r}"))
        if start is None:
            continue
        reachable = _reach(edges, [start])
        for node_name in nodes:
            if node_name not in reachable:
                problems.append((f"{where}.nodes.{node_name}",
                                 f"flow {name!r}, node {node_name!r}: unreachable from start {start!r}"))
        # a node with no path to any final node is stuck in a loop (or a dead end) forever
        reverse: dict[str, list[str]] = {n: [] for n in nodes}
        for source, targets in edges.items():
            for target in targets:
                reverse.setdefault(target, []).append(source)
        can_finish = _reach(reverse, list(finals))
        stuck = [n for n in nodes if n in reachable and n not in can_finish]
        if stuck:
            problems.append((f"{where}.nodes.{stuck[0]}",
                             f"flow {name!r}, node {stuck[0]!r}: loop with no exit (no path to a queue, "
                             f"transfer, voicemail, callback or hangup from {', '.join(repr(s) for s in stuck)})"))
    return problems


def _reach(edges: Mapping[str, list[str]], starts: list[str]) -> set[str]:
    seen = set(starts)
    stack = list(starts)
    while stack:
        for target in edges.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _suggest(word: Any, options: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_flows(raw_flows: Any, *, queues: Iterable[str] | None = None,
               prompt_exists: Callable[[str], bool] | None = None,
               node_types: Mapping[str, Any] | None = None) -> dict[str, Flow]:
    """Validated flows by name; raises :class:`FlowError` listing every problem."""
    problems = validate_flows(raw_flows, queues=queues, prompt_exists=prompt_exists, node_types=node_types)
    if problems:
        raise FlowError(problems)
    types = node_type_table(node_types)
    return {f["name"]: Flow(f["name"], f["start"], dict(f["nodes"]), types) for f in raw_flows or []}


