"""CDR export: Asterisk ``Master.csv`` column order, with spreadsheet formulas neutralised."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import re
from collections.abc import Iterable, Mapping
from typing import Any

#: Asterisk cdr_csv's Master.csv column order (CONTRACT.md).
MASTER_CSV_COLUMNS = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
    "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield",
)  # fmt: skip

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def neutralise(value: Any) -> str:
    """A cell a spreadsheet will show as text, never evaluate (OWASP "CSV injection").

    Plain numbers (``+34911...``, ``-3``) are left alone: a spreadsheet reads them as numbers, not
    formulas, and phone numbers must stay readable.
    """
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


#: columns the engine stores as Unix times and Master.csv writes as ``YYYY-MM-DD HH:MM:SS``
TIME_COLUMNS = frozenset({"start", "answer", "end"})


def format_time(value: Any) -> str:
    """A Unix time as Asterisk writes it in Master.csv (here in UTC); empty for none or 0 (not answered)."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        if value <= 0:
            return ""
        return _dt.datetime.fromtimestamp(value, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def cdr_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for row in rows:
        writer.writerow(
            [neutralise(format_time(row.get(c)) if c in TIME_COLUMNS else row.get(c)) for c in MASTER_CSV_COLUMNS]
        )
    return out.getvalue()
