"""Validate plain data (parsed TOML) against frozen dataclass schemas.

Every problem is reported with its key path (``queues[0].timeout``), what was expected and what was
found; unknown keys get a did-you-mean. Nothing here knows about files or line numbers: the caller
(:mod:`engine._config`) maps paths to lines.

Supported field types: ``str``, ``int``, ``float`` (ints accepted), ``bool``, ``Literal[...]``,
``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``, nested dataclasses and ``Any``. A field's
``metadata`` may hold ``min``/``max`` bounds and ``check``: a callable returning an error text or None.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin, get_type_hints


@dataclass(frozen=True)
class Problem:
    path: str
    message: str


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if origin is Literal:
        return "one of " + " | ".join(repr(a) for a in get_args(tp))
    if origin in (list, tuple):
        return f"an array of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return f"a table of {_type_name(get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    return getattr(tp, "__name__", str(tp))


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def convert(tp: Any, value: Any, path: str, problems: list[Problem]) -> Any:
    """Return ``value`` converted to ``tp``, appending to ``problems`` when it does not fit."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            trial: list[Problem] = []
            result = convert(option, value, path, trial)
            if not trial:
                return result
        problems.append(Problem(path, f"expected {_type_name(tp)}, got {_describe(value)}"))
        return None
    if origin is Literal:
        if value in get_args(tp) and type(value) is type(get_args(tp)[0]):
            return value
        choices = [str(a) for a in get_args(tp)]
        hint = difflib.get_close_matches(str(value), choices, n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        problems.append(Problem(path, f"expected {_type_name(tp)}, got {_describe(value)}{extra}"))
        return None
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin in (list, tuple):
        if isinstance(value, list):
            item_tp = get_args(tp)[0]
            items = [convert(item_tp, v, join(path, i), problems) for i, v in enumerate(value)]
            return tuple(items) if origin is tuple else items
    elif origin is dict:
        if isinstance(value, dict):
            item_tp = get_args(tp)[1]
            return {k: convert(item_tp, v, join(path, k), problems) for k, v in value.items()}
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return build(tp, value, path, problems)
    else:  # pragma: no cover - a schema bug, not a user error
        raise TypeError(f"unsupported schema type {tp!r} at {path}")
    problems.append(Problem(path, f"expected {_type_name(tp)}, got {_describe(value)}"))
    return None


def build(cls: type, data: dict[str, Any], path: str, problems: list[Problem]) -> Any:
    """Build dataclass ``cls`` from ``data``; on problems, returns None and appends them."""
    hints = get_type_hints(cls)
    fields = {f.name.rstrip("_"): f for f in dataclasses.fields(cls) if f.init}
    before = len(problems)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        field = fields.get(name)
        if field is None:
            hint = difflib.get_close_matches(key, list(fields), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            problems.append(Problem(join(path, key), f"unknown key{extra}"))
            continue
        converted = convert(hints[field.name], value, join(path, key), problems)
        meta = field.metadata
        if isinstance(converted, (int, float)) and not isinstance(converted, bool):
            if "min" in meta and converted < meta["min"]:
                problems.append(Problem(join(path, key), f"expected at least {meta['min']}, got {_describe(value)}"))
            if "max" in meta and converted > meta["max"]:
                problems.append(Problem(join(path, key), f"expected at most {meta['max']}, got {_describe(value)}"))
        check = meta.get("check")
        if check is not None and converted is not None:
            error = check(converted)
            if error:
                problems.append(Problem(join(path, key), error))
        kwargs[field.name] = converted
    for name, field in fields.items():
        missing = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if missing and field.name not in kwargs:
            problems.append(Problem(join(path, name), f"missing required key (expected {_type_name(hints[field.name])})"))
    if len(problems) > before:
        return None
    return cls(**kwargs)
