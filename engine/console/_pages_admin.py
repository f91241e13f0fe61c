"""Technician pages and API: the configuration editor (check, diff, apply, history, roll back) and
backup / restore. Admin role only; state changes need the CSRF token with a session cookie.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import trio

from .. import __version__
from .._errors import ConfigError
from ._backup import (
    BackupRefused,
    RestoreLimits,
    StagedBackup,
    install_config,
    newer_components,
    open_backup,
    restore_database,
    schema_versions,
    write_backup,
)
from ._config_admin import MAX_CONFIG_BYTES, CheckResult, ConfigAdmin, ConfigUnavailable, sha256
from ._html import Markup, csrf_field, esc, join, page, post_button, table, tag
from ._http import HttpError, Request, Response, Router, json_response, redirect
from ._pages_common import clock
from ._transfer import extract_multipart_file, file_response, multipart_boundary, receive_to_file

log = logging.getLogger("centralita.console.admin")


class AdminPages:
    def __init__(self, engine: Any, store: Any, *, restore_limits: RestoreLimits | None = None) -> None:
        self.engine = engine
        self.store = store
        self.config = ConfigAdmin(engine)
        self.restore_limits = restore_limits or RestoreLimits()
        self._restore_lock = trio.Lock()
        #: one snapshot at a time: each takes a core for a while
        self._backup_limiter = trio.CapacityLimiter(1)

    def mount(self, router: Router) -> None:
        add = router.add
        add("GET", "/api/v1/config", self.api_config, role="admin")
        add("POST", "/api/v1/config/check", self.api_check, role="admin")
        add("PUT", "/api/v1/config", self.api_apply, role="admin")
        add("GET", "/api/v1/config/versions", self.api_versions, role="admin")
        add("GET", "/api/v1/config/versions/{version}", self.api_version, role="admin")
        add("POST", "/api/v1/config/versions/{version}/rollback", self.api_rollback, role="admin")
        add("GET", "/api/v1/backup", self.api_backup, role="admin")
        # CSRF checked by the handler: a multipart upload carries its token in the query string
        add("POST", "/api/v1/backup/restore", self.api_restore, role="admin", csrf=False)
        add("GET", "/config", self.config_page, role="admin", page=True)
        add("POST", "/config", self.config_post, role="admin", page=True)
        add("GET", "/config/versions/{version}", self.version_page, role="admin", page=True)
        add("POST", "/config/versions/{version}/rollback", self.rollback_post, role="admin", page=True)
        add("GET", "/backup", self.backup_page, role="admin", page=True)
        add("POST", "/backup/restore", self.restore_post, role="admin", page=True, csrf=False)

    # =============================================================================== configuration

    def _admin(self) -> ConfigAdmin:
        try:
            self.config.path  # noqa: B018 - raises when there is no file to edit
        except ConfigUnavailable as exc:
            raise HttpError(409, str(exc)) from None
        return self.config

    async def _text_from_json(self, request: Request) -> dict[str, Any]:
        await request.body(MAX_CONFIG_BYTES + 4096)  # cached: request.json() below reads it again
        body = await request.json()
        if not isinstance(body.get("text"), str):
            raise HttpError(400, "text must be a string (the whole TOML file)")
        base = body.get("base_sha256")
        if base is not None and not isinstance(base, str):
            raise HttpError(400, "base_sha256 must be a string")
        return body

    async def _run(self, coro: Any) -> Any:
        try:
            return await coro
        except TypeError as exc:
            raise HttpError(400, str(exc)) from None
        except OverflowError as exc:
            raise HttpError(413, str(exc)) from None
        except OSError as exc:  # e.g. the engine's user may not write in the configuration's directory
            raise HttpError(409, f"cannot write the configuration: {exc.strerror or exc} ({exc.filename or ''})") from None

    async def api_config(self, request: Request) -> Response:
        admin = self._admin()
        return json_response(await trio.to_thread.run_sync(admin.describe))

    async def api_check(self, request: Request) -> Response:
        body = await self._text_from_json(request)
        result: CheckResult = await self._run(self._admin().check(body["text"]))
        return json_response(result.to_json(), 200 if result.ok else 422)

    async def api_apply(self, request: Request) -> Response:
        body = await self._text_from_json(request)
        result, meta = await self._run(self._admin().apply(body["text"], user=request.principal.name,
                                                           base_sha256=body.get("base_sha256")))
        return self._applied_json(result, meta)

    def _applied_json(self, result: CheckResult, meta: dict[str, Any] | None) -> Response:
        if meta is None:
            return json_response({"error": "the configuration has errors; nothing was changed", **result.to_json()}, 422)
        log.info("configuration version %s applied by %s", meta["version"], meta["user"])
        return json_response({"applied": True, "version": meta, **result.to_json()})

    async def api_versions(self, request: Request) -> Response:
        return json_response(await trio.to_thread.run_sync(self._admin().history.list))

    def _version_number(self, request: Request) -> int:
        raw = request.path_params["version"]
        if not raw.isdigit() or len(raw) > 9:
            raise HttpError(404, "no such configuration version")
        return int(raw)

    async def api_version(self, request: Request) -> Response:
        meta, text = await trio.to_thread.run_sync(self._admin().history.read, self._version_number(request))
        return json_response({**meta, "text": text})

    async def api_rollback(self, request: Request) -> Response:
        result, meta = await self._run(self._admin().rollback(self._version_number(request), user=request.principal.name))
        return self._applied_json(result, meta)

    # ------------------------------------------------------------------------------- the page

    async def config_page(self, request: Request, *, text: str | None = None, base: str | None = None,
                          result: CheckResult | None = None, message: str = "", status: int = 200) -> Response:
        principal = request.principal
        try:
            info = await trio.to_thread.run_sync(self.config.describe)
        except ConfigUnavailable as exc:
            return page("Configuration", tag("p", str(exc), class_="notice", id="config-unavailable"),
                        principal=principal, page_id="config")
        applied = request.query.get("applied", "")
        shown = info["text"] if text is None else text
        parts: list[Any] = [
            tag("p", "Applied version ", tag("strong", applied), ". Queues, agents and routes changed at once; "
                "calls in progress went on.", class_="notice", id="config-applied") if applied.isdigit() else "",
            tag("p", message, class_="error", role="alert") if message else "",
            tag("p", "Editing ", tag("code", info["path"]), ". Drop-ins in conf.d are read with it but not edited here: ",
                tag("code", ", ".join(Path(p).name for p in info["conf_d"]) or "none"), ".", class_="muted"),
        ]
        if result is not None:
            parts.append(_check_report(result, shown, info["path"]))
        parts.append(Markup(
            f'<form method="post" action="/config" class="card config-editor">{csrf_field(principal.csrf)}'
            f'<input type="hidden" name="base" value="{esc(base or info["sha256"])}">'
            f'<textarea name="text" id="config-text" rows="30" spellcheck="false" wrap="off">{esc(shown)}</textarea>'
            '<div><button type="submit" name="action" value="check">Check and show changes</button> '
            '<button type="submit" name="action" value="apply">Save and apply</button></div></form>'
        ))
        parts.append(tag("h2", "Earlier versions"))
        parts.append(table(["version", "saved (UTC)", "by", "note", "size", ""],
                           ([v["version"], clock(v["created"]), v["user"], v["note"], v["size"],
                             join([tag("a", "View", href=f"/config/versions/{v['version']}"), " ",
                                   post_button(f"/config/versions/{v['version']}/rollback", "Roll back to this",
                                               principal.csrf)])]
                            for v in info["versions"]), id="config-versions"))
        return page("Configuration", join(parts), principal=principal, page_id="config", status=status)

    async def config_post(self, request: Request) -> Response:
        form = await request.form()
        text, action, base = form.get("text", ""), form.get("action", "check"), form.get("base") or None
        text = text.replace("\r\n", "\n")  # browsers send textarea lines with CRLF
        try:
            admin = self._admin()
            if action == "apply":
                result, meta = await self._run(admin.apply(text, user=request.principal.name, base_sha256=base))
                if meta is not None:
                    return redirect(f"/config?applied={meta['version']}")
                return await self.config_page(request, text=text, base=base, result=result, status=422,
                                              message="Not saved: the configuration has errors (marked below).")
            result = await self._run(admin.check(text))
        except ValueError as exc:  # the file changed under the editor
            return await self.config_page(request, text=text, base=base, message=str(exc), status=409)
        return await self.config_page(request, text=text, base=base, result=result, status=200 if result.ok else 422)

    async def version_page(self, request: Request) -> Response:
        admin = self._admin()
        meta, text = await trio.to_thread.run_sync(admin.history.read, self._version_number(request))
        from ._config_admin import unified_diff

        current = await trio.to_thread.run_sync(admin.current_text)
        body = join([
            tag("p", f"Saved {clock(meta['created'])} UTC by {meta['user']}: {meta['note']}"),
            post_button(f"/config/versions/{meta['version']}/rollback", "Roll back to this version", request.principal.csrf),
            tag("h2", "What rolling back would change"),
            tag("pre", unified_diff(current, text, admin.path.name) or "(identical to the running file)", class_="diff",
                id="config-diff"),
            tag("h2", "The text"),
            tag("pre", text, id="version-text"),
        ])  # fmt: skip
        return page(f"Configuration version {meta['version']}", body, principal=request.principal, page_id="config-version")

    async def rollback_post(self, request: Request) -> Response:
        result, meta = await self._run(self._admin().rollback(self._version_number(request), user=request.principal.name))
        if meta is None:
            _, text = await trio.to_thread.run_sync(self.config.history.read, self._version_number(request))
            return await self.config_page(request, text=text, result=result, status=422,
                                          message="That version no longer passes the checks (marked below); nothing was changed.")
        return redirect(f"/config?applied={meta['version']}")

    # ================================================================================== backup

    def _config_path(self) -> Path | None:
        config = getattr(self.engine, "config", None)
        return Path(config.source) if config is not None and config.source is not None else None

    async def api_backup(self, request: Request) -> Response:
        db_path = Path(self.store.path)
        out = Path(tempfile.mkdtemp(prefix=".backup-", dir=db_path.parent)) / "backup.zip"
        try:
            await trio.to_thread.run_sync(
                lambda: write_backup(out, config_path=self._config_path(), db_path=db_path, engine_version=__version__),
                limiter=self._backup_limiter)
        except BaseException:
            shutil.rmtree(out.parent, ignore_errors=True)
            raise
        name = time.strftime("centralita-backup-%Y%m%d-%H%M%S.zip", time.gmtime())
        response = file_response(request, out, "application/zip", download_name=name, cleanup=out.parent)
        log.info("backup downloaded by %s (%d bytes)", request.principal.name, response.length)
        return response

    def _check_upload_csrf(self, request: Request) -> None:
        principal = request.principal
        if principal.via != "cookie":
            return
        supplied = request.header("x-csrf-token") or request.query.get("csrf_token", "")
        if not supplied or not secrets.compare_digest(supplied.encode(), principal.csrf.encode()):
            raise HttpError(403, "missing or wrong CSRF token (send the X-CSRF-Token header)")

    async def _restore(self, request: Request) -> dict[str, Any]:
        self._check_upload_csrf(request)
        db_path = Path(self.store.path)
        work = Path(tempfile.mkdtemp(prefix=".restore-", dir=db_path.parent))
        try:
            raw = work / "upload"
            await receive_to_file(request, raw, self.restore_limits.upload)
            content_type = request.header("content-type") or ""
            archive = raw
            if content_type.startswith("multipart/form-data"):
                boundary = multipart_boundary(content_type)
                if boundary is None:
                    raise HttpError(400, "multipart upload without a boundary")
                archive = work / "archive.zip"
                await trio.to_thread.run_sync(extract_multipart_file, raw, boundary, archive, "archive")
            try:
                staged = await trio.to_thread.run_sync(open_backup, archive, work / "staged", self.restore_limits)
            except BackupRefused as exc:
                raise HttpError(400, str(exc)) from None
            async with self._restore_lock:
                return await self._apply_backup(staged, request.principal.name)
        finally:
            await trio.to_thread.run_sync(lambda: shutil.rmtree(work, ignore_errors=True))

    async def _apply_backup(self, staged: StagedBackup, user: str) -> dict[str, Any]:
        assert staged.db_path is not None
        db_path = Path(self.store.path)
        live_versions = await trio.to_thread.run_sync(schema_versions, db_path)
        newer = newer_components(staged.schema_versions, live_versions)
        if newer:
            raise HttpError(400, f"the backup was made by a newer Centralita (schema of {', '.join(newer)}); "
                                 "upgrade this installation first")
        new_config = None
        config_path = self._config_path()
        restart: list[str] = []
        notes: list[str] = []
        if staged.config_text is not None:
            staged_path = staged.directory / "config" / "centralita.toml"
            try:
                if config_path is not None:
                    new_config = await trio.to_thread.run_sync(self.config.load_as, staged_path, config_path)
                elif hasattr(self.engine, "plugins"):  # checked all the same, though only a restart applies it
                    await trio.to_thread.run_sync(self.config._load, staged_path)
            except ConfigError as exc:  # the backup's configuration does not load here
                lines = [p.replace(str(staged.directory) + "/", "backup:") for p in exc.problems]
                raise HttpError(400, "the backup's configuration does not pass the checks here: " + "; ".join(lines[:20])) from None
        target = config_path or db_path.parent / "centralita.toml"
        if staged.config_text is not None and not os.access(target.parent, os.W_OK):
            # refuse before the database is touched, so a restore is never half done
            raise HttpError(409, f"cannot write the configuration into {target.parent}; fix its permissions first")
        await trio.to_thread.run_sync(restore_database, staged.db_path, db_path)
        if staged.config_text is not None:
            if config_path is not None and target.exists():
                current = await trio.to_thread.run_sync(target.read_text)
                history = self.config.history
                await trio.to_thread.run_sync(lambda: history.add(current, user=user, note="before restoring a backup"))
                await trio.to_thread.run_sync(lambda: history.add(staged.config_text, user=user, note="restored from a backup"))
            notes += await trio.to_thread.run_sync(install_config, target, staged.config_text, staged.drop_ins)
            if new_config is not None:
                restart += [f"[{s}] changed" for s in _restart_sections(self.engine, new_config)]
                self.engine.reload(new_config)
            else:
                restart.append(f"the configuration was written to {target}; start the engine with --config {target}")
        if staged.schema_versions != live_versions:
            restart.append("the backup's database schema differs from this installation's; the next start migrates it")
        restart.append("data the engine loads at start (dialer campaigns, callbacks, IVR flows, plugin state) "
                       "is read from the restored database at the next start")
        log.warning("backup restored by %s (made %s)", user, staged.manifest.get("created"))
        return {"restored": True, "manifest": staged.manifest, "restart_needed": restart, "notes": notes,
                "logged_out": "every console session was ended; log in with an account from the backup"}

    async def api_restore(self, request: Request) -> Response:
        return json_response(await self._restore(request))

    async def backup_page(self, request: Request, *, outcome: dict[str, Any] | None = None, message: str = "",
                          status: int = 200) -> Response:
        principal = request.principal
        action = "/backup/restore?csrf_token=" + urllib.parse.quote(principal.csrf)
        body = join([
            tag("p", message, class_="error", role="alert", id="restore-error") if message else "",
            tag("section", tag("h2", "Back up"),
                tag("p", "One zip file: the configuration (with its conf.d drop-ins) and a consistent snapshot of the "
                         "database (users, CDRs, queue log, campaigns). Recordings and voicemail audio are not in it."),
                tag("a", "Download a backup", href="/api/v1/backup", id="backup-download", class_="button", download=True)),
            tag("section", tag("h2", "Restore"),
                tag("p", "Replaces the database and the configuration with the backup's. Every console session ends "
                         "(log in again with an account from the backup), and the engine must be restarted to "
                         "finish (the page says what). Archives over "
                         f"{self.restore_limits.upload // (1024 * 1024)} MiB are refused."),
                Markup(f'<form method="post" action="{esc(action)}" enctype="multipart/form-data" class="card" id="restore-form">'
                       '<label>Backup file <input type="file" name="archive" accept=".zip,application/zip" required></label>'
                       '<button type="submit">Restore this backup</button></form>')),
        ])  # fmt: skip
        return page("Backup and restore", body, principal=principal, page_id="backup", status=status)

    async def restore_post(self, request: Request) -> Response:
        try:
            outcome = await self._restore(request)
        except HttpError as exc:
            if exc.status == 403:
                raise
            return await self.backup_page(request, message=f"Not restored: {exc.message}", status=exc.status)
        body = join([
            tag("p", "The backup was restored.", class_="notice", id="restore-done"),
            tag("h2", "Restart the engine to finish"),
            tag("ul", *(tag("li", r) for r in outcome["restart_needed"]), id="restart-needed"),
            tag("ul", *(tag("li", n) for n in outcome["notes"])) if outcome["notes"] else "",
            tag("p", outcome["logged_out"]),
            tag("a", "Log in", href="/login"),
        ])  # fmt: skip
        return page("Backup restored", body, page_id="restored")


def _restart_sections(engine: Any, new_config: Any) -> list[str]:
    from ._config_admin import restart_sections

    return restart_sections(engine.config.raw, new_config.raw)


def _check_report(result: CheckResult, text: str, main_file: str) -> Markup:
    """Problems listed with links to their lines, the text with those lines marked, the diff."""
    by_line: dict[int, list[str]] = {}
    items = []
    for problem in result.problems:
        line = int(problem["line"])
        here = problem["file"] == main_file and line > 0  # a drop-in's problem is not in this text
        if here:
            by_line.setdefault(line, []).append(problem["message"])
        label = f"{Path(problem['file']).name} line {line}"
        items.append(tag("li", tag("a", label, href=f"#line-{line}") if here else label, ": ",
                         problem["message"], data_line=str(line), data_file=problem["file"]))
    parts: list[Any] = []
    if result.problems:
        parts.append(tag("h2", f"{len(result.problems)} problem(s); nothing was saved"))
        parts.append(tag("ol", *items, id="config-problems", class_="error"))
        lines = []
        for number, content in enumerate(text.split("\n"), start=1):
            messages = by_line.get(number)
            lines.append(tag("li", tag("code", content or " "),
                             *(tag("span", m, class_="problem") for m in messages or ()),
                             id=f"line-{number}", class_="error" if messages else None, value=str(number)))
        parts.append(tag("ol", *lines, id="config-lines", class_="config-lines"))
    else:
        parts.append(tag("p", "No problems found.", class_="notice", id="config-ok"))
        if result.restart_needed:
            parts.append(tag("p", "Applied at once: queues, agents, routes. These changed sections take effect at the "
                                  "next restart: ", ", ".join(result.restart_needed), id="config-restart"))
    parts.append(tag("h2", "Changes"))
    parts.append(tag("pre", result.diff or "(no changes)", class_="diff", id="config-diff"))
    return join(parts)


__all__ = ["AdminPages", "sha256"]
