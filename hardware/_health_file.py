"""Device health snapshots in the data directory, for ``centralita devices`` outside the engine.

Each running device writes ``<data_dir>/device-health/<name>.json`` (atomically: temporary file, then
rename) whenever its health changes. ``centralita devices --config FILE`` reads them back with no
credentials and no network, the way ``centralita token add`` reaches the store. A snapshot carries the
writer's process id: one left by an engine that has exited is shown as "engine not running", never as
a live health. The files are read as hostile input: bounded size, bad JSON skipped.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["HEALTH_DIR", "event_text", "read_health_snapshots", "write_health_snapshot"]

HEALTH_DIR = "device-health"
MAX_SNAPSHOT_BYTES = 64 * 1024
MAX_TEXT = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def event_text(value: object) -> str:
    """A device-supplied text made safe for an event field or a terminal line: control characters
    (a modem's CR LF, an escape sequence) become ``\\xNN`` and the length is bounded."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _json_safe(value: Any) -> Any:
    if isinstance(value, str):
        return event_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return event_text(value)


def write_health_snapshot(
    data_dir: Path | str | None, name: str, health: str, details: Mapping[str, Any]
) -> None:
    """Best effort: a read-only or full disk must never take a driver down."""
    if not data_dir:
        return
    try:
        folder = Path(data_dir) / HEALTH_DIR
        folder.mkdir(parents=True, exist_ok=True)
        record = {
            "name": name,
            "health": health,
            "pid": os.getpid(),
            "updated": time.time(),
            **{k: _json_safe(v) for k, v in details.items() if k not in ("name", "health", "pid", "updated")},
        }
        target = folder / (_SAFE_NAME.sub("_", name) + ".json")
        temporary = target.with_suffix(f".tmp{os.getpid()}")
        temporary.write_text(json.dumps(record), encoding="utf-8")
        os.replace(temporary, target)
    except OSError:
        pass


def _process_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def read_health_snapshots(data_dir: Path | str) -> list[dict[str, Any]]:
    """Every snapshot in ``data_dir``, sorted by name, each with ``running`` (its engine is alive)."""
    folder = Path(data_dir) / HEALTH_DIR
    out: list[dict[str, Any]] = []
    try:
        files = sorted(folder.glob("*.json"))
    except OSError:
        return out
    for path in files:
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_SNAPSHOT_BYTES + 1)
            if len(raw) > MAX_SNAPSHOT_BYTES:
                continue
            record = json.loads(raw)
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or not isinstance(record.get("name"), str):
            continue
        record = _json_safe(record)
        record["running"] = _process_alive(record.get("pid"))
        out.append(record)
    return out
