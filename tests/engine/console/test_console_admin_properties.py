"""Properties of the technician side's parsers of hostile input: whatever the bytes, a backup archive
is staged or refused with :class:`BackupRefused` (never another exception, never a file outside the
staging directory); a Range header gives a range inside the file or 416; a multipart body gives the
part or 400; a loader problem line always parses."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.console._backup import BackupRefused, RestoreLimits, open_backup
from engine.console._config_admin import parse_problem
from engine.console._http import HttpError, Request
from engine.console._transfer import extract_multipart_file, file_response

SMALL = RestoreLimits(upload=1 << 20, total=1 << 20, ratio=50.0, members=16, config_file=4096)
MEMBER_NAMES = st.one_of(
    st.sampled_from(["MANIFEST.json", "centralita.db", "config/centralita.toml", "config/conf.d/a.toml",
                     "../x", "/abs", "config/conf.d/../../x.toml", "C:\\x", "config/", "a/../../b", "config/conf.d/.h.toml"]),
    st.text(min_size=1, max_size=40),
)


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _check_contained(work: Path, archive: Path) -> None:
    for path in _files_under(work):
        assert path == archive or path.resolve().is_relative_to((work / "staged").resolve()), path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_any_bytes_are_staged_or_refused(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        archive = work / "upload.zip"
        archive.write_bytes(data)
        try:
            open_backup(archive, work / "staged", SMALL)
        except BackupRefused:
            pass
        _check_contained(work, archive)


@pytest.mark.filterwarnings("ignore:Duplicate name")  # duplicate members are one of the hostile cases
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(MEMBER_NAMES, st.binary(max_size=300)), max_size=6),
       st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
def test_any_zip_is_staged_or_refused_and_writes_only_inside_staging(members, compression) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as z:
        for name, data in members:
            try:
                z.writestr(name, data)
            except (ValueError, UnicodeEncodeError, IndexError):
                continue  # names zipfile itself will not write (a lone NUL becomes "" and zipfile trips on it)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        archive = work / "upload.zip"
        archive.write_bytes(buffer.getvalue())
        try:
            staged = open_backup(archive, work / "staged", SMALL)
        except BackupRefused:
            staged = None
        _check_contained(work, archive)
        if staged is not None:  # only a real backup gets through: a manifest and an intact database
            assert staged.manifest.get("format") == "centralita-backup" and staged.schema_versions


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.integers(min_value=0, max_value=5000))
def test_any_range_header_is_inside_the_file_or_416(header: str, size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.wav"
        path.write_bytes(b"\x01" * size)
        request = Request({"headers": [(b"range", header.encode("latin-1", "replace"))]}, None)  # type: ignore[arg-type]
        try:
            response = file_response(request, path, "audio/wav")
        except HttpError as exc:
            assert exc.status == 416
            return
        assert 0 <= response.offset and response.length >= 0 and response.offset + response.length <= size
        assert response.status in (200, 206)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1024), st.booleans())
def test_any_multipart_body_gives_the_part_or_400(body: bytes, wrap: bool) -> None:
    boundary = b"XyZ"
    content = body
    if wrap:  # a well-formed envelope around arbitrary content
        body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"a.zip\"\r\n\r\n" + body
                + b"\r\n--XyZ--\r\n")
    with tempfile.TemporaryDirectory() as tmp:
        raw, dest = Path(tmp) / "raw", Path(tmp) / "out"
        raw.write_bytes(body)
        try:
            extract_multipart_file(raw, boundary, dest, "archive")
        except HttpError as exc:
            assert exc.status == 400 and not dest.exists()
            return
        assert dest.exists()
        if wrap and b"\r\n--XyZ" not in content:
            assert dest.read_bytes() == content


@given(st.text(max_size=200))
def test_any_loader_line_parses(line: str) -> None:
    problem = parse_problem(line, "/tmp/.c.toml.candidate-1", "/etc/c.toml")
    assert isinstance(problem["line"], int) and problem["line"] >= 0 and isinstance(problem["message"], str)
