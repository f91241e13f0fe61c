"""The console route for admins, ``/crm`` (mounted through ``centralita_register_http_routes``):

- ``GET /crm/export``: every contact as CSV (formulas neutralised), as a download;
- ``POST /crm/import``: the request body is a contact CSV; answers ``{"imported", "rejected",
  "problems": [{"line", "reason"}]}``. The console has already checked the session or token and, for a
  cookie session, the ``X-CSRF-Token`` header; this app checks the role.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ._model import CrmInputError
from ._transfer import MAX_IMPORT_BYTES, import_contacts

log = logging.getLogger("centralita.crm")


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class CrmWeb:
    def __init__(self, crm: Any) -> None:
        self.crm = crm

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            return
        try:
            principal = scope.get("centralita.principal")
            if principal is None or not principal.has_role("admin"):
                raise _Refused(403, "contact import and export need the admin role")
            path = scope.get("path", "")[len(scope.get("root_path", "")):]
            method = scope.get("method")
            if (method, path) == ("GET", "/export"):
                text = await self.crm.export_csv()
                await _respond(send, 200, text.encode(), "text/csv; charset=utf-8",
                               [(b"content-disposition", b'attachment; filename="contacts.csv"')])
                log.info("crm: contacts exported by %s", principal.name)
            elif (method, path) == ("POST", "/import"):
                data = await _body(receive, MAX_IMPORT_BYTES)
                try:
                    result = await import_contacts(self.crm, data)
                except CrmInputError as exc:
                    raise _Refused(400, str(exc)) from None
                log.info("crm: %d contacts imported (%d rejected) by %s", result["imported"], result["rejected"], principal.name)
                await _respond(send, 200, json.dumps(result).encode(), "application/json")
            elif path in ("/export", "/import"):
                raise _Refused(405, "use GET /crm/export or POST /crm/import")
            else:
                raise _Refused(404, "not found")
        except _Refused as refused:
            await _respond(send, refused.status, json.dumps({"error": str(refused)}).encode(), "application/json")


async def _body(receive: Any, limit: int) -> bytes:
    """The whole body, refusing (413) one that grows past ``limit`` while it arrives."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            raise _Refused(400, "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"the file is larger than {limit // (1024 * 1024)} MiB")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Any, status: int, body: bytes, content_type: str, headers: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff"), *headers]})
    await send({"type": "http.response.body", "body": body})
