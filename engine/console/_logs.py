"""Recent log records for the console's Logs page: a bounded ring buffer fed by a logging handler.

The handler never blocks and never grows: the newest ``capacity`` records are kept, each message cut to
``max_message`` characters. Messages may contain attacker-controlled text (caller ids, SIP headers);
pages escape them like everything else.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LogRecord:
    seq: int
    time: float
    level: str
    levelno: int
    logger: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "level": self.level, "logger": self.logger, "message": self.message}


class RingLogHandler(logging.Handler):
    def __init__(self, capacity: int = 2000, max_message: int = 2000) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: deque[LogRecord] = deque(maxlen=capacity)
        self.max_message = max_message
        self._seq = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if getattr(record, "secret_args", False):
                message = str(record.msg).replace("%s", "[redacted]")
            else:
                message = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                message += f" ({record.exc_info[0].__name__}: {record.exc_info[1]})"
        except Exception:  # a broken format string must not break logging
            message = str(record.msg)
        with self.lock:  # type: ignore[union-attr]
            self._seq += 1
            self.records.append(
                LogRecord(self._seq, record.created, record.levelname, record.levelno, record.name, message[: self.max_message])
            )

    def query(self, *, after: int = 0, min_level: int = 0, logger: str = "", text: str = "", limit: int = 500) -> list[LogRecord]:
        """Records newer than ``after`` that match, oldest first, at most ``limit`` (the newest ones)."""
        with self.lock:  # type: ignore[union-attr]
            snapshot = list(self.records)
        lowered = text.lower()
        matches = [
            r
            for r in snapshot
            if r.seq > after
            and r.levelno >= min_level
            and (not logger or r.logger == logger or r.logger.startswith(logger + "."))
            and (not lowered or lowered in r.message.lower())
        ]
        return matches[-limit:]


LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL}
