"""The built-in IVR node types, and the interface a plugin's node type implements.

A node type is an object (or a class, instantiated once) with:

- ``target_keys``: keys whose values name other nodes (``next``, ``fail``...); ``target_maps``: keys
  holding tables whose values name nodes (a menu's ``options``);
- ``final``: the flow may end in this node (queue, transfer, voicemail, callback, hangup);
- ``prompt_keys``: keys naming prompt files (checked with ``prompt_exists`` at load);
- ``check(node) -> [(key, message)]``: its own settings, at load;
- ``enter(ctx, node, now)`` and the input handlers ``on_digit``, ``on_playback_done``,
  ``on_crm_result``, ``on_timer``; ``ctx`` is the :class:`~engine.ivr.FlowSession` (``emit``,
  ``goto``, ``finish``, ``set_timer``, ``variables``, ``state`` for this visit, ``take_digits``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..routing._expr import ExpressionError, compile_expression
from ..routing._schedule import ScheduleError, parse_schedule
from ._commands import (
    EnterQueue, Hangup, LookupCrm, Play, RequestCallback, StopPlayback, Transfer, Voicemail,
)

if TYPE_CHECKING:  # pragma: no cover
    from ._session import FlowSession

__all__ = ["BUILTIN_NODE_TYPES", "NodeType"]

Node = Mapping[str, Any]
Problems = list[tuple[str, str]]
#: a prompt that never reports its end still lets the flow go on after this long
MAX_PROMPT_SECONDS = 300.0


def _is_number(value: Any, minimum: float = 0) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= minimum


class NodeType:
    target_keys: tuple[str, ...] = ()
    target_maps: tuple[str, ...] = ()
    final = False
    prompt_keys: tuple[str, ...] = ("prompt",)
    required: tuple[str, ...] = ()

    def check(self, node: Node) -> Problems:
        problems = [(key, "required") for key in self.required if key not in node]
        for key in self.target_keys:
            if key in node and not isinstance(node[key], str):
                problems.append((key, f"expected a node name, got {node[key]!r}"))
        return problems

    def enter(self, ctx: FlowSession, node: Node, now: float) -> None:
        raise NotImplementedError

    def on_digit(self, ctx: FlowSession, node: Node, digit: str, now: float) -> None:
        ctx.buffer_digit(digit)  # type-ahead: the next node that reads digits gets it

    def on_playback_done(self, ctx: FlowSession, node: Node, now: float) -> None:
        pass

    def on_crm_result(self, ctx: FlowSession, node: Node, record: dict[str, Any] | None,
                      error: str | None, now: float) -> None:
        pass

    def on_timer(self, ctx: FlowSession, node: Node, now: float) -> None:
        pass

    def on_hangup(self, ctx: FlowSession, node: Node, now: float) -> None:
        """The caller hung up in this node; the session then ends with ``caller-hangup`` unless this
        finished it. No command to the caller makes sense any more (they are gone)."""


def _play(node: Node, barge_in: bool, key: str = "prompt", text_key: str = "text") -> Play | None:
    if node.get(key):
        return Play(prompt=str(node[key]), barge_in=barge_in)
    if node.get(text_key):
        return Play(text=str(node[text_key]), barge_in=barge_in)
    return None


def _check_prompt_or_text(node: Node) -> Problems:
    if "prompt" not in node and "text" not in node:
        return [("prompt", "required (a prompt file name), or text = \"...\" for text-to-speech")]
    return []


class PlayNode(NodeType):
    """``prompt``/``text``, then ``next``. Digits pressed meanwhile are kept for the next menu."""

    target_keys = ("next",)
    required = ("next",)

    def check(self, node: Node) -> Problems:
        return super().check(node) + _check_prompt_or_text(node)

    def enter(self, ctx: FlowSession, node: Node, now: float) -> None:
        play = _play(node, barge_in=bool(node.get("barge_in", False)))
        if play is None:
            ctx.goto(node["next"], now)
            return
        ctx.emit(play)
        ctx.set_timer(now + MAX_PROMPT_SECONDS)

    def on_digit(self, ctx: FlowSession, node: Node, digit: str, now: float) -> None:
        ctx.buffer_digit(digit)
        if node.get("barge_in", False):
            ctx.emit(StopPlayback())
            ctx.goto(node["next"], now)

    def on_playback_done(self, ctx: FlowSession, node: Node, now: float) -> None:
        ctx.goto(node["next"], now)

    on_timer = on_playback_done  # type: ignore[assignment]


class _ReadsDigits(NodeType):
    """Shared by menu and collect: prompt with barge-in, timeouts, retries with invalid/no-input
    prompts, then ``fail``."""

    def check(self, node: Node) -> Problems:
        problems = super().check(node) + _check_prompt_or_text(node)
        for key in ("timeout",):
            if key in node and not (_is_number(node[key]) and node[key] > 0):
                problems.append((key, f"expected a number of seconds > 0, got {node[key]!r}"))
        if "retries" in node and not (isinstance(node["retries"], int) and not isinstance(node["retries"], bool)
                                      and node["retries"] >= 0):
            problems.append(("retries", f"expected an integer >= 0, got {node['retries']!r}"))
        return problems

    def prompt(self, ctx: FlowSession, node: Node, now: float, extra: str | None = None) -> None:
        state = ctx.state
        state["playing"] = 0
        if extra and node.get(extra):
            ctx.emit(Play(prompt=str(node[extra]), barge_in=True))
            state["playing"] += 1
        play = _play(node, barge_in=True)
        if play is not None:
            ctx.emit(play)
            state["playing"] += 1
        ctx.set_timer(now + (MAX_PROMPT_SECONDS if state["playing"] else float(node.get("timeout", 5))))

    def enter(self, ctx: FlowSession, node: Node, now: float) -> None:
        ctx.state.update(attempts=0, digits="", playing=0)
        if not ctx.has_buffered_digits():
            self.prompt(ctx, node, now)
            return
        # digits typed ahead during an earlier prompt: use them, and skip the prompt
        while not ctx.moving and not ctx.finished and ctx.has_buffered_digits():
            self.on_digit(ctx, node, ctx.pop_digit(), now)
        if not ctx.moving and not ctx.finished and not ctx.state["playing"]:
            if ctx.state["digits"]:
                ctx.set_timer(now + float(node.get("timeout", 5)))
            else:
                self.prompt(ctx, node, now)

    def on_digit(self, ctx: FlowSession, node: Node, digit: str, now: float) -> None:
        if ctx.state.get("playing"):
            ctx.emit(StopPlayback())
            ctx.state["playing"] = 0
        self.digit(ctx, node, digit, now)

    def on_playback_done(self, ctx: FlowSession, node: Node, now: float) -> None:
        state = ctx.state
        if state.get("playing"):
            state["playing"] -= 1
            if state["playing"] == 0:
                ctx.set_timer(now + float(node.get("timeout", 5)))

    def on_timer(self, ctx: FlowSession, node: Node, now: float) -> None:
        if ctx.state.get("playing"):  # the prompt never reported its end: start listening anyway
            ctx.state["playing"] = 0
            ctx.set_timer(now + float(node.get("timeout", 5)))
            return
        self.timed_out(ctx, node, now)

    def retry(self, ctx: FlowSession, node: Node, now: float, prompt_key: str) -> None:
        state = ctx.state
        state["attempts"] += 1
        state["digits"] = ""
        if state["attempts"] > int(node.get("retries", 3)):
            if node.get("fail"):
                ctx.goto(node["fail"], now)
            else:
                ctx.emit(Hangup("no-input" if prompt_key == "no_input" else "invalid-input"))
                ctx.finish("hangup", now)
            return
        self.prompt(ctx, node, now, extra=prompt_key)

    def digit(self, ctx: FlowSession, node: Node, digit: str, now: float) -> None:
        raise NotImplementedError

    def timed_out(self, ctx: FlowSession, node: Node, now: float) -> None:
        raise NotImplementedError


class MenuNode(_ReadsDigits):
    """``options = { "1" = "sales", "2" = "support" }``; ``timeout``, ``retries``, ``invalid`` and
    ``no_input`` prompts, ``fail`` after the retries (default: hang up)."""

    target_keys = ("fail",)
    target_maps = ("options",)
    prompt_keys = ("prompt", "invalid", "no_input")
    required = ("options",)

    def check(self, node: Node) -> Problems:
        problems = super().check(node)
        options = node.get("options")
        if isinstance(options, dict):
            for key, target in options.items():
                if key not in "0123456789*#" or len(key) != 1:
                    problems.append((f"options.{key}", "expected a single key 0-9, * or #"))
                if not isinstance(target, str):
                    problems.append((f"options.{key}", f"expected a node name, got {target!r}"))
        elif options is not None:
            problems.append(("options", "expected a table like { \"1\" = \"sales\" }"))
        return problems

    def digit(self, ctx: FlowSession, node: Node, digit: str, now: float) -> None:
        target = node["options"].get(digit)
        if target is not None:
            ctx.variables[f"{ctx.current_name}.choice"] = digit
            ctx.goto(target, now)
        else:
            self.retry(ctx, node, now, "invalid")

    def timed_out(self, ctx: FlowSession, node: Node, now: float) -> None:
        self.retry(ctx, node, now, "no_input")


class CollectNode(_ReadsDigits):
    """Digits into ``var``: ``min``/``max`` length, ``terminator`` (default "#"), inter-digit
    ``timeout``; then ``next``, or ``fail`` after ``retries``."""

    target_keys = ("next", "fail")
    prompt_keys = ("prompt", "invalid", "no_input")
    required = ("var", "next")

    def check(self, node: Node) -> Problems:
        problems = super().check(node)
        low, high = node.get("min", 1), node.get("max", 16)
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high <= 64):
            problems.append(("max", f"expected integers 0 <= min <= max <= 64, got min={low!r} max={high!r}"))
        terminator = node.get("terminator", "#")
        if terminator not in ("", "#", "*"):
            problems.append(("terminator", f"expected \"#\", \"*\" or \"\", got {terminator!r}"))
        return problems

    def digit(self, ctx: FlowSession, node: Node, digit: str, now: float) -> None:
        state = ctx.state
        terminator = node.get("terminator", "#")
        if terminator and digit == terminator:
            self.complete(ctx, node, now)
            return
        state["digits"] += digit
        if len(state["digits"]) >= int(node.get("max", 16)):
            self.complete(ctx, node, now)
        else:
            ctx.set_timer(now + float(node.get("timeout", 5)))

    def complete(self, ctx: FlowSession, node: Node, now: float) -> None:
        digits = ctx.state["digits"]
        if len(digits) < int(node.get("min", 1)):
            self.retry(ctx, node, now, "invalid")
            return
        ctx.variables[str(node["var"])] = digits
        ctx.goto(node["next"], now)

    def timed_out(self, ctx: FlowSession, node: Node, now: float) -> None:
        if ctx.state.get("digits"):
            self.complete(ctx, node, now)
        else:
            self.retry(ctx, node, now, "no_input")


class SetNode(NodeType):
    """``vars = { language = "es" }``, then ``next``."""

    target_keys = ("next",)
    prompt_keys = ()
    required = ("vars", "next")

    def check(self, node: Node) -> Problems:
        problems = super().check(node)
        if "vars" in node and not isinstance(node["vars"], dict):
            problems.append(("vars", "expected a table like { language = \"es\" }"))
        return problems

    def enter(self, ctx: FlowSession, node: Node, now: float) -> None:
        ctx.variables.update(node["vars"])
        ctx.goto(node["next"], now)


class BranchNode(NodeType):
    """``condition`` (the routing expression language over the flow's variables), ``then``, ``else``."""

    target_keys = ("then", "else")
    prompt_keys = ()
    required = ("condition", "then", "else")

    def check(self, node: Node) -> Problems:
        problems = super().check(node)
        if "condition" in node:
            try:
                compile_expression(node["condition"], default=None)
            except ExpressionError as err:
                problems.append(("condition", f"{err.reason} at column {err.column} in {err.expression!r}"))
        return problems

    def enter(self, ctx: FlowSession, node: Node, now: float) -> None:
        expression = ctx.compiled(node["condition"])
        ctx.goto(node["then"] if expression.evaluate(ctx.variables) else node["else"], now)


class ScheduleNode(NodeType):
    """``hours`` (see routing's schedule: ``tz``, day spans, ``holidays``), ``open``, ``closed``,
    optional ``holiday`` (a holiday otherwise counts as closed)."""

    target_keys = ("open", "closed", "holiday")
    prompt_keys = ()
    required = ("hours", "open", "closed")

    def check(self, node: Node) -> Problems:
        problems = super().check(node)
        if "hours" in node:
            try:
                parse_schedule(node["hours"])
            except ScheduleError as err:
                problems.append((f"hours.{err.key}" if err.key else "hours", str(err).split(": ", 1)[-1]))
        return problems

    def enter(self, ctx: FlowSession, node: Node, now: float) -> None:
        import datetime as dt
        from zoneinfo import ZoneInfo

        schedule = ctx.schedule(node["hours"])
        if node.get("holiday"):
            today = dt.datetime.fromtimestamp(now, ZoneInfo(schedule.zone)).date()
            if today in schedule.holidays:
                ctx.goto(node["holiday"], now)
                return
        ctx.goto(node["open"] if schedule.is_open(now) else node["closed"], now)


class CrmNode(NodeType):
    """Look up ``key`` ("caller" or a variable name) through the CRM hook; the record goes into
    ``var`` (fields as ``var.field``); then ``found``, ``not_found``, or ``error`` (default:
    ``not_found``) also after ``timeout`` seconds."""

    target_keys = ("found", "not_found", "error")
    prompt_keys = ()
    required = ("found", "not_found")

    def check(self, node: Node) -> Problems:
        problems = super().check(node)
        if "timeout" in node and not (_is_number(node["timeout"]) and node["timeout"] > 0):
            problems.append(("timeout", f"expected a number of seconds > 0, got {node['timeout']!r}"))
        return problems

    def enter(self, ctx: FlowSession, node: Node, now: float) -> None:
        key = str(node.get("key", "caller"))
        value = ctx.caller if key == "caller" else str(ctx.variables.get(key, ""))
        request_id = f"{ctx.session_id}:{ctx.current_name}:{ctx.steps}"
        ctx.state["request"] = request_id
        ctx.emit(LookupCrm(request_id, key, value))
        ctx.set_timer(now + float(node.get("timeout", 5)))

    def on_crm_result(self, ctx: FlowSession, node: Node, record: dict[str, Any] | None,
                      error: str | None, now: float) -> None:
        if error is not None:
            ctx.goto(node.get("error", node["not_found"]), now)
            return
        if record is None:
            ctx.goto(node["not_found"], now)
            return
        var = str(node.get("var", "crm"))
        ctx.variables[var] = dict(record)
        for field_name, value in record.items():
            if isinstance(value, (str, int, float, bool)):
                ctx.variables[f"{var}.{field_name}"] = value
        ctx.goto(node["found"], now)

    def on_timer(self, ctx: FlowSession, node: Node, now: float) -> None:
        ctx.goto(node.get("error", node["not_found"]), now)


class QueueNode(NodeType):
    """Final: ``queue``, optional ``priority``; the flow's variables go along as attributes."""

    final = True
    prompt_keys = ()
    required = ("queue",)

    def check(self, node: Node) -> Problems:
        problems = super().check(node)
        if "priority" in node and not isinstance(node["priority"], int):
            problems.append(("priority", f"expected an integer, got {node['priority']!r}"))
        return problems

    def enter(self, ctx: FlowSession, node: Node, now: float) -> None:
        attributes = {k: v for k, v in ctx.variables.items() if isinstance(v, (str, int, float, bool))}
        ctx.emit(EnterQueue(str(node["queue"]), int(node.get("priority", 0)), attributes))
        ctx.finish("queue", now)


class TransferNode(NodeType):
    """Final: ``to`` an extension or an outside number."""

    final = True
    prompt_keys = ()
    required = ("to",)

    def enter(self, ctx: FlowSession, node: Node, now: float) -> None:
        ctx.emit(Transfer(str(node["to"])))
        ctx.finish("transfer", now)


class VoicemailNode(NodeType):
    """Final: record into ``box``, after the optional ``greeting`` prompt."""

    final = True
    prompt_keys = ("greeting",)
    required = ("box",)

    def enter(self, ctx: FlowSession, node: Node, now: float) -> None:
        ctx.emit(Voicemail(str(node["box"]), node.get("greeting")))
        ctx.finish("voicemail", now)


class CallbackNode(NodeType):
    """Final: a callback from ``queue`` on ``number`` (a variable name, default the caller's number),
    after an optional confirmation ``prompt``; the caller keeps their place in the queue.

    The callback is booked when the prompt ends, or when the caller hangs up during it: by then they
    have chosen it, and people hang up as soon as they hear "we will call you back". (Booking before
    the prompt would let a free agent dial the number while the caller is still on it.)"""

    final = True
    required = ("queue",)

    def enter(self, ctx: FlowSession, node: Node, now: float) -> None:
        play = _play(node, barge_in=False)
        if play is None:
            self.request(ctx, node, now)
            return
        ctx.emit(play)
        ctx.set_timer(now + MAX_PROMPT_SECONDS)

    def _book(self, ctx: FlowSession, node: Node, now: float) -> None:
        number_var = node.get("number", "caller")
        number = ctx.caller if number_var == "caller" else str(ctx.variables.get(number_var, ctx.caller))
        ctx.emit(RequestCallback(str(node["queue"]), number, f"{ctx.session_id}:{ctx.current_name}"))

    def request(self, ctx: FlowSession, node: Node, now: float) -> None:
        self._book(ctx, node, now)
        ctx.emit(Hangup("callback"))
        ctx.finish("callback", now)

    def on_hangup(self, ctx: FlowSession, node: Node, now: float) -> None:
        self._book(ctx, node, now)
        ctx.finish("callback", now)

    on_playback_done = request  # type: ignore[assignment]
    on_timer = request  # type: ignore[assignment]


class HangupNode(NodeType):
    """Final: optional goodbye ``prompt``/``text``, then hang up."""

    final = True

    def enter(self, ctx: FlowSession, node: Node, now: float) -> None:
        play = _play(node, barge_in=False)
        if play is None:
            self.done(ctx, node, now)
            return
        ctx.emit(play)
        ctx.set_timer(now + MAX_PROMPT_SECONDS)

    def done(self, ctx: FlowSession, node: Node, now: float) -> None:
        ctx.emit(Hangup("normal"))
        ctx.finish("hangup", now)

    on_playback_done = done  # type: ignore[assignment]
    on_timer = done  # type: ignore[assignment]


BUILTIN_NODE_TYPES: dict[str, NodeType] = {
    "play": PlayNode(),
    "menu": MenuNode(),
    "collect": CollectNode(),
    "set": SetNode(),
    "branch": BranchNode(),
    "schedule": ScheduleNode(),
    "crm": CrmNode(),
    "queue": QueueNode(),
    "transfer": TransferNode(),
    "voicemail": VoicemailNode(),
    "callback": CallbackNode(),
    "hangup": HangupNode(),
}
