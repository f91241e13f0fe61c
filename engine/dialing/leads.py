"""Lead import: CSV in, clean leads out, every rejected row reported with its line and reason.

A CSV file is hostile input. This module reads it streaming (100,000 rows in constant memory apart from
the de-duplication index), with bounded field sizes, and:

* detects the encoding: a UTF-8 or UTF-16 byte-order mark wins; otherwise UTF-8 if the whole file
  decodes, else Latin-1 (which decodes any byte) and the report says so;
* maps columns to fields (``--map "Mobile Phone=phone"``); without a map, columns whose header mentions
  phone/mobile/tel/number are phone columns and the rest become custom fields;
* normalises every number to E.164 with ``phonenumbers`` and rejects anything that is not a phone
  number as written by a person: ``;``, ``,``, letters (``ATDT``, vanity words), pause characters;
* drops duplicates (the same E.164 number seen earlier in the file, or already in the sink);
* neutralises spreadsheet formulas (``=HYPERLINK(...)``) in every stored field, so an exported list
  cannot run code in the supervisor's spreadsheet.

Nothing reaches a dial string unchecked: :func:`checked_dial_string` is the only way a number becomes
one, and it accepts ``+`` followed by digits and nothing else.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import phonenumbers

from .._errors import EngineError

MAX_FIELD_CHARS = 4096
MAX_COLUMNS = 256
MAX_NUMBERS_PER_LEAD = 8
_KEPT_PROBLEMS = 10_000  # counted beyond this, not kept

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_WRITTEN_NUMBER = re.compile(r"[+0-9 ()./\-\u00a0]{3,40}")
_PHONE_HEADER = re.compile(r"phone|mobile|cell|tel|number|móvil|movil|teléfono|telefono", re.IGNORECASE)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


class InvalidDialString(EngineError, ValueError):
    """A string that is not ``+`` and digits was about to become a dial string (a local bug or bad data)."""


class LeadImportError(EngineError):
    """The import cannot run at all (unreadable file, missing mapped column). The message says why."""


def checked_dial_string(number: str) -> str:
    """Return ``number`` if it is an E.164 number (``+`` then 7-15 digits), else raise.

    The last gate before a trunk or an AT ``D`` command: no ``;`` (which ends an AT dial string and
    starts another command), no ``,``/``W``/``P`` pauses, no letters, no spaces.
    """
    if not isinstance(number, str) or not _E164.fullmatch(number):
        raise InvalidDialString(f"not an E.164 dial string: {number!r}")
    return number


def neutralise_formula(text: str) -> str:
    """Make a cell safe to open in a spreadsheet: a leading ``= + - @`` (or tab/CR) is quoted with ``'``."""
    if text and text.startswith(_FORMULA_START):
        return "'" + text
    return text


class NumberCache:
    """Remembers, per (region, prefix, length), the E.164 prefix of numbers already proven valid.

    ``phonenumbers`` spends ~80 us parsing and validating one number; a lead list repeats the same area
    codes and exchanges over and over. The last four digits never change how a number is written in
    E.164 (country code and trunk prefix sit at the front), and the numbering plans decide validity on
    the leading digits and the length, so a number whose digits-but-the-last-four and length match a
    number already validated gets the same treatment. Only valid results are cached.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self._known: dict[tuple[str, bool, str, int], str] = {}
        self._limit = limit

    def lookup(self, region: str, plus: bool, digits: str) -> str | None:
        prefix = self._known.get((region, plus, digits[:-4], len(digits)))
        return None if prefix is None else prefix + digits[-4:]

    def remember(self, region: str, plus: bool, digits: str, e164: str) -> None:
        if len(digits) >= 8 and e164.endswith(digits[-4:]):
            if len(self._known) >= self._limit:
                self._known.clear()
            self._known[(region, plus, digits[:-4], len(digits))] = e164[:-4]


_NON_DIGITS = re.compile(r"[^0-9]")


def normalise_number(raw: str, region: str, cache: NumberCache | None = None) -> str:
    """E.164 for a number written by a person, or ``ValueError`` with the reason (for the report)."""
    text = raw.strip()
    if not _WRITTEN_NUMBER.fullmatch(text):
        bad = sorted({c for c in text if not re.fullmatch(r"[+0-9 ()./\-\u00a0]", c)})
        shown = " ".join(repr(c) for c in bad[:5]) if bad else "too short or too long"
        raise ValueError(f"{text[:40]!r} is not a phone number ({shown})")
    plus = text.startswith("+")
    digits = _NON_DIGITS.sub("", text)
    if cache is not None and len(digits) >= 8:
        known = cache.lookup(region, plus, digits)
        if known is not None:
            return checked_dial_string(known)
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"{text!r} is not a phone number ({error})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{text!r} is not a valid number (region {region})")
    e164 = checked_dial_string(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    if cache is not None:
        cache.remember(region, plus, digits, e164)
    return e164


def opt_out_number(address: str, region: str = "US") -> str | None:
    """The E.164 number an opt-out on another channel (an SMS "STOP", a tel: URI) refers to, or None
    when the address is no phone number (an email address, a chat visitor id).

    Unlike :func:`normalise_number` a number written with ``+`` is kept even if the numbering plan does
    not know it: whoever texted STOP from it must not be called on it, valid range or not.
    """
    text = address.strip()[:64]
    if text[:4].lower() == "tel:":
        text = text[4:].split(";", 1)[0]
    if not _WRITTEN_NUMBER.fullmatch(text):
        return None
    try:
        if text.startswith("+"):
            return checked_dial_string("+" + _NON_DIGITS.sub("", text))
        parsed = phonenumbers.parse(text, region)
        return checked_dial_string(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    except (ValueError, phonenumbers.NumberParseException):
        return None


# ------------------------------------------------------------------------------------ data types


@dataclass(frozen=True)
class Lead:
    """One imported lead: its numbers in E.164 (dialing order) and its custom fields (neutralised)."""

    line: int
    numbers: tuple[str, ...]
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportProblem:
    """A row (``line``, 1-based, where the record starts) that was rejected, or imported with a note."""

    line: int
    reason: str
    rejected: bool = True


@dataclass
class ImportReport:
    encoding: str = "utf-8"
    encoding_note: str = ""
    rows: int = 0
    imported: int = 0
    numbers: int = 0
    rejected: int = 0
    duplicates: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    problems_not_kept: int = 0

    def add_problem(self, problem: ImportProblem) -> None:
        if len(self.problems) < _KEPT_PROBLEMS:
            self.problems.append(problem)
        else:
            self.problems_not_kept += 1

    def as_json(self) -> dict[str, object]:
        return {"encoding": self.encoding, "encoding_note": self.encoding_note, "rows": self.rows,
                "imported": self.imported, "numbers": self.numbers, "rejected": self.rejected,
                "duplicates": self.duplicates,
                "problems": [{"line": p.line, "reason": p.reason, "rejected": p.rejected}
                             for p in self.problems]}


class LeadSink(Protocol):
    """Where imported leads go (the store, later; a list or a CSV file for now)."""

    def has_number(self, number: str) -> bool:
        """True when this campaign already holds the number (de-duplication across imports)."""
        ...

    def add(self, lead: Lead) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps leads in a list: for tests and dry runs."""

    def __init__(self) -> None:
        self.leads: list[Lead] = []
        self._numbers: set[str] = set()

    def has_number(self, number: str) -> bool:
        return number in self._numbers

    def add(self, lead: Lead) -> None:
        self.leads.append(lead)
        self._numbers.update(lead.numbers)

    def close(self) -> None:
        pass


class CsvSink:
    """Writes clean leads as CSV (``line, numbers, field...``), formulas neutralised again on export."""

    def __init__(self, path: str | Path, field_names: Sequence[str]) -> None:
        self._file = open(path, "w", newline="", encoding="utf-8")
        self._fields = list(field_names)
        self._writer = csv.writer(self._file)
        self._writer.writerow(["source_line", "numbers", *[neutralise_formula(f) for f in self._fields]])

    def has_number(self, number: str) -> bool:
        return False

    def add(self, lead: Lead) -> None:
        self._writer.writerow([lead.line, " ".join(lead.numbers),
                               *[neutralise_formula(lead.fields.get(f, "")) for f in self._fields]])

    def close(self) -> None:
        self._file.close()


# ------------------------------------------------------------------------------------- decoding


def detect_encoding(data: BinaryIO) -> tuple[str, str]:
    """(codec, note) for a seekable binary stream; reads it once, leaves it at the start."""
    start = data.read(4)
    data.seek(0)
    if start.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", ""
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", ""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        while chunk := data.read(1 << 16):
            decoder.decode(chunk)
            offset += len(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        data.seek(0)
        return "latin-1", f"not valid UTF-8 (byte {offset + error.start}); read as Latin-1"
    data.seek(0)
    return "utf-8", ""


class _Counting(io.RawIOBase):
    """Counts bytes read, for the progress bar."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        chunk = self.inner.read(len(buffer))
        buffer[: len(chunk)] = chunk
        self.count += len(chunk)
        return len(chunk)


def _records(text: io.TextIOBase, report: ImportReport) -> Iterator[tuple[int, list[str]]]:
    """(start line, cells) per CSV record; malformed records are reported and skipped."""
    reader = csv.reader(text, strict=False)
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            line = previous_end + 1
            previous_end = reader.line_num
            report.rows += 1
            report.rejected += 1
            report.add_problem(ImportProblem(line, f"malformed CSV: {error}"))
            continue
        start = previous_end + 1
        previous_end = reader.line_num
        yield start, cells


# -------------------------------------------------------------------------------------- import


Progress = Callable[[int, int], None]  # (bytes read, rows so far)


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """``["Mobile=phone", "Name=name"]`` → ``{"Mobile": "phone", "Name": "name"}``."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, name = pair.partition("=")
        if not sep or not column.strip() or not name.strip():
            raise LeadImportError(f"--map expects COLUMN=FIELD, got {pair!r}")
        mapping[column.strip()] = name.strip()
    return mapping


def import_leads(data: BinaryIO, sink: LeadSink, *, mapping: Mapping[str, str] | None = None,
                 region: str = "US", progress: Progress | None = None, max_rows: int = 1_000_000) -> ImportReport:
    """Import CSV ``data`` (a seekable binary stream with a header row) into ``sink``.

    ``mapping`` maps header names to field names; the field name ``phone`` (any number of columns)
    collects numbers in column order. Columns not mapped keep their header as field name unless a
    mapping is given, in which case only mapped columns are kept. Raises :class:`LeadImportError` when
    the file has no header, a mapped column is missing, or there is no phone column.
    """
    old_limit = csv.field_size_limit(MAX_FIELD_CHARS)  # process-wide: restored below
    try:
        return _import(data, sink, mapping, region, progress, max_rows)
    finally:
        csv.field_size_limit(old_limit)


def _import(data: BinaryIO, sink: LeadSink, mapping: Mapping[str, str] | None, region: str,
            progress: Progress | None, max_rows: int) -> ImportReport:
    report = ImportReport()
    report.encoding, report.encoding_note = detect_encoding(data)
    counting = _Counting(data)
    text = io.TextIOWrapper(io.BufferedReader(counting, 1 << 16), encoding=report.encoding, newline="",
                            errors="replace")
    records = _records(text, report)
    try:
        _, header = next(records)
    except StopIteration:
        raise LeadImportError("the file is empty (expected a header row)") from None
    header = [h.strip().lstrip("\ufeff") for h in header[:MAX_COLUMNS]]
    if mapping:
        missing = [c for c in mapping if c not in header]
        if missing:
            raise LeadImportError(f"mapped column(s) {', '.join(map(repr, missing))} not in the file; "
                                  f"its columns are {', '.join(map(repr, header))}")
        columns = [(i, mapping[h]) for i, h in enumerate(header) if h in mapping]
    else:
        columns = [(i, "phone" if _PHONE_HEADER.search(h) else h) for i, h in enumerate(header) if h]
    phone_columns = [i for i, name in columns if name == "phone"]
    field_columns = [(i, name) for i, name in columns if name != "phone"]
    if not phone_columns:
        raise LeadImportError("no phone column: map one with --map COLUMN=phone; the columns are "
                              + ", ".join(map(repr, header)))
    seen: dict[str, int] = {}
    cache = NumberCache()
    for line, cells in records:
        if not any(c.strip() for c in cells):
            continue  # blank line
        report.rows += 1
        if report.rows > max_rows:
            report.rejected += 1
            report.add_problem(ImportProblem(line, f"more than {max_rows} rows; the rest was not read"))
            break
        if len(cells) < len(header) and max(phone_columns) >= len(cells):
            report.rejected += 1
            report.add_problem(ImportProblem(line, f"has {len(cells)} columns, the header has {len(header)}"))
            continue
        numbers: list[str] = []
        notes: list[str] = []
        duplicate_of: int | None = None
        duplicate_notes = 0
        for i in phone_columns:
            raw = cells[i] if i < len(cells) else ""
            if not raw.strip():
                continue
            try:
                number = normalise_number(raw, region, cache)
            except ValueError as error:
                notes.append(f"{header[i]}: {error}")
                continue
            if number in seen or sink.has_number(number):
                duplicate_of = seen.get(number, 0)
                duplicate_notes += 1
                notes.append(f"{header[i]}: {number} duplicates "
                             + (f"line {duplicate_of}" if duplicate_of else "a lead already in the campaign"))
                continue
            if number not in numbers and len(numbers) < MAX_NUMBERS_PER_LEAD:
                numbers.append(number)
        if not numbers:
            report.rejected += 1
            if duplicate_of is not None and duplicate_notes == len(notes):
                report.duplicates += 1
            reason = "; ".join(notes) if notes else "no phone number"
            report.add_problem(ImportProblem(line, reason))
            continue
        fields = {name: neutralise_formula(cells[i].strip()) if i < len(cells) else ""
                  for i, name in field_columns}
        for number in numbers:
            seen[number] = line
        sink.add(Lead(line, tuple(numbers), fields))
        report.imported += 1
        report.numbers += len(numbers)
        if notes:
            report.add_problem(ImportProblem(line, "imported without " + "; ".join(notes), rejected=False))
        if progress is not None and report.rows % 1000 == 0:
            progress(counting.count, report.rows)
    if progress is not None:
        progress(counting.count, report.rows)
    return report


# ------------------------------------------------------------------------------------------ CLI


def _progress_bar(total: int, stream) -> Progress:  # type: ignore[no-untyped-def]
    def show(done: int, rows: int) -> None:
        fraction = min(1.0, done / total) if total else 1.0
        filled = int(fraction * 30)
        stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {rows} rows")
        stream.flush()

    return show


SinkFactory = Callable[[str, list[str]], LeadSink]  # (campaign, field names) -> sink


def run_import_cli(argv: Sequence[str] | None = None, *, sink_factory: SinkFactory | None = None) -> int:
    """``centralita import-leads FILE --campaign NAME [--map COLUMN=FIELD]... [--region US]``.

    Exit 0 when every row was imported, 1 when some rows were rejected (each reported on standard error
    as ``FILE:LINE: reason``), 2 when nothing could be imported. Without a ``sink_factory`` (the engine
    passes one that writes to its store) the leads go to ``--output`` as CSV, or nowhere (a dry run).
    """
    parser = argparse.ArgumentParser(prog="centralita import-leads", description="import leads from CSV")
    parser.add_argument("file")
    parser.add_argument("--campaign", required=True)
    parser.add_argument("--map", action="append", default=[], metavar="COLUMN=FIELD",
                        help="map a CSV column to a field; FIELD 'phone' marks a phone column (repeatable)")
    parser.add_argument("--region", default="US", help="country for numbers written without +CC (default US)")
    parser.add_argument("--output", help="write the clean leads to this CSV file (when no store is attached)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        mapping = parse_mapping(args.map)
        size = os.path.getsize(args.file)
        with open(args.file, "rb") as data:
            sink: LeadSink
            if sink_factory is not None:
                sink = sink_factory(args.campaign, sorted(set(mapping.values()) - {"phone"}))
            elif args.output:
                sink = _DeferredCsvSink(args.output)
            else:
                sink = MemorySink()
            progress = _progress_bar(size, sys.stderr) if sys.stderr.isatty() else None
            try:
                report = import_leads(data, sink, mapping=mapping or None, region=args.region, progress=progress)
            finally:
                sink.close()
            if progress is not None:
                sys.stderr.write("\n")
    except OSError as error:
        print(f"{args.file}: {error.strerror or error}", file=sys.stderr)
        return 2
    except LeadImportError as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 2
    for problem in report.problems:
        kind = "" if problem.rejected else "warning: "
        print(f"{args.file}:{problem.line}: {kind}{problem.reason}", file=sys.stderr)
    if report.problems_not_kept:
        print(f"{args.file}: ... and {report.problems_not_kept} more problems", file=sys.stderr)
    if args.json:
        print(json.dumps(report.as_json()))
    else:
        note = f" ({report.encoding_note})" if report.encoding_note else ""
        print(f"campaign {args.campaign}: imported {report.imported} of {report.rows} rows "
              f"({report.numbers} numbers); rejected {report.rejected} ({report.duplicates} duplicates); "
              f"encoding {report.encoding}{note}")
    if report.imported == 0:
        return 2
    return 1 if report.rejected else 0


class _DeferredCsvSink:
    """A :class:`CsvSink` whose columns are learned from the first lead."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._inner: CsvSink | None = None

    def has_number(self, number: str) -> bool:
        return False

    def add(self, lead: Lead) -> None:
        if self._inner is None:
            self._inner = CsvSink(self._path, list(lead.fields))
        self._inner.add(lead)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


__all__ = ["CsvSink", "ImportProblem", "ImportReport", "InvalidDialString", "Lead", "LeadImportError",
           "LeadSink", "MemorySink", "checked_dial_string", "detect_encoding", "import_leads", "NumberCache",
           "neutralise_formula", "normalise_number", "parse_mapping", "run_import_cli"]
