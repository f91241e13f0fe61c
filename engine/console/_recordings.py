"""Recordings and voicemail for supervisors: search, play in the browser, download.

Recordings are the ``*.wav`` files under ``[media] recordings`` in the data directory (see
docs/media.md). A file is tied to its call by name: the stem is the interaction id (the CDR's
``uniqueid``), optionally after a ``<unix time>-`` prefix as voicemail files have; that is how a
search by queue, agent or caller finds it (through the CDR). Files whose call has no CDR yet (still
in progress) are listed only when no queue/agent/caller filter is given, dated by the file's time.

Search values go to SQLite as bound parameters and are matched with ``instr`` (no ``LIKE``
wildcards), so quotes, ``%`` and ``_`` are just characters. Audio is sent in chunks with HTTP ranges
(``<audio>`` seeks with them), only from inside the recordings directory.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

import trio

from ._html import Markup, esc, join, page, table, tag
from ._http import HttpError, Request, Response, Router, json_response
from ._pages_common import clock
from ._transfer import file_response

#: Bounds on a listing: files looked at, and rows shown.
MAX_FILES = 20_000
MAX_ROWS = 500
_STEM = re.compile(r"^(?:\d{9,11}-)?(?P<id>[A-Za-z0-9._:-]{1,100})$")


def parse_day(value: str, *, end: bool = False) -> float | None:
    """``2026-11-25`` (UTC; ``end`` = the end of that day) or a Unix time; None when empty; 400 otherwise."""
    value = value.strip()
    if not value:
        return None
    if re.fullmatch(r"\d{1,12}(\.\d+)?", value):
        return float(value)
    try:
        day = _dt.datetime.strptime(value[:10], "%Y-%m-%d").replace(tzinfo=_dt.UTC)
    except ValueError:
        raise HttpError(400, f"dates are YYYY-MM-DD or a Unix time, got {value[:40]!r}") from None
    return (day + _dt.timedelta(days=1)).timestamp() if end else day.timestamp()


def _filters(query: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "since": parse_day(query.get("since", "")),
        "until": parse_day(query.get("until", ""), end=True),
    }
    for key in ("queue", "agent", "caller", "box"):
        value = query.get(key, "").strip()
        if len(value) > 100:
            raise HttpError(400, f"{key} is longer than 100 characters")
        out[key] = value
    return out


def scan_recordings(directory: Path) -> list[tuple[Path, str, float, int]]:
    """(path, interaction id, mtime, size) of every WAV under ``directory`` (bounded, no symlinks)."""
    found: list[tuple[Path, str, float, int]] = []
    if not directory.is_dir():
        return found
    for root, dirs, files in os.walk(directory):  # os.walk does not follow directory symlinks
        dirs[:] = [d for d in dirs if not d.startswith(".")][:200]
        for name in files:
            if not name.lower().endswith(".wav"):
                continue
            path = Path(root) / name
            try:
                info = path.lstat()
            except OSError:
                continue
            if not path.is_symlink():
                stem = _STEM.match(path.stem)
                found.append((path, stem["id"] if stem else path.stem, info.st_mtime, info.st_size))
            if len(found) >= MAX_FILES:
                return found
    return found


class RecordingsPages:
    def __init__(self, engine: Any, store: Any) -> None:
        self.engine = engine
        self.store = store

    def mount(self, router: Router) -> None:
        add = router.add
        add("GET", "/api/v1/recordings", self.api_list, role="supervisor")
        add("GET", "/api/v1/recordings/audio", self.api_audio, role="supervisor")
        add("GET", "/recordings", self.recordings_page, role="supervisor", page=True)
        add("GET", "/voicemail", self.voicemail_page, role="supervisor", page=True)

    # ------------------------------------------------------------------------------ recordings

    @property
    def directory(self) -> Path:
        directory = getattr(self.engine, "recordings_dir", None)
        if directory is None:
            raise HttpError(409, "this console is not attached to an engine that records")
        return Path(directory)

    async def search(self, query: dict[str, str]) -> list[dict[str, Any]]:
        filters = _filters(query)
        directory = self.directory
        files = await trio.to_thread.run_sync(scan_recordings, directory)
        conditions: list[str] = []
        params: list[Any] = []
        if filters["since"] is not None:
            conditions.append("start >= ?")
            params.append(filters["since"])
        if filters["until"] is not None:
            conditions.append("start < ?")
            params.append(filters["until"])
        if filters["queue"]:
            conditions.append("dcontext = ?")
            params.append(filters["queue"])
        if filters["agent"]:
            conditions.append("dstchannel = ?")
            params.append(filters["agent"])
        if filters["caller"]:
            conditions.append("(instr(src, ?) > 0 OR instr(clid, ?) > 0)")
            params += [filters["caller"], filters["caller"]]
        # every call of a listed file, with whether it matches: a file whose call does not match is
        # left out, and only a file with no call at all is dated by the file itself
        sql = ("SELECT uniqueid, src, clid, dcontext AS queue, dstchannel AS agent, start, billsec, disposition, "
               f"CASE WHEN {' AND '.join(conditions) or '1'} THEN 1 ELSE 0 END AS matches FROM cdr WHERE uniqueid IN ")
        ids = [f[1] for f in files]
        calls: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):  # bounded IN lists
            chunk = ids[start:start + 500]
            rows = await self.store.fetchall(sql + f"({','.join('?' * len(chunk))})", (*params, *chunk))
            calls.update({str(r["uniqueid"]): r for r in rows})
        only_calls = bool(filters["queue"] or filters["agent"] or filters["caller"])
        out = []
        for path, interaction, mtime, size in files:
            call = calls.get(interaction)
            if call is not None and not call["matches"]:
                continue
            if call is None:
                if only_calls:
                    continue
                if (filters["since"] is not None and mtime < filters["since"]) or (filters["until"] is not None and mtime >= filters["until"]):
                    continue
            out.append({
                "file": path.relative_to(directory).as_posix(), "interaction": interaction, "size": size,
                "time": call["start"] if call else mtime, "caller": call["src"] if call else "",
                "queue": call["queue"] if call else "", "agent": call["agent"] if call else "",
                "seconds": call["billsec"] if call else None, "disposition": call["disposition"] if call else "",
            })  # fmt: skip
        out.sort(key=lambda r: r["time"] or 0, reverse=True)
        return out[:MAX_ROWS]

    async def api_list(self, request: Request) -> Response:
        return json_response(await self.search(request.query))

    def _resolve(self, relative: str) -> Path:
        if not relative or len(relative) > 512 or "\x00" in relative or relative.startswith("/") or "\\" in relative:
            raise HttpError(404, "no such recording")
        root = self.directory.resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or path.suffix.lower() != ".wav" or not path.is_file():
            raise HttpError(404, "no such recording")
        return path

    async def api_audio(self, request: Request) -> Response:
        path = await trio.to_thread.run_sync(self._resolve, request.query.get("file", ""))
        download = path.name if request.query.get("download") == "1" else None
        return file_response(request, path, "audio/wav", download_name=download)

    async def recordings_page(self, request: Request) -> Response:
        query = request.query
        try:
            rows = await self.search(query)
            message = ""
        except HttpError as exc:
            if exc.status != 400:
                raise
            rows, message = [], exc.message
        table_rows = []
        for row in rows:
            link = "/api/v1/recordings/audio?file=" + urllib.parse.quote(row["file"])
            table_rows.append([
                clock(row["time"]), row["caller"], row["queue"], row["agent"],
                "" if row["seconds"] is None else f"{row['seconds']} s", row["interaction"],
                join([Markup(f'<audio controls preload="none" src="{esc(link)}"></audio>'), " ",
                      tag("a", "Download", href=link + "&download=1", download=Path(row["file"]).name)]),
            ])  # fmt: skip
        body = join([
            _search_form("/recordings", query, [("caller", "Caller"), ("queue", "Queue"), ("agent", "Agent")]),
            tag("p", message, class_="error", role="alert") if message else "",
            tag("p", f"{len(rows)} recording(s)", class_="muted"),
            table(["time (UTC)", "caller", "queue", "agent", "talk", "interaction", "listen"], table_rows, id="recordings"),
        ])  # fmt: skip
        return page("Recordings", body, principal=request.principal, page_id="recordings", status=400 if message else 200)

    # ------------------------------------------------------------------------------- voicemail

    async def voicemail_page(self, request: Request) -> Response:
        query = request.query
        message = ""
        try:
            filters = _filters(query)
            messages = await self.engine.list_voicemail(filters["box"] or None)
        except HttpError as exc:
            if exc.status != 400:
                raise
            filters, messages, message = {}, [], exc.message
        except NotImplementedError:
            messages = []
        rows = []
        for item in messages:
            if filters.get("caller") and filters["caller"] not in f"{item.get('caller', '')} {item.get('caller_name', '')}":
                continue
            created = float(item.get("created") or 0)
            if (filters.get("since") is not None and created < filters["since"]) or (
                    filters.get("until") is not None and created >= filters["until"]):
                continue
            link = f"/api/v1/voicemail/{urllib.parse.quote(str(item.get('id', '')), safe='')}/audio"
            rows.append([
                clock(created), item.get("box"), item.get("caller"), item.get("caller_name"),
                f"{float(item.get('seconds') or 0):.0f} s", "yes" if item.get("heard") else "no",
                join([Markup(f'<audio controls preload="none" src="{esc(link)}"></audio>'), " ",
                      tag("a", "Download", href=link, download=f"{item.get('id')}.wav")]),
            ])  # fmt: skip
            if len(rows) >= MAX_ROWS:
                break
        body = join([
            _search_form("/voicemail", query, [("caller", "Caller"), ("box", "Mailbox")]),
            tag("p", message, class_="error", role="alert") if message else "",
            table(["time (UTC)", "mailbox", "caller", "name", "length", "heard", "listen"], rows, id="voicemail"),
        ])  # fmt: skip
        return page("Voicemail", body, principal=request.principal, page_id="voicemail", status=400 if message else 200)


def _search_form(action: str, query: dict[str, str], fields: list[tuple[str, str]]) -> Markup:
    inputs = "".join(
        f'<label>{esc(label)} <input name="{esc(name)}" value="{esc(query.get(name, ""))}" maxlength="100"></label>'
        for name, label in fields
    )
    return Markup(
        f'<form method="get" action="{esc(action)}" class="inline" id="search">{inputs}'
        f'<label>From <input name="since" type="date" value="{esc(query.get("since", ""))}"></label>'
        f'<label>To <input name="until" type="date" value="{esc(query.get("until", ""))}"></label>'
        '<button type="submit">Search</button></form>'
    )
