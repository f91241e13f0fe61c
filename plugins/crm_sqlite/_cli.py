"""``centralita crm import FILE`` and ``centralita crm export FILE``: the built-in CRM's contacts as CSV.

Works on the database directly, with or without a running engine (SQLite serialises the writers). A
running engine routes by the tags it loaded at start; imported tags count for routing after a restart
(the console route, ``POST /crm/import``, updates the running engine at once).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import trio

from engine.store import open_store

from ._backend import MIGRATIONS, SqliteCrm
from ._model import CrmInputError
from ._transfer import MAX_IMPORT_BYTES, import_contacts

DATABASE = "centralita.db"


class UsageError(Exception):
    """The command line or the configuration it points at is wrong (the operator's to fix)."""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="crm_command", required=True)
    load = sub.add_parser("import", help="add the contacts of a CSV file (name, phones, emails, tags, custom columns)")
    load.add_argument("file", metavar="FILE", help="the CSV file ('-' for standard input)")
    load.add_argument("--json", action="store_true", help="print the result as JSON")
    save = sub.add_parser("export", help="write every contact to a CSV file (formulas neutralised)")
    save.add_argument("file", metavar="FILE", help="where to write ('-' for standard output)")
    for command in (load, save):
        command.add_argument("--config", metavar="FILE", help="configuration file; its [engine] data_dir is used")
        command.add_argument("--data-dir", metavar="DIR", help="data directory (overrides the configuration)")


def run(args: argparse.Namespace) -> int:
    try:
        database = _data_dir(args) / DATABASE
        if args.crm_command == "import":
            data = _read(args.file)
            result = trio.run(_import, database, data)
            if "error" in result:
                raise CrmInputError(result["error"])
            if args.json:
                print(json.dumps(result, indent=2))
            else:
                print(f"imported {result['imported']} contact(s), rejected {result['rejected']}")
                for problem in result["problems"]:
                    print(f"line {problem['line']}: {problem['reason']}", file=sys.stderr)
            return 0 if not result["rejected"] else 1
        text = trio.run(_export, database)
        if args.file == "-":
            sys.stdout.write(text)
        else:
            Path(args.file).write_text(text, encoding="utf-8")
            print(f"wrote {max(text.count(chr(10)) - 1, 0)} contact row(s) to {args.file}")
        return 0
    except (UsageError, CrmInputError, OSError) as exc:
        print(f"crm {args.crm_command}: {exc}", file=sys.stderr)
        return 2


def _read(name: str) -> bytes:
    if name == "-":
        data = sys.stdin.buffer.read(MAX_IMPORT_BYTES + 1)
    else:
        with open(name, "rb") as file:
            data = file.read(MAX_IMPORT_BYTES + 1)  # never the whole of a runaway file
    return data


async def _import(database: Path, data: bytes) -> dict[str, Any]:
    async with open_store(database, MIGRATIONS) as store:
        try:
            return await import_contacts(SqliteCrm(store), data)
        except CrmInputError as exc:  # returned, not raised: trio.run would wrap it in a group
            return {"error": str(exc)}


async def _export(database: Path) -> str:
    async with open_store(database, MIGRATIONS) as store:
        return await SqliteCrm(store).export_csv()


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir:
        path = Path(args.data_dir)
    elif args.config:
        config_path = Path(args.config)
        try:
            with config_path.open("rb") as file:
                config = tomllib.load(file)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read {config_path}: {exc}") from None
        data_dir = config.get("engine", {}).get("data_dir", "var")
        if not isinstance(data_dir, str):
            raise UsageError(f"{config_path}: [engine] data_dir is not a string")
        path = Path(data_dir) if Path(data_dir).is_absolute() else config_path.parent / data_dir
    else:
        raise UsageError("give --config FILE or --data-dir DIR")
    if not path.is_dir():
        raise UsageError(f"no data directory at {path}")
    return path
