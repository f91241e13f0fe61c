"""A sans-IO AT command/response machine (ITU-T V.250, 3GPP TS 27.007 result codes).

Fed the bytes a modem sends and the current time; returns events. It never does I/O. One command is
in flight at a time; lines that arrive meanwhile are sorted by a classifier into the command's
information response or an unsolicited result code (URC), because modems send URCs between a
command's echo and its final result (reliability.md S01): a line is a URC when it starts with one of
the ``urc_prefixes`` *and* is not the information response the command asked for (``AT+CREG?`` is
answered by ``+CREG: 0,1`` which is also the registration URC).

Some URCs carry a second line (``+CMT: ,23`` then the PDU in hex): ``two_line_urcs`` names them.

Transitions (``_pending`` is the command in flight)::

    IDLE     --send_command-->          WAITING   (timer armed: deadline)
    WAITING  --final result code-->     IDLE      CommandResult
    WAITING  --"> " prompt (wanted)-->  PROMPT    Prompt           (SMS PDU goes next, then Ctrl-Z)
    PROMPT   --send_prompt_data-->      WAITING
    WAITING/PROMPT --deadline-->        IDLE      CommandTimeout   (the caller resynchronises)
    WAITING  --CONNECT (raw_after)-->   RAW       CommandResult    (bytes kept unparsed: take_raw())
    RAW      --take_raw-->              IDLE
    any      --URC line-->              same      Urc
    IDLE     --other line-->            IDLE      Urc(unsolicited=True, known=False), counted

Hostile input: a line longer than ``max_line`` is discarded up to its end and counted as noise;
non-ASCII bytes are decoded as Latin-1 (never an exception) and counted.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine import LocalProtocolError, RemoteProtocolError

__all__ = [
    "AtCommandError",
    "AtMachine",
    "AtStatistics",
    "CommandResult",
    "CommandTimeout",
    "Prompt",
    "Urc",
]

FINAL_OK = frozenset({"OK", "CONNECT", "VCON"})
FINAL_ERROR = frozenset({"ERROR", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE", "NO DIAL TONE"})
_CME = re.compile(r"^\+CM[ES] ERROR:\s*(.*)$")
_INFO_PREFIX = re.compile(r"^AT([+#$^][A-Z0-9]+)", re.IGNORECASE)


class _State(enum.Enum):
    IDLE = "idle"
    WAITING = "waiting"
    PROMPT = "prompt"
    RAW = "raw"


@dataclass(frozen=True)
class CommandResult:
    command: str
    final: str
    lines: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.final in FINAL_OK or self.final.startswith("CONNECT")

    @property
    def error_code(self) -> int | None:
        """The numeric ``+CME/+CMS ERROR`` code, if the modem gave one."""
        match = _CME.match(self.final)
        if match and match.group(1).strip().isdigit():
            return int(match.group(1))
        return None

    def info(self, prefix: str) -> list[str]:
        """The values of information lines ``PREFIX: value`` (prefix like ``+CSQ``)."""
        out = []
        for line in self.lines:
            if line.upper().startswith(prefix.upper() + ":"):
                out.append(line[len(prefix) + 1 :].strip())
        return out


@dataclass(frozen=True)
class CommandTimeout:
    command: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Prompt:
    command: str


@dataclass(frozen=True)
class Urc:
    line: str
    #: The second line of a two-line URC (``+CMT``/``+CDS`` PDUs), else "".
    data: str = ""
    #: False for a line nobody asked for that matches no URC prefix (noise, a late echo).
    known: bool = True


AtEvent = CommandResult | CommandTimeout | Prompt | Urc


class AtCommandError(RemoteProtocolError):
    """The modem answered a command with an error. ``result`` is what it said."""

    def __init__(self, result: CommandResult) -> None:
        self.result = result
        super().__init__(f"{result.command} -> {result.final}", reply=result.final)

    @property
    def code(self) -> int | None:
        return self.result.error_code


@dataclass
class AtStatistics:
    commands: int = 0
    timeouts: int = 0
    errors: int = 0
    urcs: int = 0
    unknown_lines: int = 0
    noise_bytes: int = 0
    echoes: int = 0


@dataclass
class _Pending:
    command: str
    deadline: float
    want_prompt: bool
    info_prefix: str
    raw_after: bool = False
    lines: list[str] = field(default_factory=list)
    echo_seen: bool = False


class AtMachine:
    """Command/response bookkeeping for one AT port. See the module docstring."""

    def __init__(
        self,
        *,
        urc_prefixes: Iterable[str] = ("RING",),
        two_line_urcs: Iterable[str] = (),
        max_line: int = 2048,
    ) -> None:
        self.urc_prefixes = tuple(urc_prefixes)
        self.two_line_urcs = tuple(two_line_urcs)
        self.max_line = max_line
        self._buffer = bytearray()
        self._discarding = False
        self._raw_after_cr = False
        self._state = _State.IDLE
        self._pending: _Pending | None = None
        self._urc_waiting_data: str | None = None
        self._events: deque[AtEvent] = deque()
        self.stats = AtStatistics()

    # ------------------------------------------------------------------ commands
    @property
    def busy(self) -> bool:
        return self._state is not _State.IDLE

    def send_command(
        self, command: str, now: float, *, timeout: float, want_prompt: bool = False, raw_after: bool = False
    ) -> bytes:
        """Start ``command`` (``"AT+CSQ"``); returns the bytes to write.

        ``raw_after``: a successful answer (``CONNECT``) switches the port to a binary stream (voice
        mode); the bytes after it stay unparsed for :meth:`take_raw`.
        """
        if self._state is not _State.IDLE:
            raise LocalProtocolError(
                f"cannot send {command!r}: {self._pending and self._pending.command!r} is in flight"
            )
        if not command.upper().startswith("AT") or any(c in command for c in "\r\n\x1a\x1b"):
            raise LocalProtocolError(f"not a single AT command: {command!r}")
        match = _INFO_PREFIX.match(command)
        info_prefix = match.group(1).upper() + ":" if match else ""
        self._pending = _Pending(command, now + timeout, want_prompt, info_prefix, raw_after)
        self._state = _State.WAITING
        self.stats.commands += 1
        return command.encode("ascii") + b"\r"

    def send_prompt_data(self, data: bytes, now: float, *, timeout: float) -> bytes:
        """After a :class:`Prompt`: ``data`` (an SMS PDU in hex) followed by Ctrl-Z."""
        if self._state is not _State.PROMPT or self._pending is None:
            raise LocalProtocolError("no prompt to answer")
        if b"\x1a" in data or b"\x1b" in data:
            raise LocalProtocolError("prompt data may not contain Ctrl-Z or ESC")
        self._state = _State.WAITING
        self._pending.deadline = now + timeout
        return bytes(data) + b"\x1a"

    def cancel_prompt(self) -> bytes:
        """Abort a prompt with ESC (the modem answers OK or nothing)."""
        self._state = _State.IDLE
        self._pending = None
        return b"\x1b"

    def next_timer(self) -> float | None:
        return self._pending.deadline if self._pending is not None else None

    def handle_timer(self, now: float) -> None:
        pending = self._pending
        if pending is not None and now >= pending.deadline:
            self._events.append(CommandTimeout(pending.command, tuple(pending.lines)))
            self.stats.timeouts += 1
            self._pending = None
            self._state = _State.IDLE

    def reset(self) -> None:
        """Forget any partial line and command (after a reopen or a resync)."""
        self._buffer.clear()
        self._discarding = False
        self._pending = None
        self._state = _State.IDLE
        self._urc_waiting_data = None

    # ------------------------------------------------------------------ input
    @property
    def raw(self) -> bool:
        return self._state is _State.RAW

    def take_raw(self) -> bytes:
        """Leave the binary stream state: returns the bytes received since ``CONNECT``."""
        data = bytes(self._buffer)
        if self._raw_after_cr and data.startswith(b"\n"):
            data = data[1:]  # the LF of "CONNECT\r\n", not the first audio byte
        self._buffer.clear()
        self._state = _State.IDLE
        return data

    def receive_data(self, data: bytes, now: float) -> None:
        self._buffer += data
        while self._state is not _State.RAW:
            if self._state is _State.WAITING and self._pending and self._pending.want_prompt:
                stripped = self._buffer.lstrip(b"\r\n")
                if stripped.startswith(b">"):
                    # "> " has no line end: it is the only thing the modem sends before waiting.
                    del self._buffer[:]
                    self._buffer += stripped[1:].lstrip(b" ")
                    self._state = _State.PROMPT
                    self._events.append(Prompt(self._pending.command))
                    continue
            end = self._find_line_end()
            if end < 0:
                if len(self._buffer) > self.max_line:
                    self.stats.noise_bytes += len(self._buffer)
                    self._buffer.clear()
                    self._discarding = True
                return
            raw = bytes(self._buffer[:end])
            self._raw_after_cr = self._buffer[end] == 0x0D
            del self._buffer[: end + 1]
            if self._discarding:
                self._discarding = False
                self.stats.noise_bytes += len(raw)
                continue
            self._line(raw)

    def _find_line_end(self) -> int:
        cr = self._buffer.find(b"\r")
        lf = self._buffer.find(b"\n")
        if cr < 0 or lf < 0:
            return max(cr, lf)
        return min(cr, lf)

    def _line(self, raw: bytes) -> None:
        if not raw:
            return
        if any(b > 0x7E or (b < 0x20 and b != 0x09) for b in raw):
            self.stats.noise_bytes += sum(1 for b in raw if b > 0x7E or (b < 0x20 and b != 0x09))
        line = raw.decode("latin-1").strip()
        if not line:
            return
        if self._urc_waiting_data is not None:
            head, self._urc_waiting_data = self._urc_waiting_data, None
            self._events.append(Urc(head, line))
            return
        pending = self._pending
        if pending is not None and self._state is _State.WAITING:
            if not pending.echo_seen and not pending.lines and line.upper() == pending.command.upper():
                pending.echo_seen = True
                self.stats.echoes += 1
                return
            if self._is_urc(line, pending.info_prefix):
                self._urc(line)
                return
            if line in FINAL_OK or line in FINAL_ERROR or line.startswith("CONNECT") or _CME.match(line):
                result = CommandResult(pending.command, line, tuple(pending.lines))
                if not result.ok:
                    self.stats.errors += 1
                self._events.append(result)
                self._pending = None
                self._state = _State.RAW if (pending.raw_after and result.ok) else _State.IDLE
                return
            pending.lines.append(line)
            return
        if self._is_urc(line, ""):
            self._urc(line)
        else:
            self.stats.unknown_lines += 1
            self._events.append(Urc(line, known=False))

    def _is_urc(self, line: str, info_prefix: str) -> bool:
        upper = line.upper()
        if info_prefix and upper.startswith(info_prefix):
            return False
        return any(upper.startswith(prefix) for prefix in self.urc_prefixes)

    def _urc(self, line: str) -> None:
        self.stats.urcs += 1
        upper = line.upper()
        if any(upper.startswith(prefix) for prefix in self.two_line_urcs):
            self._urc_waiting_data = line
            return
        self._events.append(Urc(line))

    def next_event(self) -> AtEvent | None:
        return self._events.popleft() if self._events else None

    def events(self) -> list[AtEvent]:
        out = list(self._events)
        self._events.clear()
        return out
