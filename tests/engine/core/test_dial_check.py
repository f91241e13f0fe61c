"""Nothing reaches a trunk or a line unchecked: only '+' and digits pass the dial-string allowlist."""

from __future__ import annotations

import pytest

from engine import load_config
from engine._engine import Engine
from engine.testing import make_manager


@pytest.fixture
def engine() -> Engine:
    return Engine(load_config(None), make_manager())


@pytest.mark.parametrize("number", ["+34911222333", "1001", " +1555 ".strip(), "112"])
def test_plain_numbers_pass(engine: Engine, number: str) -> None:
    assert engine.check_dial(number) == number


@pytest.mark.parametrize(
    "number",
    ["", "+", "1234;ext=5", "+34,911", "ATD5551234", "555\r\nATH", "sip:evil@example.com", "12+34",
     "++34", "1" * 21, "１２３", "*67555", "555#"],
)
def test_anything_else_is_refused_with_a_reason(engine: Engine, number: str) -> None:
    with pytest.raises(ValueError, match="refused dial string"):
        engine.check_dial(number)
