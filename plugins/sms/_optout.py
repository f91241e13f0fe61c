"""Opt-out keywords (pure): STOP and its translations. A message that is only a keyword (ignoring case,
accents, spaces and punctuation) is an opt-out; "stop sending me the wrong bill" is a message."""

from __future__ import annotations

import unicodedata

DEFAULT_KEYWORDS = (
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "OPT OUT",  # English (CTIA)
    "BAJA", "ALTA BAJA", "PARAR", "CANCELAR",  # Spanish
    "ARRET", "ARRETER", "STOP SMS",  # French
    "PARE", "SAIR",  # Portuguese
    "HALT", "ABMELDEN",  # German
    "BASTA", "ANNULLA",  # Italian
)


def normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    cleaned = "".join(c if c.isalnum() else " " for c in letters.upper())
    return " ".join(cleaned.split())


def is_opt_out(text: str, keywords: tuple[str, ...] | list[str] = DEFAULT_KEYWORDS) -> bool:
    return normalise(text) in {normalise(k) for k in keywords}
