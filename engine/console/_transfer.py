"""Large bodies both ways: files sent in chunks (with HTTP ranges), uploads received to disk.

The request layer's :meth:`Request.body` holds a body in memory (64 KiB by default), right for JSON;
a backup or a recording is streamed instead so memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import mmap
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import trio

from ._http import HttpError, Request, Response, Send

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class FileResponse(Response):
    """A file (or one byte range of it) sent in chunks; ``delete_after`` for temporary files."""

    path: Path | None = None
    offset: int = 0
    length: int = 0
    #: a temporary directory holding the file, removed once it is sent
    cleanup: Path | None = None

    async def send(self, send: Send) -> None:
        assert self.path is not None
        headers = [
            (b"content-type", self.content_type.encode("latin-1")),
            (b"content-length", str(self.length).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-store"),
        ]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        try:
            await send({"type": "http.response.start", "status": self.status, "headers": headers})
            async with await trio.open_file(self.path, "rb") as handle:
                await handle.seek(self.offset)
                left = self.length
                while left > 0:
                    chunk = await handle.read(min(CHUNK, left))
                    if not chunk:
                        break  # the file shrank under us; the client sees a short body
                    left -= len(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
            if left > 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if self.cleanup is not None:
                shutil.rmtree(self.cleanup, ignore_errors=True)


def file_response(request: Request, path: Path, content_type: str, *, download_name: str | None = None,
                  cleanup: Path | None = None) -> FileResponse:
    """200 with the whole file, or 206 for one ``Range: bytes=a-b`` (416 when it cannot be met).

    Multiple ranges are answered with the whole file (allowed by RFC 9110 and all ``<audio>`` needs).
    """
    size = path.stat().st_size
    headers = [("accept-ranges", "bytes")]
    if download_name is not None:
        safe = re.sub(r'[^A-Za-z0-9._-]', "_", download_name)[:100] or "download"
        headers.append(("content-disposition", f'attachment; filename="{safe}"'))
    wanted = request.header("range")
    found = _RANGE.match(wanted.strip()) if wanted else None
    if found is None:
        return FileResponse(200, b"", content_type, headers, path=path, offset=0, length=size, cleanup=cleanup)
    first, last = found.groups()
    if first == "" and last == "":
        raise HttpError(416, "unsatisfiable range", headers={"content-range": f"bytes */{size}"})
    if first == "":  # the last N bytes
        start, end = max(0, size - int(last[:18])), size - 1
    else:
        start = int(first[:18])
        end = min(size - 1, int(last[:18])) if last else size - 1
    if start >= size or start > end:
        raise HttpError(416, "unsatisfiable range", headers={"content-range": f"bytes */{size}"})
    headers.append(("content-range", f"bytes {start}-{end}/{size}"))
    return FileResponse(206, b"", content_type, headers, path=path, offset=start, length=end - start + 1,
                        cleanup=cleanup)


async def receive_to_file(request: Request, dest: Path, limit: int) -> int:
    """Write the request body to ``dest`` (new file), refusing (413) more than ``limit`` bytes."""
    declared = request.header("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"upload too large (limit {limit} bytes)", headers={"connection": "close"})
    size = 0
    async with await trio.open_file(dest, "xb") as handle:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                request.body_done = True
                raise HttpError(400, "client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"upload too large (limit {limit} bytes)", headers={"connection": "close"})
            await handle.write(chunk)
            if not message.get("more_body", False):
                request.body_done = True
                return size


def multipart_boundary(content_type: str) -> bytes | None:
    found = re.search(r'boundary="?([^";]{1,70})"?', content_type)
    return found.group(1).encode("latin-1") if found else None


def extract_multipart_file(raw: Path, boundary: bytes, dest: Path, field: str) -> None:
    """Copy the content of the part named ``field`` of a multipart body stored at ``raw`` to ``dest``.

    Works on the file through ``mmap`` (the body can be large); 400 when the part is not there.
    """
    delimiter = b"--" + boundary
    with open(raw, "rb") as handle:
        if raw.stat().st_size == 0:
            raise HttpError(400, "empty upload")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as body:
            position = body.find(delimiter)
            while position >= 0:
                header_start = position + len(delimiter)
                if body[header_start:header_start + 2] == b"--":
                    break  # closing delimiter
                header_end = body.find(b"\r\n\r\n", header_start, header_start + 8192)
                if header_end < 0:
                    break
                headers = body[header_start:header_end].decode("latin-1", "replace")
                data_start = header_end + 4
                next_delimiter = body.find(b"\r\n" + delimiter, data_start)
                if next_delimiter < 0:
                    break
                if re.search(rf'name="{re.escape(field)}"', headers):
                    with open(dest, "xb") as out:
                        out.writelines(body[start:min(start + 1024 * 1024, next_delimiter)]
                                       for start in range(data_start, next_delimiter, 1024 * 1024))
                    return
                position = next_delimiter + 2
    raise HttpError(400, f"the upload has no {field!r} file part")
