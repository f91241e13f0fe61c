"""Editing the running configuration from the console: check, diff, save-and-apply, history, roll back.

Only the main file (``centralita run --config FILE``) is edited; ``conf.d/*.toml`` drop-ins are read
exactly as at start-up (so a check sees the merged result and a drop-in's errors), never written.
The check is the engine's own loader (``load_with_plugins``, what ``centralita check-config`` and
SIGHUP use): there is no second validator here. A candidate is written next to the real file, so
``conf.d`` and a relative ``data_dir`` resolve as they will, and that same file is renamed over the
real one when it is applied (atomic; fsynced file and directory).

Every applied text is kept in ``<data_dir>/config-history/`` with who and when (the last
:data:`MAX_VERSIONS`). The text found on disk is kept too before it is first replaced, so a hand edit
can be rolled back to.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from .._errors import ConfigError

#: Largest configuration accepted through the API (the plain-form page is limited to 64 KiB by the
#: request layer, which reads a form body to find its CSRF field).
MAX_CONFIG_BYTES = 256 * 1024
#: Versions kept in the history; the oldest go first.
MAX_VERSIONS = 50
#: Top-level sections the engine applies without a restart (``Engine.reload``).
LIVE_SECTIONS = frozenset({"queues", "agents", "routes"})

_PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<message>.*)$", re.DOTALL)
_candidates = itertools.count(1)


@dataclass
class CheckResult:
    problems: list[dict[str, Any]] = field(default_factory=list)
    diff: str = ""
    restart_needed: list[str] = field(default_factory=list)
    config: Any = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "diff": self.diff, "restart_needed": self.restart_needed}


class ConfigUnavailable(Exception):
    """The engine runs without a configuration file (or is not a full engine): nothing to edit."""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_problem(line: str, candidate: str, real: str) -> dict[str, Any]:
    """``FILE:LINE: path: message`` from the loader -> a dict naming the real file, not the candidate."""
    line = line.replace(candidate, real)
    found = _PROBLEM.match(line)
    if not found:
        return {"file": real, "line": 0, "message": line, "text": line}
    return {"file": found["file"], "line": int(found["line"]), "message": found["message"], "text": line}


def unified_diff(old: str, new: str, name: str) -> str:
    return "".join(
        difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                             f"{name} (running)", f"{name} (new)", n=2)
    )


def restart_sections(old_raw: dict[str, Any], new_raw: dict[str, Any]) -> list[str]:
    """Changed top-level sections that ``Engine.reload`` does not apply (they wait for a restart)."""
    changed = {k for k in set(old_raw) | set(new_raw) if old_raw.get(k) != new_raw.get(k)}
    return sorted(changed - LIVE_SECTIONS)


def write_atomically(path: Path, text: str) -> None:
    """Temp file in the same directory, fsync, rename over ``path``, fsync the directory."""
    temp = path.with_name(f".{path.name}.saving-{os.getpid()}-{next(_candidates)}")
    _write_synced(temp, text, _mode_of(path))
    os.replace(temp, path)
    _sync_dir(path.parent)


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o600


def _write_synced(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ConfigHistory:
    """Versions as ``NNNNNN.toml`` plus ``NNNNNN.json`` (who, when, checksum) in one directory."""

    def __init__(self, directory: Path, limit: int | None = None) -> None:
        self.directory = directory
        self.limit = limit or MAX_VERSIONS

    def _ids(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        return sorted(int(p.stem) for p in self.directory.glob("*.json") if p.stem.isdigit())

    def list(self) -> list[dict[str, Any]]:
        out = []
        for version in reversed(self._ids()):
            try:
                out.append(json.loads((self.directory / f"{version:06d}.json").read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue  # a damaged entry is skipped, not fatal
        return out

    def latest(self) -> dict[str, Any] | None:
        listed = self.list()
        return listed[0] if listed else None

    def read(self, version: int) -> tuple[dict[str, Any], str]:
        """(metadata, text); ``KeyError`` for a version that is not kept."""
        try:
            meta = json.loads((self.directory / f"{version:06d}.json").read_text(encoding="utf-8"))
            text = (self.directory / f"{version:06d}.toml").read_text(encoding="utf-8")
        except (OSError, ValueError):
            raise KeyError(f"configuration version {version}") from None
        return meta, text

    def add(self, text: str, *, user: str, note: str) -> dict[str, Any]:
        self.directory.mkdir(parents=True, exist_ok=True)
        ids = self._ids()
        version = (ids[-1] + 1) if ids else 1
        meta = {"version": version, "created": time.time(), "user": user, "note": note,
                "sha256": sha256(text), "size": len(text.encode("utf-8"))}
        write_atomically(self.directory / f"{version:06d}.toml", text)
        write_atomically(self.directory / f"{version:06d}.json", json.dumps(meta))
        for old in ids[: max(0, len(ids) + 1 - self.limit)]:
            for suffix in (".json", ".toml"):
                (self.directory / f"{old:06d}{suffix}").unlink(missing_ok=True)
        return meta


class ConfigAdmin:
    """What the configuration page and API do, against a running :class:`engine.Engine`."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._lock = trio.Lock()

    # ------------------------------------------------------------------------------- reading

    @property
    def path(self) -> Path:
        config = getattr(self.engine, "config", None)
        if config is None or not hasattr(self.engine, "reload") or not hasattr(self.engine, "plugins"):
            raise ConfigUnavailable("this console is not attached to a full engine")
        if config.source is None:
            raise ConfigUnavailable(
                "the engine runs with the embedded default configuration; start it with "
                "centralita run --config FILE to edit the configuration here"
            )
        return Path(config.source)

    @property
    def history(self) -> ConfigHistory:
        return ConfigHistory(Path(self.engine.config.data_dir) / "config-history")

    def drop_ins(self) -> list[str]:
        directory = self.path.parent / "conf.d"
        return sorted(str(p) for p in directory.glob("*.toml")) if directory.is_dir() else []

    def current_text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def describe(self) -> dict[str, Any]:
        text = self.current_text()
        return {"path": str(self.path), "text": text, "sha256": sha256(text), "conf_d": self.drop_ins(),
                "versions": self.history.list()}

    # ------------------------------------------------------------------------------- checking

    def _load(self, candidate: Path) -> Any:
        from .._cli import load_with_plugins  # the one loader the CLI and SIGHUP use

        return load_with_plugins(candidate, self.engine.plugins, Path(self.engine.config.data_dir))

    def load_as(self, candidate: Path, real: Path) -> Any:
        """Load ``candidate`` as if it were ``real`` (the engine must go on naming, and SIGHUP
        re-reading, the real file, not the candidate). Raises ``ConfigError``."""
        loaded = self._load(candidate)
        locations = {k: (str(real) if f == str(candidate) else f, n) for k, (f, n) in loaded.locations.items()}
        return dataclasses.replace(loaded, source=real, locations=locations)

    def _check_at(self, candidate: Path, text: str) -> CheckResult:
        real = self.path
        result = CheckResult(diff=unified_diff(self.current_text(), text, real.name))
        try:
            result.config = self.load_as(candidate, real)
        except ConfigError as exc:
            result.problems = [parse_problem(p, str(candidate), str(real)) for p in exc.problems]
            return result
        result.restart_needed = restart_sections(self.engine.config.raw, result.config.raw)
        return result

    def _candidate(self, text: str) -> Path:
        candidate = self.path.with_name(f".{self.path.name}.candidate-{os.getpid()}-{next(_candidates)}")
        _write_synced(candidate, text, _mode_of(self.path))
        return candidate

    async def check(self, text: str) -> CheckResult:
        """Validate ``text`` as the main file (with the current drop-ins); nothing changes."""
        _require_text(text)
        candidate = await trio.to_thread.run_sync(self._candidate, text)
        try:
            return await trio.to_thread.run_sync(self._check_at, candidate, text)
        finally:
            candidate.unlink(missing_ok=True)

    # ------------------------------------------------------------------------------- applying

    async def apply(self, text: str, *, user: str, note: str = "edited in the console",
                    base_sha256: str | None = None) -> tuple[CheckResult, dict[str, Any] | None]:
        """Check, keep in the history, replace the file atomically and reload the engine.

        Returns (check result, version metadata); the version is None when the check failed (nothing
        was written). ``base_sha256``: the text the editor started from; if the file changed since
        (another technician, a hand edit), ``ValueError`` (409) instead of overwriting their change.
        """
        _require_text(text)
        async with self._lock:
            current = await trio.to_thread.run_sync(self.current_text)
            if base_sha256 and base_sha256 != sha256(current):
                raise ValueError("the configuration file changed since you opened it; reload the page and redo the edit")
            candidate = await trio.to_thread.run_sync(self._candidate, text)
            try:
                result = await trio.to_thread.run_sync(self._check_at, candidate, text)
                if not result.ok:
                    return result, None
                history = self.history
                latest = history.latest()
                if latest is None or latest.get("sha256") != sha256(current):
                    await trio.to_thread.run_sync(lambda: history.add(current, user="(file on disk)", note="before the console edit"))
                meta = await trio.to_thread.run_sync(lambda: history.add(text, user=user, note=note))
                await trio.to_thread.run_sync(self._replace, candidate)
            finally:
                candidate.unlink(missing_ok=True)
            try:
                self.engine.reload(result.config)
            except Exception as exc:
                # the file must not say something the engine is not doing: put the old text back
                await trio.to_thread.run_sync(write_atomically, self.path, current)
                raise ValueError(f"the engine could not apply it ({exc}); the previous file was put back") from exc
            return result, meta

    def _replace(self, candidate: Path) -> None:
        os.replace(candidate, self.path)
        _sync_dir(self.path.parent)

    async def rollback(self, version: int, *, user: str) -> tuple[CheckResult, dict[str, Any] | None]:
        meta, text = await trio.to_thread.run_sync(self.history.read, version)
        return await self.apply(text, user=user, note=f"rolled back to version {meta.get('version', version)}")


def _require_text(text: Any) -> None:
    if not isinstance(text, str):
        raise TypeError("text must be a string")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise TypeError("the configuration is not valid Unicode text") from None
    if size > MAX_CONFIG_BYTES:
        raise OverflowError(f"the configuration is larger than {MAX_CONFIG_BYTES} bytes")
    if "\x00" in text:
        raise TypeError("the configuration contains a NUL character")
