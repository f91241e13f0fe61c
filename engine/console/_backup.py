"""Backup and restore: one zip holding the configuration and a consistent database snapshot.

Layout of the archive (anything else in it is refused)::

    MANIFEST.json              {"format": "centralita-backup", "version": 1, "created": ..., ...}
    config/centralita.toml     the main configuration file (absent when the engine ran on the default)
    config/conf.d/NAME.toml    its drop-ins
    centralita.db              SQLite snapshot made with the online backup API

The snapshot is taken through a separate read connection with SQLite's backup API in one step: one
read transaction, so it is consistent while the engine keeps writing (a copy of the live file plus
its WAL would not be). Recordings and voicemail audio are not included (they can be large; copy the
data directory's ``recordings/`` and ``voicemail/`` with rsync).

An uploaded archive is hostile until proven otherwise: size-limited while it is received, then every
member is checked (no absolute paths, no ``..``, no symlinks, no encryption, only the names above),
the total and the compression ratio are bounded from the headers *and* while extracting (headers can
lie), and the database must pass ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ._config_admin import write_atomically

FORMAT = "centralita-backup"
FORMAT_VERSION = 1
DB_NAME = "centralita.db"
CONFIG_NAME = "config/centralita.toml"
DROP_IN_DIR = "config/conf.d/"


@dataclass(frozen=True)
class RestoreLimits:
    #: the upload itself (bytes on the wire)
    upload: int = 1024 * 1024 * 1024
    #: sum of the members' sizes once extracted
    total: int = 4 * 1024 * 1024 * 1024
    #: extracted size / compressed size of any member (a zip bomb compresses thousands of times)
    ratio: float = 200.0
    #: number of members
    members: int = 256
    #: size of one configuration file
    config_file: int = 256 * 1024


class BackupRefused(Exception):
    """The archive is not one we will restore; the message says why (shown to the technician)."""


@dataclass
class StagedBackup:
    directory: Path
    manifest: dict[str, Any]
    config_text: str | None = None
    drop_ins: dict[str, str] = field(default_factory=dict)
    db_path: Path | None = None
    schema_versions: dict[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ backup


def snapshot_database(db_path: Path, dest: Path) -> None:
    """A consistent copy of ``db_path`` at ``dest`` through SQLite's online backup API."""
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        target = sqlite3.connect(dest)
        try:
            source.backup(target)  # pages=-1: everything in one step, i.e. one read transaction
            target.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        finally:
            target.close()
    finally:
        source.close()


def schema_versions(db_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_versions'").fetchone():
            return {}
        return {str(c): int(v) for c, v in conn.execute("SELECT component, version FROM schema_versions")}
    finally:
        conn.close()


def write_backup(out: Path, *, config_path: Path | None, db_path: Path, engine_version: str = "") -> dict[str, Any]:
    """Write the archive to ``out`` (through a temp file, renamed when complete); returns the manifest."""
    work = out.with_name(f".{out.name}.partial-{os.getpid()}")
    snapshot = out.with_name(f".{out.name}.db-{os.getpid()}")
    try:
        snapshot_database(db_path, snapshot)
        manifest: dict[str, Any] = {
            "format": FORMAT, "version": FORMAT_VERSION, "created": time.time(), "engine_version": engine_version,
            "config": CONFIG_NAME if config_path else None, "schema_versions": schema_versions(snapshot),
        }
        with zipfile.ZipFile(work, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("MANIFEST.json", json.dumps(manifest, indent=2))
            if config_path is not None:
                archive.write(config_path, CONFIG_NAME)
                drop_dir = config_path.parent / "conf.d"
                if drop_dir.is_dir():
                    for drop in sorted(drop_dir.glob("*.toml")):
                        archive.write(drop, DROP_IN_DIR + drop.name)
            archive.write(snapshot, DB_NAME)
        with open(work, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(work, out)
        return manifest
    finally:
        work.unlink(missing_ok=True)
        snapshot.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------- restore


#: a drop-in's file name: plain characters only (it becomes a file name on this machine)
_DROP_IN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}\.toml$")
#: MANIFEST.json is a few hundred bytes; anything large is not ours
MAX_MANIFEST = 64 * 1024


def _allowed(name: str) -> bool:
    if name in ("MANIFEST.json", DB_NAME, CONFIG_NAME):
        return True
    return name.startswith(DROP_IN_DIR) and bool(_DROP_IN.match(name[len(DROP_IN_DIR):]))


def check_member(info: zipfile.ZipInfo, limits: RestoreLimits) -> None:
    name = info.filename
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BackupRefused(f"refused: {name!r} is an absolute path")
    if any(part in ("..", "") for part in PurePosixPath(name).parts) or ".." in name.split("/"):
        raise BackupRefused(f"refused: {name!r} leaves the archive's directory")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise BackupRefused(f"refused: {name!r} is a symbolic link")
    if info.flag_bits & 0x1:
        raise BackupRefused(f"refused: {name!r} is encrypted")
    if info.is_dir():
        return
    if not _allowed(name):
        raise BackupRefused(f"refused: {name!r} is not part of a Centralita backup")
    if name == "MANIFEST.json" and info.file_size > MAX_MANIFEST:
        raise BackupRefused(f"refused: MANIFEST.json is {info.file_size} bytes (limit {MAX_MANIFEST})")
    if name.startswith("config/") and info.file_size > limits.config_file:
        raise BackupRefused(f"refused: {name!r} is larger than {limits.config_file} bytes")
    if info.file_size > limits.total:
        raise BackupRefused(f"refused: {name!r} would extract to {info.file_size} bytes (limit {limits.total})")
    if info.file_size > 1024 * 1024 and info.file_size > limits.ratio * max(info.compress_size, 1):
        raise BackupRefused(f"refused: {name!r} is compressed {info.file_size / max(info.compress_size, 1):.0f} to 1 "
                            f"(a zip bomb? the limit is {limits.ratio:.0f})")


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: list[int], limits: RestoreLimits) -> None:
    """Copy one member, counting real bytes: the declared size in the header is not trusted."""
    written = 0
    with archive.open(info) as source, open(dest, "xb") as target:
        while chunk := source.read(1024 * 1024):
            written += len(chunk)
            budget[0] -= len(chunk)
            if written > info.file_size or budget[0] < 0:
                raise BackupRefused(f"refused: {info.filename!r} extracts to more than the archive declares or allows")
            if written > 1024 * 1024 and written > limits.ratio * max(info.compress_size, 1):
                raise BackupRefused(f"refused: {info.filename!r} expands beyond the allowed ratio (a zip bomb?)")
            target.write(chunk)


def open_backup(path: Path, staging: Path, limits: RestoreLimits = RestoreLimits()) -> StagedBackup:
    """Check the archive at ``path`` and extract it into the new directory ``staging``."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BackupRefused(f"not a zip archive ({exc})") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.members:
            raise BackupRefused(f"refused: {len(members)} members (a backup has a handful; limit {limits.members})")
        seen: set[str] = set()
        for info in members:
            check_member(info, limits)
            if info.filename in seen:
                raise BackupRefused(f"refused: {info.filename!r} appears twice")
            seen.add(info.filename)
        declared = sum(i.file_size for i in members)
        if declared > limits.total:
            raise BackupRefused(f"refused: the archive would extract to {declared} bytes (limit {limits.total})")
        if "MANIFEST.json" not in seen or DB_NAME not in seen:
            raise BackupRefused("not a Centralita backup: MANIFEST.json and centralita.db are required")
        staging.mkdir(parents=True)
        (staging / "config" / "conf.d").mkdir(parents=True)
        budget = [limits.total]
        for info in members:
            if info.is_dir():
                continue
            try:
                _extract(archive, info, staging / info.filename, budget, limits)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise BackupRefused(f"refused: {info.filename!r} cannot be read ({exc})") from None
    return _stage(staging)


def _stage(staging: Path) -> StagedBackup:
    try:
        manifest = json.loads((staging / "MANIFEST.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupRefused(f"MANIFEST.json is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupRefused("MANIFEST.json does not describe a Centralita backup")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > FORMAT_VERSION:
        raise BackupRefused(f"backup format version {manifest.get('version')!r} is not one this Centralita reads")
    staged = StagedBackup(staging, manifest, db_path=staging / DB_NAME)
    try:
        if (staging / CONFIG_NAME).exists():
            staged.config_text = (staging / CONFIG_NAME).read_text(encoding="utf-8")
        for drop in sorted((staging / "config" / "conf.d").glob("*.toml")):
            staged.drop_ins[drop.name] = drop.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BackupRefused("a configuration file in the backup is not UTF-8 text") from None
    try:
        conn = sqlite3.connect(f"file:{staged.db_path}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()
        finally:
            conn.close()
        staged.schema_versions = schema_versions(staged.db_path)
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"centralita.db is not a usable SQLite database ({exc})") from None
    if not verdict or verdict[0] != "ok":
        raise BackupRefused(f"centralita.db fails its integrity check ({verdict[0] if verdict else 'no answer'})")
    if not staged.schema_versions:
        raise BackupRefused("centralita.db has no Centralita tables")
    return staged


def newer_components(staged: dict[str, int], live: dict[str, int]) -> list[str]:
    """Components whose schema in the backup is newer than this installation's."""
    return sorted(c for c, v in staged.items() if c in live and v > live[c])


def restore_database(source: Path, live_db: Path) -> None:
    """Copy ``source`` into ``live_db`` with the backup API (safe while the engine has it open)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        live_db.parent.mkdir(parents=True, exist_ok=True)
        dest = sqlite3.connect(live_db, timeout=30)
        try:
            src.backup(dest)
            # sessions from the other installation must not come back to life here
            if dest.execute("SELECT 1 FROM sqlite_master WHERE name = 'console_sessions'").fetchone():
                dest.execute("DELETE FROM console_sessions")
                dest.commit()
        finally:
            dest.close()
    finally:
        src.close()


def install_config(config_path: Path, text: str, drop_ins: dict[str, str]) -> list[str]:
    """Write the main file and the drop-ins atomically; drop-ins not in the backup are set aside
    (renamed ``*.toml.before-restore``) so the merged result is exactly the backup's. Returns notes."""
    notes: list[str] = []
    config_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(config_path, text)
    drop_dir = config_path.parent / "conf.d"
    if drop_ins or drop_dir.is_dir():
        drop_dir.mkdir(exist_ok=True)
        for existing in sorted(drop_dir.glob("*.toml")):
            if existing.name not in drop_ins:
                existing.rename(existing.with_name(existing.name + ".before-restore"))
                notes.append(f"{existing} was not in the backup: renamed to {existing.name}.before-restore")
        for name, content in drop_ins.items():
            write_atomically(drop_dir / name, content)
    return notes


# --------------------------------------------------------------------------------------------- CLI


def _data_dir_of(config_path: Path | None, config_text: str | None, override: Path | None) -> Path:
    """Where the database lives: ``--data-dir``, else ``[engine] data_dir`` relative to the file."""
    import tomllib

    if override is not None:
        return override.resolve()
    data_dir = "var"
    if config_text is not None:
        try:
            engine = tomllib.loads(config_text).get("engine", {})
            if isinstance(engine, dict) and isinstance(engine.get("data_dir"), str):
                data_dir = engine["data_dir"]
        except tomllib.TOMLDecodeError:
            pass
    base = config_path.parent if config_path is not None else Path.cwd()
    return (base / data_dir).resolve()


def cli_backup(out: Path, *, config_path: Path | None, data_dir: Path, engine_version: str) -> str:
    db_path = data_dir / DB_NAME
    if not db_path.exists():
        raise BackupRefused(f"no database at {db_path}; give --config or --data-dir of the installation to back up")
    manifest = write_backup(out, config_path=config_path, db_path=db_path, engine_version=engine_version)
    return f"{out}: configuration {'and' if manifest['config'] else '(embedded default, not included) and'} database backed up"


def cli_restore(archive: Path, *, config_path: Path | None, data_dir: Path | None, load: Any) -> list[str]:
    """Restore on this machine; ``load(path, data_dir)`` validates a configuration (raises ConfigError).

    Returns the lines to print. The engine should be stopped (a running one keeps its in-memory state;
    restore through the console instead, which reloads what it can).
    """
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="centralita-restore-"))
    try:
        staged = open_backup(archive, scratch / "staged")
        assert staged.db_path is not None
        if staged.config_text is not None and config_path is None:
            raise BackupRefused("the backup holds a configuration: say where it goes with --config FILE")
        target_dir = _data_dir_of(config_path, staged.config_text, data_dir)
        live_db = target_dir / DB_NAME
        if live_db.exists():
            newer = newer_components(staged.schema_versions, schema_versions(live_db))
            if newer:
                raise BackupRefused(f"the backup was made by a newer Centralita (schema of {', '.join(newer)})")
        if staged.config_text is not None:
            load(staged.directory / "config" / "centralita.toml", target_dir)
        restore_database(staged.db_path, live_db)
        lines = [f"database restored into {live_db}"]
        if staged.config_text is not None and config_path is not None:
            lines += install_config(config_path, staged.config_text, staged.drop_ins)
            lines.append(f"configuration restored into {config_path}")
        lines.append("start (or restart) the engine to use it")
        return lines
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
