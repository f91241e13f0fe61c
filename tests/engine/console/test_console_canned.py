"""Canned responses, pure parts: placeholders are filled with plain one-line text, unknown ones stay,
and what a supervisor may store."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.console._canned import PLACEHOLDERS, CannedError, check, fill


def test_known_placeholders_are_filled_and_unknown_ones_stay() -> None:
    body = "Hola {customer_name}, soy {agent_name} ({queue}, {interaction}). {typo} {{customer_name}}"
    values = {"customer_name": "Ana", "agent_name": "Alice", "queue": "web", "interaction": "i-1"}
    assert fill(body, values) == "Hola Ana, soy Alice (web, i-1). {typo} {Ana}"


def test_values_cannot_break_lines_or_smuggle_control_characters() -> None:
    assert fill("Hi {customer_name}!", {"customer_name": "Ana\r\nBcc: x\x00\x1b[31m"}) == "Hi AnaBcc: x[31m!"
    assert fill("{customer_name}", {"customer_name": None}) == ""
    assert len(fill("{customer_name}", {"customer_name": "x" * 10_000})) == 200


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.dictionaries(st.sampled_from(PLACEHOLDERS), st.text(max_size=300)))
def test_filling_never_adds_a_control_character_or_a_line(body: str, values: dict[str, str]) -> None:
    out = fill(body, values)
    assert sum(1 for c in out if c < " " or c == "\x7f") <= sum(1 for c in body if c < " " or c == "\x7f")
    assert out.count("\n") <= body.count("\n")


@pytest.mark.parametrize(("title", "body", "queue"), [
    ("", "b", None), ("t" * 81, "b", None), ("t", "", None), ("t", " \n ", None), ("t", "b" * 4001, None),
    (None, "b", None), ("t", 5, None), ("t", "b", "../etc"), ("t", "b", 3), ("t", "b", "a b"), (["t"], "b", None),
])
def test_what_a_supervisor_may_not_store(title, body, queue) -> None:
    with pytest.raises(CannedError):
        check(title, body, queue)


def test_a_stored_body_keeps_its_lines_and_loses_control_characters() -> None:
    assert check(" Greeting\x07 ", "line one\nline two\x00\t!", "") == ("Greeting", "line one\nline two\t!", None)
