"""Per-model profiles (command dialects and quirks) and what a line can report (for the dialer)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine import LocalProtocolError

__all__ = [
    "PROFILES",
    "InvalidDialString",
    "LineCapabilities",
    "ModemProfile",
    "VoiceFormat",
    "check_dial_string",
    "choose_voice_format",
    "parse_vsm_list",
]


@dataclass(frozen=True)
class LineCapabilities:
    """What an analog line on this modem can tell us. The dialer reads it: without answer
    supervision it cannot tell a human from ringing, so it must not run predictive campaigns."""

    reports_answer: bool = False
    caller_id: bool = True
    busy_detect: bool = True
    dial_tone_detect: bool = True
    full_duplex: bool = True


@dataclass(frozen=True)
class ModemProfile:
    name: str
    description: str
    init: tuple[str, ...] = ("ATE0", "ATV1", "ATQ0")
    voice_class: str = "AT+FCLASS=8"
    caller_id_on: str = "AT+VCID=1"
    #: Some modems forget AT+VCID after ATZ or a line reset (home-assistant#57765): re-send it then.
    caller_id_lost_on_reset: bool = True
    off_hook: str = "AT+VLS=1"
    on_hook: str = "AT+VLS=0"
    hang_up: str = "ATH0"
    full_duplex_start: str = "AT+VTR"
    receive_start: str = "AT+VRX"
    transmit_start: str = "AT+VTX"
    vsm_query: str = "AT+VSM=?"
    #: Dial in voice mode: ``;`` keeps the modem in command state after dialling (V.250).
    dial_prefix: str = "ATDT"
    flash: str = "ATD!;"
    reset: str = "ATZ"
    preferred_formats: tuple[str, ...] = ("ulaw", "alaw", "linear16", "linear8")
    line: LineCapabilities = field(default_factory=LineCapabilities)
    baudrate: int = 115200
    command_timeout: float = 2.0


PROFILES: dict[str, ModemProfile] = {
    "generic": ModemProfile("generic", "Any V.253 voice modem"),
    "conexant": ModemProfile(
        "conexant",
        "Conexant/Rockwell CX930xx USB modems (e.g. Zoom 3095, StarTech USB56KEMH2)",
        init=("ATE0", "ATV1", "ATQ0", "AT+VNH=1"),  # +VNH=1: no automatic hang-up on voice/data switches
        full_duplex_start="AT+VTR",
    ),
    "usrobotics": ModemProfile(
        "usrobotics",
        "U.S. Robotics 5637/USR5637 (voice via +VRX/+VTX, no full duplex)",
        init=("ATE0", "ATV1", "ATQ0", "AT&F1E0"),
        line=LineCapabilities(full_duplex=False),
        preferred_formats=("ulaw", "linear8", "linear16"),
    ),
}


class InvalidDialString(LocalProtocolError, ValueError):
    """A number to dial that is not only digits, ``*``, ``#`` and ``,`` pauses."""


_DIAL = re.compile(r"^[0-9*#,]{1,40}$")


def check_dial_string(number: str) -> str:
    """Return ``number`` if it is safe to put after ``ATDT``; nothing else may reach the modem
    (a ``;`` or ``\\r`` would let a caller-supplied number run arbitrary AT commands)."""
    if not isinstance(number, str) or not _DIAL.match(number) or not number.strip(","):
        raise InvalidDialString(f"invalid dial string {number!r}: only digits, '*', '#' and ',' allowed")
    return number


@dataclass(frozen=True)
class VoiceFormat:
    #: The compression id to send in ``AT+VSM=<cml>,8000``.
    cml: int
    name: str
    fmt: str  # ulaw | alaw | linear8 | linear16


_VSM_LINE = re.compile(r'^\s*(\d+)\s*,\s*"([^"]*)"\s*,\s*(\d+)\s*(?:,\s*(\d+)\s*)?(?:,\s*(.*))?$')


def _rates(text: str) -> set[int]:
    rates: set[int] = set()
    for group in re.findall(r"\(([^)]*)\)", text or ""):
        for part in group.split(","):
            part = part.strip()
            if "-" in part:
                low, _, high = part.partition("-")
                if low.strip().isdigit() and high.strip().isdigit() and int(low) <= 8000 <= int(high):
                    rates.add(8000)
            elif part.isdigit():
                rates.add(int(part))
    return rates


def parse_vsm_list(lines: list[str]) -> list[VoiceFormat]:
    """``AT+VSM=?`` answer lines (``+VSM:`` prefix optional) -> the 8 kHz formats we can use."""
    found = []
    for raw in lines:
        line = raw.split(":", 1)[1] if raw.upper().startswith("+VSM:") else raw
        match = _VSM_LINE.match(line)
        if not match:
            continue
        cml, name, bits = int(match.group(1)), match.group(2), int(match.group(3))
        rest = match.group(5) or ""
        if 8000 not in _rates(rest):
            continue
        upper = name.upper().replace(" ", "").replace("-", "")
        if "ULAW" in upper or "MULAW" in upper or "G711U" in upper:
            fmt = "ulaw"
        elif "ALAW" in upper or "G711A" in upper:
            fmt = "alaw"
        elif ("PCM" in upper or "LINEAR" in upper) and bits == 16:
            fmt = "linear16"
        elif ("PCM" in upper or "LINEAR" in upper) and bits == 8:
            fmt = "linear8"
        else:
            continue
        found.append(VoiceFormat(cml, name, fmt))
    return found


def choose_voice_format(formats: list[VoiceFormat], preferred: tuple[str, ...]) -> VoiceFormat | None:
    for want in preferred:
        for option in formats:
            if option.fmt == want:
                return option
    return None
