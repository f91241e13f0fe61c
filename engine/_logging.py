"""Structured logs: human lines on a terminal, JSON lines with ``--log-format json``; level per component."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping

ROOT = "centralita"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": record.name.removeprefix(ROOT + ".") if record.name != ROOT else "engine",
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")


def setup_logging(fmt: str = "auto", level: str = "info", levels: Mapping[str, str] | None = None) -> None:
    """Configure the ``centralita`` logger tree (idempotent: replaces earlier handlers)."""
    if fmt == "auto":
        fmt = "human" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    root = logging.getLogger(ROOT)
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    for component, component_level in (levels or {}).items():
        logging.getLogger(f"{ROOT}.{component}").setLevel(component_level.upper())
