"""A small, safe expression language for skill targets and IVR conditions.

Grammar (lowest precedence first)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | atom
    atom       := "(" expr ")" | operand [cmp operand]
    cmp        := ">=" | "<=" | ">" | "<" | "==" | "!="
    operand    := NAME | NUMBER | STRING | "true" | "false"

A bare ``NAME`` is true when its value is truthy (for skills: a level above 0). Expressions are parsed
once into a tree of closures; nothing is ever handed to ``eval``. Parse errors carry the 1-based column
so a config error can point at it.

``lower_by`` relaxes every numeric threshold a name is compared against (``es >= 60`` lowered by 20 is
``es >= 40``), which is how a queue's timed relaxation steps loosen a skill target.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Expression", "ExpressionError", "compile_expression"]

Env = Mapping[str, Any]
Evaluator = Callable[[Env], Any]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?)
      | (?P<string>"[^"\\]*"|'[^'\\]*')
      | (?P<op>>=|<=|==|!=|>|<)
      | (?P<paren>[()])
      | (?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "true", "false"}
_MAX_LENGTH = 2000
_MAX_DEPTH = 50


class ExpressionError(ValueError):
    """The expression text is invalid. ``column`` is 1-based; ``expression`` is the text."""

    def __init__(self, message: str, expression: str, column: int) -> None:
        self.expression = expression
        self.column = column
        self.reason = message
        super().__init__(f"{message} at column {column} in {expression!r}")


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, op, paren, name, keyword, end
    text: str
    column: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            column = pos + 1 + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise ExpressionError(f"unexpected character {text[column - 1]!r}", text, column)
        kind = match.lastgroup or "?"
        value = match.group(kind)
        column = match.start(kind) + 1
        if kind == "name" and value.lower() in _KEYWORDS:
            kind, value = "keyword", value.lower()
        tokens.append(_Token(kind, value, column))
        pos = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _numeric(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and len(value) < 40:
        try:
            return float(value)
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class _Compare:
    """One comparison as data, kept so the router can explain a mismatch (``es=40 fails es >= 60``)."""

    left: tuple[str, Any]  # ("name", "es") or ("value", 60)
    op: str
    right: tuple[str, Any]


class _Parser:
    def __init__(self, text: str, lower_by: float, default: Any) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.lower_by = lower_by
        self.default = default
        self.names: set[str] = set()
        self.comparisons: list[_Compare] = []
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, message: str, token: _Token | None = None) -> ExpressionError:
        token = token or self.peek()
        return ExpressionError(message, self.text, token.column)

    def parse(self) -> Evaluator:
        if self.peek().kind == "end":
            raise self.fail("empty expression")
        result = self.parse_or()
        if self.peek().kind != "end":
            raise self.fail(f"unexpected {self.peek().text!r}")
        return result

    def parse_or(self) -> Evaluator:
        parts = [self.parse_and()]
        while self.peek().kind == "keyword" and self.peek().text == "or":
            self.take()
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        return lambda env: any(part(env) for part in parts)

    def parse_and(self) -> Evaluator:
        parts = [self.parse_not()]
        while self.peek().kind == "keyword" and self.peek().text == "and":
            self.take()
            parts.append(self.parse_not())
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            first, second = parts
            return lambda env: bool(first(env)) and bool(second(env))
        return lambda env: all(part(env) for part in parts)

    def parse_not(self) -> Evaluator:
        token = self.peek()
        if token.kind == "keyword" and token.text == "not":
            self.take()
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise self.fail("expression nested too deeply")
            inner = self.parse_not()
            self.depth -= 1
            return lambda env: not inner(env)
        return self.parse_atom()

    def parse_operand(self) -> tuple[str, Any]:
        token = self.take()
        if token.kind == "number":
            return ("value", float(token.text) if "." in token.text else int(token.text))
        if token.kind == "string":
            return ("value", token.text[1:-1])
        if token.kind == "keyword" and token.text in ("true", "false"):
            return ("value", token.text == "true")
        if token.kind == "name":
            self.names.add(token.text)
            return ("name", token.text)
        raise self.fail("expected a name, a number or a string" if token.kind != "end" else
                        "expression ends too early", token)

    def parse_atom(self) -> Evaluator:
        token = self.peek()
        if token.kind == "paren" and token.text == "(":
            self.take()
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise self.fail("expression nested too deeply")
            inner = self.parse_or()
            self.depth -= 1
            closing = self.peek()
            if not (closing.kind == "paren" and closing.text == ")"):
                raise self.fail("missing ')'", closing)
            self.take()
            return inner
        left = self.parse_operand()
        if self.peek().kind != "op":
            if left[0] == "value":
                constant = bool(left[1])
                return lambda env: constant
            name, default = left[1], self.default
            return lambda env: bool(env.get(name, default))
        op = self.take().text
        right = self.parse_operand()
        return self.build_compare(left, op, right)

    def build_compare(self, left: tuple[str, Any], op: str, right: tuple[str, Any]) -> Evaluator:
        # relaxation lowers thresholds: "name >= K" -> "name >= K - d", "K <= name" likewise
        if self.lower_by and left[0] == "name" and right[0] == "value" and op in (">=", ">"):
            if isinstance(right[1], (int, float)) and not isinstance(right[1], bool):
                right = ("value", right[1] - self.lower_by)
        if self.lower_by and right[0] == "name" and left[0] == "value" and op in ("<=", "<"):
            if isinstance(left[1], (int, float)) and not isinstance(left[1], bool):
                left = ("value", left[1] - self.lower_by)
        self.comparisons.append(_Compare(left, op, right))
        compare = _COMPARE[op]
        default = self.default

        def safe(a: Any, b: Any) -> bool:
            try:
                return bool(compare(a, b))
            except TypeError:  # "1234" >= 1000 compares as numbers; "abc" >= 3 is a mismatch
                a, b = _numeric(a), _numeric(b)
                if a is None or b is None:
                    return False
                return bool(compare(a, b))

        if left[0] == "name" and right[0] == "value":
            name, value = left[1], right[1]
            if op == ">=" and isinstance(value, (int, float)):
                def ge(env: Env) -> bool:
                    got = env.get(name, default)
                    try:
                        return got >= value
                    except TypeError:
                        return safe(got, value)
                return ge
            return lambda env: safe(env.get(name, default), value)
        if left[0] == "value" and right[0] == "name":
            value, name = left[1], right[1]
            return lambda env: safe(value, env.get(name, default))
        if left[0] == "name" and right[0] == "name":
            a, b = left[1], right[1]
            return lambda env: safe(env.get(a, default), env.get(b, default))
        constant = safe(left[1], right[1])
        return lambda env: constant


@dataclass(frozen=True)
class Expression:
    """A compiled expression. Call :meth:`evaluate` with a mapping of names to values."""

    text: str
    names: frozenset[str]
    lower_by: float = 0
    default: Any = 0
    _evaluate: Evaluator = field(repr=False, compare=False, default=lambda env: True)
    comparisons: tuple[_Compare, ...] = field(repr=False, compare=False, default=())

    def evaluate(self, env: Env) -> bool:
        return bool(self._evaluate(env))

    def relaxed(self, lower_by: float) -> Expression:
        """The same expression with every ``name >= K`` threshold lowered by ``lower_by``."""
        return compile_expression(self.text, lower_by=lower_by, default=self.default)

    def explain(self, env: Env) -> str:
        """Which comparisons fail for ``env`` (``es=40 fails es >= 60``), for offer explanations."""
        failing = []
        for comparison in self.comparisons:
            values = []
            for side in (comparison.left, comparison.right):
                values.append(env.get(side[1], self.default) if side[0] == "name" else side[1])
            try:
                ok = _COMPARE[comparison.op](values[0], values[1])
            except TypeError:
                ok = False
            if not ok:
                shown = [f"{side[1]}={value}" if side[0] == "name" else None
                         for side, value in zip((comparison.left, comparison.right), values)]
                who = ", ".join(s for s in shown if s)
                left = comparison.left[1]
                right = comparison.right[1]
                failing.append(f"{who} fails {left} {comparison.op} {right}")
        return "; ".join(failing) if failing else f"does not match {self.text!r}"


def compile_expression(text: str, *, lower_by: float = 0, default: Any = 0,
                       known_names: set[str] | frozenset[str] | None = None) -> Expression:
    """Parse ``text`` once. Raises :class:`ExpressionError` (with the column) on bad syntax, and on a
    name outside ``known_names`` when that set is given (an unknown skill)."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected a string, got {type(text).__name__}", str(text), 1)
    if len(text) > _MAX_LENGTH:
        raise ExpressionError(f"longer than {_MAX_LENGTH} characters", text[:40] + "...", 1)
    parser = _Parser(text, lower_by, default)
    evaluate = parser.parse()
    if known_names is not None:
        for token in parser.tokens:
            if token.kind == "name" and token.text not in known_names:
                raise ExpressionError(f"unknown name {token.text!r}", text, token.column)
    return Expression(text, frozenset(parser.names), lower_by, default, evaluate, tuple(parser.comparisons))
