"""Moving contacts in and out as CSV: shared by the ``centralita crm`` command and the console route.

The file comes from outside (a spreadsheet, another CRM): it is size-limited, decoded strictly, and
every row that cannot be stored is reported by line instead of stopping the import.
"""

from __future__ import annotations

import csv
from typing import Any

from ._model import CrmInputError

#: the largest CSV accepted (about 100,000 contacts with a few custom fields)
MAX_IMPORT_BYTES = 32 * 1024 * 1024
MAX_PROBLEMS_SHOWN = 1000


def decode_csv(data: bytes) -> str:
    """UTF-8 (a spreadsheet's byte-order mark is dropped); anything else is refused, not guessed."""
    if len(data) > MAX_IMPORT_BYTES:
        raise CrmInputError(f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CrmInputError(f"the file is not UTF-8 (byte {exc.start})") from None
    if "\x00" in text:
        raise CrmInputError("the file holds NUL bytes: not a CSV text file")
    return text


async def import_contacts(crm: Any, data: bytes) -> dict[str, Any]:
    """``{"imported", "rejected", "problems": [{"line", "reason"}]}``; raises CrmInputError for a file
    that is not a contact CSV at all (no ``name`` header, not UTF-8, malformed CSV)."""
    text = decode_csv(data)
    try:
        imported, problems = await crm.import_csv(text)
    except csv.Error as exc:  # an unterminated quote, a field over the csv module's size limit
        raise CrmInputError(f"malformed CSV: {exc}") from None
    return {"imported": imported, "rejected": len(problems),
            "problems": [{"line": line, "reason": reason} for line, reason in problems[:MAX_PROBLEMS_SHOWN]]}
