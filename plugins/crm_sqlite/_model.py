"""Pure helpers of the built-in CRM: identity normalisation and the CSV formats (no I/O here)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: identity kinds a contact can have
KINDS = ("phone", "email", "chat")

_PHONE_JUNK = re.compile(r"[\s\-().]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class CrmInputError(ValueError):
    """A contact record or CSV row that cannot be stored; the message says which and why."""


def normalise(kind: str, value: str) -> str:
    """The form identities are stored and looked up in: phones as ``+digits`` or digits, e-mail lower-case."""
    value = value.strip()
    if kind == "phone":
        cleaned = _PHONE_JUNK.sub("", value)
        if cleaned.startswith("00"):
            cleaned = "+" + cleaned[2:]
        if not re.fullmatch(r"\+?\d{2,20}", cleaned):
            raise CrmInputError(f"not a phone number: {value[:40]!r}")
        return cleaned
    if kind == "email":
        if not re.fullmatch(r"[^@\s]{1,64}@[^@\s]{1,255}", value):
            raise CrmInputError(f"not an e-mail address: {value[:60]!r}")
        return value.lower()
    if kind == "chat":
        if not value or len(value) > 128:
            raise CrmInputError("a chat id must be 1 to 128 characters")
        return value
    raise CrmInputError(f"unknown identity kind {kind!r} (expected one of {', '.join(KINDS)})")


_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def neutralise(value: str) -> str:
    """Keep spreadsheet programs from executing a cell (CSV formula injection). A plain number such as
    ``+34911000001`` is left alone, as in the CDR export: spreadsheets read it as a number, not a formula."""
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


@dataclass
class ContactRow:
    name: str
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    line: int = 0  # where it was in the imported file, to report a row the store refuses


CSV_COLUMNS = ("name", "phones", "emails", "tags")


def parse_csv(text: str, *, max_rows: int = 100_000) -> tuple[list[ContactRow], list[tuple[int, str]]]:
    """Contacts from CSV (``name, phones, emails, tags`` plus any custom columns; lists separated by ``;``).

    Returns the good rows and ``(line, reason)`` for each rejected one; nothing is silently dropped.
    """
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "name" not in reader.fieldnames:
        raise CrmInputError("the CSV needs a header row with at least a 'name' column")
    rows: list[ContactRow] = []
    problems: list[tuple[int, str]] = []
    for record in reader:
        line = reader.line_num
        if len(rows) + len(problems) >= max_rows:
            problems.append((line, f"more than {max_rows} rows; the rest was not read"))
            break
        try:
            name = (record.get("name") or "").strip()
            if not name:
                raise CrmInputError("empty name")
            row = ContactRow(name=name[:200], line=line)
            row.phones = [normalise("phone", p) for p in _split(record.get("phones"))]
            row.emails = [normalise("email", e) for e in _split(record.get("emails"))]
            row.tags = [t[:64] for t in _split(record.get("tags"))]
            row.fields = {k[:64]: (v or "")[:1000] for k, v in record.items()
                          if k and k not in CSV_COLUMNS and isinstance(v, str)}
        except CrmInputError as exc:
            problems.append((line, str(exc)))
            continue
        rows.append(row)
    return rows, problems


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(";") if part.strip()]


def to_csv(contacts: Iterable[Mapping[str, object]], custom: Iterable[str] = ()) -> str:
    """Export contacts as CSV with formulas neutralised (the file goes to spreadsheets)."""
    custom = list(custom)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_COLUMNS, *custom])
    for contact in contacts:
        fields = contact.get("fields") or {}
        assert isinstance(fields, Mapping)
        writer.writerow([
            neutralise(str(contact.get("name", ""))),
            ";".join(neutralise(p) for p in contact.get("phones", []) or []),  # type: ignore[union-attr]
            ";".join(neutralise(e) for e in contact.get("emails", []) or []),  # type: ignore[union-attr]
            ";".join(neutralise(t) for t in contact.get("tags", []) or []),  # type: ignore[union-attr]
            *[neutralise(str(fields.get(c, ""))) for c in custom],
        ])
    return out.getvalue()
