"""Console pages (filled in below the API)."""

from __future__ import annotations

from typing import Any

from ._http import Router


class Pages:
    def __init__(self, engine: Any, auth: Any, set_cookie: Any, *, tls_fingerprint: str | None = None) -> None:
        self.engine = engine

    def mount(self, router: Router) -> None:
        pass
