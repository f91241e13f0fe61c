"""Backup and restore: a zip of the configuration and a consistent database snapshot, downloaded from
one installation and restored on another (API, the page's multipart form, the CLI), and hostile
archives refused with nothing changed."""

from __future__ import annotations

import io
import json
import sqlite3
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import trio

from engine.console import add_token, add_user
from engine.testing import open_test_engine

OLD_BOX = """
[[agents]]
id = "alice"

[[queues]]
name = "support"
members = ["alice"]
"""

NEW_BOX = """
[[agents]]
id = "zed"

[[queues]]
name = "fresh"
members = ["zed"]
"""


def _client(engine, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=engine.console.url, timeout=60, headers={"authorization": f"Bearer {token}"})


async def _download_backup(tmp_path: Path) -> tuple[bytes, str]:
    """A backup of an installation with a drop-in, a user and CDRs written while the backup runs."""
    (tmp_path / "conf.d").mkdir(parents=True)
    (tmp_path / "conf.d" / "extra.toml").write_text('[[queues]]\nname = "sales"\nmembers = ["alice"]\n')
    async with open_test_engine(OLD_BOX, data_dir=tmp_path) as engine:
        token = await add_token(engine.store, "old-box", "admin")
        await add_user(engine.store, "maria", "supervisor")

        async def keep_writing() -> None:
            for n in range(200):
                await engine.store.write("INSERT INTO kv (component, key, value) VALUES (?, ?, ?)", ("test", f"k{n}", "v"))

        async with _client(engine, token) as client, trio.open_nursery() as nursery:
            nursery.start_soon(keep_writing)
            r = await client.get("/api/v1/backup")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        assert r.headers["content-disposition"].startswith('attachment; filename="centralita-backup-')
        assert not list(tmp_path.glob(".backup-*")), "the temporary files are removed once sent"
        return r.content, token


async def test_backup_downloaded_and_restored_on_another_installation(tmp_path):
    archive, old_token = await _download_backup(tmp_path / "old")
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        assert sorted(z.namelist()) == ["MANIFEST.json", "centralita.db", "config/centralita.toml", "config/conf.d/extra.toml"]
        assert json.loads(z.read("MANIFEST.json"))["format"] == "centralita-backup"
        snapshot = tmp_path / "snapshot.db"
        snapshot.write_bytes(z.read("centralita.db"))
    conn = sqlite3.connect(snapshot)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT role FROM console_users WHERE name = 'maria'").fetchone() == ("supervisor",)
    conn.close()

    new = tmp_path / "new"
    new.mkdir()
    async with open_test_engine(NEW_BOX, data_dir=new) as engine:
        token = await add_token(engine.store, "new-box", "admin")
        async with _client(engine, token) as client:
            r = await client.post("/api/v1/backup/restore", content=archive, headers={"content-type": "application/zip"})
            assert r.status_code == 200, r.text
            outcome = r.json()
            assert outcome["restored"] and outcome["restart_needed"]
        # the old box's configuration is in force (drop-in included) and its API token now works here
        assert {q["name"] for q in engine.list_queues()} == {"support", "sales"}
        assert engine.config.source.read_text() == (tmp_path / "old" / "centralita.toml").read_text()
        assert (new / "conf.d" / "extra.toml").exists()
        async with _client(engine, old_token) as client:
            assert (await client.get("/api/v1/status")).status_code == 200
        async with _client(engine, token) as client:
            assert (await client.get("/api/v1/status")).status_code == 401  # the new box's own token is gone
        rows = await engine.store.fetchall("SELECT name FROM console_users WHERE name = 'maria'")
        assert rows == [{"name": "maria"}]


async def test_the_page_restores_from_a_browser_form_upload(tmp_path):
    archive, _ = await _download_backup(tmp_path / "old")
    new = tmp_path / "new"
    new.mkdir()
    async with open_test_engine(NEW_BOX, data_dir=new) as engine:
        one_time = await add_user(engine.store, "tech", "admin")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=60) as browser:
            r = await browser.post("/api/v1/login", json={"user": "tech", "password": one_time})
            r = await browser.post("/api/v1/password", json={"current": one_time, "new": "a long new password"},
                                   headers={"x-csrf-token": r.json()["csrf"]})
            csrf = r.json()["csrf"]
            page = await browser.get("/backup")
            assert 'enctype="multipart/form-data"' in page.text
            files = {"archive": ("backup.zip", archive, "application/zip")}
            r = await browser.post("/backup/restore", files=files)  # no token: refused
            assert r.status_code == 403
            r = await browser.post(f"/backup/restore?csrf_token={csrf}", files=files)
            assert r.status_code == 200, r.text
            assert 'id="restore-done"' in r.text and "Restart the engine" in r.text
        assert {q["name"] for q in engine.list_queues()} == {"support", "sales"}


def _zip(members: dict[str, bytes], *, symlink: str | None = None, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return buffer.getvalue()


async def test_hostile_archives_are_refused_and_change_nothing(tmp_path):
    archive, _ = await _download_backup(tmp_path / "old")
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        good = {name: z.read(name) for name in z.namelist()}
    broken_config = dict(good)
    broken_config["config/centralita.toml"] = b'[[queues]]\nname = "x"\ntimeout = "soon"\n'
    not_a_db = dict(good)
    not_a_db["centralita.db"] = b"SQLite format 3\x00" + b"\x00" * 200
    cases = {
        "zip-slip": _zip({**good, "../../evil.toml": b"x"}),
        "zip-slip in conf.d": _zip({**good, "config/conf.d/../../../evil.toml": b"x"}),
        "absolute": _zip({**good, "/etc/cron.d/evil": b"x"}),
        "windows absolute": _zip({**good, "C:\\evil.toml": b"x"}),
        "symlink": _zip(good, symlink="config/conf.d/link.toml"),
        "unknown member": _zip({**good, "recordings/a.wav": b"x"}),
        "zip bomb": _zip({**good, "config/conf.d/bomb.toml": b"\x00" * (20 * 1024 * 1024)}),
        "not a zip": b"this is not a zip file at all",
        "empty": b"",
        "no manifest": _zip({k: v for k, v in good.items() if k != "MANIFEST.json"}),
        "wrong manifest": _zip({**good, "MANIFEST.json": b'{"format": "tarball", "version": 1}'}),
        "manifest not json": _zip({**good, "MANIFEST.json": b"\xff\xfe"}),
        "config with errors": _zip(broken_config),
        "corrupt database": _zip(not_a_db),
    }
    new = tmp_path / "new"
    new.mkdir()
    async with open_test_engine(NEW_BOX, data_dir=new) as engine:
        token = await add_token(engine.store, "new-box", "admin")
        config_before = engine.config.source.read_text()
        async with _client(engine, token) as client:
            for label, body in cases.items():
                r = await client.post("/api/v1/backup/restore", content=body, headers={"content-type": "application/zip"})
                assert r.status_code == 400, (label, r.text)
                assert "error" in r.json(), label
            # the installation is untouched: same configuration, the same token still works
            assert (await client.get("/api/v1/status")).status_code == 200
        assert engine.config.source.read_text() == config_before
        assert [q["name"] for q in engine.list_queues()] == ["fresh"]
        assert not (tmp_path / "evil.toml").exists() and not (new.parent / "evil.toml").exists()
        assert not list(new.glob(".restore-*")), "staging directories are removed"
        async with _client(engine, await add_token(engine.store, "sup", "supervisor")) as supervisor:
            r = await supervisor.post("/api/v1/backup/restore", content=archive)
            assert r.status_code == 403
            assert (await supervisor.get("/api/v1/backup")).status_code == 403


async def test_oversize_upload_is_refused_while_it_arrives(tmp_path, monkeypatch):
    import engine.console._pages_admin as admin_pages
    from engine.console._backup import RestoreLimits

    monkeypatch.setattr(admin_pages, "RestoreLimits", lambda: RestoreLimits(upload=64 * 1024))
    async with open_test_engine(NEW_BOX, data_dir=tmp_path) as engine:
        token = await add_token(engine.store, "t", "admin")
        async with _client(engine, token) as client:
            r = await client.post("/api/v1/backup/restore", content=b"\x00" * (200 * 1024))
            assert r.status_code == 413

            async def chunks():  # no Content-Length: counted as it arrives
                for _ in range(50):
                    yield b"\x00" * 8192

            r = await client.post("/api/v1/backup/restore", content=chunks())
            assert r.status_code == 413
        assert not list(tmp_path.glob(".restore-*"))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_cli_backup_and_restore_round_trip(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "centralita.toml").write_text('[engine]\ndata_dir = "data"\n' + OLD_BOX)
    made = _cli("user", "add", "maria", "--role", "supervisor", "--config", str(old / "centralita.toml"), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    backup = tmp_path / "b.zip"
    done = _cli("backup", str(backup), "--config", str(old / "centralita.toml"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    new = tmp_path / "new"
    new.mkdir()
    restored = _cli("restore", str(backup), "--config", str(new / "centralita.toml"), cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert (new / "centralita.toml").read_text() == (old / "centralita.toml").read_text()
    conn = sqlite3.connect(new / "data" / "centralita.db")
    assert conn.execute("SELECT role FROM console_users WHERE name = 'maria'").fetchone() == ("supervisor",)
    conn.close()
    checked = _cli("check-config", str(new / "centralita.toml"), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    # a hostile archive: exit 2, a reason, nothing written
    evil = tmp_path / "evil.zip"
    evil.write_bytes(_zip({"MANIFEST.json": b"{}", "centralita.db": b"", "../x.toml": b"x"}))
    refused = _cli("restore", str(evil), "--config", str(tmp_path / "other" / "c.toml"), cwd=tmp_path)
    assert refused.returncode == 2 and "leaves the archive" in refused.stderr
    assert not (tmp_path / "other").exists() and not (tmp_path / "x.toml").exists()
