"""Match dialled numbers and addresses against ``[[routes]] match`` patterns.

Asterisk-style: a pattern starting with ``_`` uses ``X`` (any digit), ``N`` (2-9), ``Z`` (1-9),
``[1-5]`` / ``[135]`` (a set or range) and ``.`` (one or more of anything) / ``!`` (zero or more);
anything else matches literally (case-insensitively, for device names and e-mail addresses).
"""

from __future__ import annotations

import re
from functools import lru_cache


class PatternError(ValueError):
    pass


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern), re.IGNORECASE)
    out: list[str] = []
    body = pattern[1:]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch in "Xx":
            out.append("[0-9]")
        elif ch in "Nn":
            out.append("[2-9]")
        elif ch in "Zz":
            out.append("[1-9]")
        elif ch == ".":
            out.append(".+")
        elif ch == "!":
            out.append(".*")
        elif ch == "[":
            end = body.find("]", i)
            if end < 0:
                raise PatternError(f"unclosed '[' in pattern {pattern!r}")
            content = body[i + 1 : end]
            if not content or not re.fullmatch(r"[0-9\-]+", content):
                raise PatternError(f"bad set [{content}] in pattern {pattern!r}: use digits and ranges like [1-5]")
            out.append(f"[{content}]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE)


def matches(pattern: str, value: str) -> bool:
    return compile_pattern(pattern).fullmatch(value) is not None


def specificity(pattern: str) -> tuple[int, int]:
    """Sort key so that exact matches win over patterns, and narrower patterns over wider ones."""
    if not pattern.startswith("_"):
        return (0, -len(pattern))
    wild = sum(pattern.count(c) for c in ".!")
    return (1 + wild, -len(pattern))
