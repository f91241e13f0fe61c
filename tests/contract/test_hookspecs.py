"""Every hook is documented like pytest's (kind, when, example), typed, and exercised by the engine."""

from __future__ import annotations

import inspect

import pytest

from engine import hookspecs

SPECS = {name: getattr(hookspecs, name) for name in dir(hookspecs) if name.startswith("centralita_")}


def test_there_are_hooks_of_every_kind() -> None:
    kinds = {name: doc.split("Kind:")[1].split()[0].rstrip(".") for name, doc in ((n, inspect.getdoc(f) or "") for n, f in SPECS.items())}
    assert set(kinds.values()) >= {"registration", "decision", "notification"}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_is_documented_and_typed(name: str) -> None:
    spec = SPECS[name]
    doc = inspect.getdoc(spec) or ""
    assert "Kind:" in doc, f"{name}: say which of the four kinds it is"
    assert "Called" in doc, f"{name}: say when it is called"
    assert "Example::" in doc, f"{name}: give an example implementation"
    signature = inspect.signature(spec)
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: annotate the return type"
    for param in signature.parameters.values():
        assert param.annotation is not inspect.Parameter.empty, f"{name}: annotate {param.name}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_firstresult_only_on_decisions(name: str) -> None:
    options = getattr(SPECS[name], "centralita_spec")
    is_decision = "Kind: decision" in (inspect.getdoc(SPECS[name]) or "")
    assert bool(options.get("firstresult")) == is_decision
