"""Checks every plugin of a kind must pass; plugin authors call them from their own tests."""

from __future__ import annotations

import inspect
from types import ModuleType

from .. import hookspecs


def check_plugin_module(module: ModuleType | object) -> list[str]:
    """Problems with a plugin module: hook names that do not exist, or arguments a spec does not offer.

    pluggy validates this too, but only when registered; this gives all problems at once with the fix.
    """
    problems: list[str] = []
    specs = {n: getattr(hookspecs, n) for n in dir(hookspecs) if n.startswith("centralita_")}
    for name in dir(module):
        if not name.startswith("centralita_"):
            continue
        impl = getattr(module, name)
        spec = specs.get(name)
        if spec is None:
            problems.append(f"{name}: no such hook (known: {', '.join(sorted(specs))})")
            continue
        allowed = set(inspect.signature(spec).parameters)
        extra = set(inspect.signature(impl).parameters) - allowed
        if extra:
            problems.append(f"{name}: arguments {sorted(extra)} are not offered (available: {sorted(allowed)})")
        if not hasattr(impl, "centralita_impl"):
            problems.append(f"{name}: missing the @engine.hookimpl decorator")
    return problems
