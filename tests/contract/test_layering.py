"""Import layering (DESIGN.md): the engine finds plugins only through entry points; plugins do not
import each other; hardware never imports plugins; sans-IO protocol cores never import trio or do I/O."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Modules that must stay sans-IO: protocol and decision cores, fed bytes/events and the time.
SANS_IO_GLOBS = [
    "plugins/*/sansio/**/*.py",
    "engine/routing/**/*.py",
    "engine/dialing/**/*.py",
    "engine/ivr/**/*.py",
    *(f"engine/media/_{name}.py" for name in ("rtp", "session", "jitter", "dtmf", "inband", "mixer", "levels",
                                                "g711", "audio", "tones")),
    "engine/messaging/_retry.py",
    "engine/reporting/_stats.py",
    "engine/reporting/_staffing.py",
    "plugins/crm_sqlite/_model.py",
    "hardware/*/sansio/**/*.py",
]
IO_MODULES = {"trio", "socket", "asyncio", "serial", "sounddevice", "aiosqlite", "subprocess", "selectors"}


def imports_of(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                yield ".".join([*base, node.module] if node.module else base)
            elif node.module:
                yield node.module


def py_files(top: str) -> list[Path]:
    return [p for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts]


def test_engine_imports_neither_plugins_nor_hardware() -> None:
    bad = [(str(p.relative_to(ROOT)), m) for p in py_files("engine") for m in imports_of(p)
           if m.split(".")[0] in {"plugins", "hardware"}]
    assert bad == []


def test_plugins_do_not_import_each_other() -> None:
    bad = []
    for path in py_files("plugins"):
        parts = path.relative_to(ROOT).parts
        if len(parts) < 3:
            continue
        own = parts[1]
        for module in imports_of(path):
            top = module.split(".")
            if top[0] == "hardware" or (top[0] == "plugins" and len(top) > 1 and top[1] != own):
                bad.append((str(path.relative_to(ROOT)), module))
    assert bad == []


def test_hardware_never_imports_plugins() -> None:
    bad = [(str(p.relative_to(ROOT)), m) for p in py_files("hardware") for m in imports_of(p) if m.split(".")[0] == "plugins"]
    assert bad == []


def test_sans_io_cores_do_no_io() -> None:
    files = sorted({p for pattern in SANS_IO_GLOBS for p in ROOT.glob(pattern)})
    assert files, "no sans-IO modules found: did a package move?"
    bad = [(str(p.relative_to(ROOT)), m) for p in files for m in imports_of(p) if m.split(".")[0] in IO_MODULES]
    assert bad == []
