"""The built-in CRM's CSV import and export reached the way users reach them: ``centralita crm
import/export`` on the command line, and ``/crm/import`` / ``/crm/export`` in the console for admins."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

import plugins.crm_sqlite.plugin as crm_plugin
from engine.console import add_token
from engine.testing import open_test_engine

CONFIG = """
[crm]
priority_tags = { vip = 10 }

[[agents]]
id = "alice"

[[queues]]
name = "support"
members = ["alice"]
"""

CSV = """name,phones,emails,tags,plan
Ana VIP,+34 911 000 001,ana@example.com,vip,gold
Ben,0034600000002,,,"=HYPERLINK(""http://evil.example"",""x"")"
,+34600000003,,,
Bad Phone,12;ATDT555,,,
"""


def centralita(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "engine", *args], input=stdin, capture_output=True, timeout=120,
                          check=False)


def contacts(text: str) -> dict[str, dict[str, str]]:
    return {row["name"]: row for row in csv.DictReader(io.StringIO(text))}


def test_cli_imports_reports_bad_rows_by_line_and_exports_neutralised(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    config = tmp_path / "centralita.toml"
    config.write_text('[engine]\ndata_dir = "var"\n' + CONFIG)
    source = tmp_path / "contacts.csv"
    source.write_bytes(b"\xef\xbb\xbf" + CSV.encode())  # as a spreadsheet saves it, with a byte-order mark
    done = centralita("crm", "import", str(source), "--config", str(config))
    assert done.returncode == 1, done.stderr  # some rows were rejected
    assert b"imported 2 contact(s), rejected 2" in done.stdout
    assert b"line 4: empty name" in done.stderr and b"line 5:" in done.stderr
    out = tmp_path / "out.csv"
    done = centralita("crm", "export", str(out), "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    exported = contacts(out.read_text())
    assert set(exported) == {"Ana VIP", "Ben"}
    assert exported["Ana VIP"]["phones"] == "+34911000001" and exported["Ana VIP"]["tags"] == "vip"
    assert exported["Ben"]["plan"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"  # text, never a formula
    # the exported file imports into another installation (a round trip), from standard input
    other = tmp_path / "other"
    other.mkdir()
    again = centralita("crm", "import", "-", "--data-dir", str(other), "--json", stdin=out.read_bytes())
    assert again.returncode == 0 and b'"imported": 2' in again.stdout, again.stdout
    assert contacts(centralita("crm", "export", "-", "--data-dir", str(other)).stdout.decode()) == exported
    # importing the same people twice is refused per row, naming the contact that has the number
    twice = centralita("crm", "import", str(out), "--data-dir", str(other))
    assert twice.returncode == 1 and b"line 2: Ana VIP: +34911000001 already belongs to contact" in twice.stderr


def test_cli_refuses_what_is_not_a_contact_csv(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    cases: list[tuple[bytes, bytes]] = [
        (b"phones,emails\n+34911000001,\n", b"'name' column"),
        (b"name,phones\n\xff\xfe bad,\n", b"not UTF-8"),
        (b"name,phones\nA\x00B,\n", b"NUL"),
        (b'name,phones\n"' + b"x" * 200_000 + b'",\n', b"malformed CSV"),
    ]
    for body, message in cases:
        done = centralita("crm", "import", "-", "--data-dir", str(data), stdin=body)
        assert done.returncode == 2 and message in done.stderr, (body[:40], done.stderr)
    assert centralita("crm", "import", str(tmp_path / "missing.csv"), "--data-dir", str(data)).returncode == 2
    assert centralita("crm", "export", "-", "--data-dir", str(tmp_path / "nowhere")).returncode == 2
    done = centralita("crm", "export", "-", "--data-dir", str(data))
    assert done.returncode == 0 and done.stdout.decode().splitlines() == ["name,phones,emails,tags"]


async def test_admins_import_and_export_through_the_console(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[crm_plugin], data_dir=tmp_path) as engine:
        auth = {"authorization": f"Bearer {await add_token(engine.store, 'ops', 'admin')}"}
        supervisor = {"authorization": f"Bearer {await add_token(engine.store, 'sup', 'supervisor')}"}
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            r = await client.post("/crm/import", content=CSV.encode(), headers={**auth, "content-type": "text/csv"})
            assert r.status_code == 200, r.text
            result: dict[str, Any] = r.json()
            assert (result["imported"], result["rejected"]) == (2, 2)
            assert {p["line"] for p in result["problems"]} >= {4}
            # the running engine knows the new contact at once (routing priority by tag)
            contact = await engine.crm["sqlite"].lookup(phone="+34911000001")
            assert contact is not None and contact.segments == ("vip",)
            r = await client.get("/crm/export", headers=auth)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
            assert 'filename="contacts.csv"' in r.headers["content-disposition"]
            assert contacts(r.text)["Ben"]["plan"].startswith("'=HYPERLINK")
            # refusals: other roles, no session, hostile files, a body too large, unknown paths
            assert (await client.get("/crm/export", headers=supervisor)).status_code == 403
            assert (await client.post("/crm/import", content=CSV.encode(), headers=supervisor)).status_code == 403
            assert (await client.get("/crm/export")).status_code == 401
            r = await client.post("/crm/import", content=b"name\n\xff\n", headers=auth)
            assert r.status_code == 400 and "UTF-8" in r.json()["error"]
            r = await client.post("/crm/import", content=b"who,what\n1,2\n", headers=auth)
            assert r.status_code == 400 and "'name'" in r.json()["error"]
            assert (await client.get("/crm/import", headers=auth)).status_code == 405
            assert (await client.get("/crm/nothing", headers=auth)).status_code == 404
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=60) as client:  # refused mid-upload
            big = b"name\n" + b"x" * (33 * 1024 * 1024)
            assert (await client.post("/crm/import", content=big, headers=auth)).status_code == 413


async def test_a_cookie_session_needs_the_csrf_header_to_import(tmp_path: Path) -> None:
    from engine.console import add_user

    async with open_test_engine(CONFIG, plugins=[crm_plugin], data_dir=tmp_path) as engine:
        one_time = await add_user(engine.store, "tech", "admin")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            r = await client.post("/api/v1/login", json={"user": "tech", "password": one_time})
            r = await client.post("/api/v1/password", json={"current": one_time, "new": "correct horse battery"},
                                  headers={"x-csrf-token": r.json()["csrf"]})
            csrf = r.json()["csrf"]
            assert (await client.post("/crm/import", content=CSV.encode())).status_code == 403
            r = await client.post("/crm/import", content=CSV.encode(), headers={"x-csrf-token": csrf})
            assert r.status_code == 200 and r.json()["imported"] == 2
            assert (await client.get("/crm/export")).status_code == 200
