"""The trio shell around :class:`hardware._at.AtMachine`: one task reads the port, callers await commands.

One task owns the port's reading side (reliability.md: "one trio task owns each port"); commands are
serialised with a lock, and each waits for its own result or its own deadline. URCs go to a bounded
channel; when nobody drains it they are dropped and counted rather than blocking the reader.

A driver can take the byte stream away from the AT parser (voice mode: DLE-shielded audio) with
:meth:`AtPort.divert`; the diverted sink returns the bytes that are AT text again (after ``<DLE><ETX>``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import trio

from engine import DeviceError

from ._at import AtCommandError, AtMachine, CommandResult, CommandTimeout, Prompt, Urc

__all__ = ["AtCommandTimeout", "AtPort"]


class AtCommandTimeout(DeviceError):
    """The modem did not finish answering a command in time. ``lines`` holds what it did say."""

    def __init__(self, command: str, lines: tuple[str, ...] = ()) -> None:
        self.command = command
        self.lines = lines
        said = f" (it said: {' | '.join(lines)})" if lines else " (no answer)"
        super().__init__(f"{command}: timed out{said}")


class AtPort:
    def __init__(self, stream: Any, machine: AtMachine, *, urc_buffer: int = 256) -> None:
        self.stream = stream
        self.machine = machine
        self._lock = trio.Lock()
        self._done = trio.Event()
        self._result: CommandResult | CommandTimeout | None = None
        self._prompt = trio.Event()
        self._urc_send, self.urcs = trio.open_memory_channel[Urc](urc_buffer)
        self._divert: Callable[[bytes], bytes | None] | None = None
        self._divert_next: Callable[[bytes], bytes | None] | None = None
        self.urcs_dropped = 0
        self.transcript: list[tuple[str, str]] = []  # (direction, text) of the last exchanges, for reports
        self._closed = False

    # ------------------------------------------------------------------ reading
    async def run_reader(self) -> None:
        """Read until the port fails; raises :class:`hardware._serial.SerialDisconnected` on unplug."""
        try:
            while True:
                data = await self.stream.receive_some(4096)
                self.feed(data)
        finally:
            self._closed = True
            self._done.set()
            self._prompt.set()

    def statistics(self) -> dict[str, int]:
        """The AT machine's counters (``at_commands``, ``at_timeouts``...) and dropped URCs."""
        return {**{f"at_{k}": v for k, v in vars(self.machine.stats).items()}, "urcs_dropped": self.urcs_dropped}

    def feed(self, data: bytes) -> None:
        while data:
            if self._divert is not None:
                rest = self._divert(data)
                if rest is None:
                    return
                self._divert = None
                data = rest
                continue
            self.machine.receive_data(data, trio.current_time())
            self._dispatch()
            data = b""
            if self.machine.raw:
                # CONNECT: what follows in this very read is already voice, not AT text.
                self._divert = self._divert_next or (lambda _data: None)
                self._divert_next = None
                data = self.machine.take_raw()

    def divert(self, sink: Callable[[bytes], bytes | None] | None) -> None:
        """Send raw bytes to ``sink`` until it returns the AT text that follows (``None`` = keep going)."""
        self._divert = sink

    def _dispatch(self) -> None:
        for event in self.machine.events():
            if isinstance(event, Urc):
                self._record("<", event.line + (f" {event.data}" if event.data else ""))
                try:
                    self._urc_send.send_nowait(event)
                except trio.WouldBlock:
                    self.urcs_dropped += 1
            elif isinstance(event, Prompt):
                self._record("<", "> ")
                self._prompt.set()
            else:
                if isinstance(event, CommandResult):
                    for line in event.lines:
                        self._record("<", line)
                    self._record("<", event.final)
                self._result = event
                self._done.set()
                self._prompt.set()  # an error instead of the "> " prompt ends the wait for it too

    def _record(self, direction: str, text: str) -> None:
        self.transcript.append((direction, text))
        if len(self.transcript) > 200:
            del self.transcript[:100]

    # ------------------------------------------------------------------ commands
    async def command(
        self,
        command: str,
        *,
        timeout: float = 2.0,
        check: bool = True,
        prompt_data: bytes | None = None,
        divert: Callable[[bytes], bytes | None] | None = None,
    ) -> CommandResult:
        """Send ``command`` and wait for its final result code.

        ``check`` raises :class:`AtCommandError` on ``ERROR``/``+CME ERROR``; a deadline raises
        :class:`AtCommandTimeout` (the machine is idle again; resynchronising is the driver's call).
        ``prompt_data`` is written after the ``> `` prompt, followed by Ctrl-Z (``AT+CMGS``).
        ``divert``: on ``CONNECT`` every following byte goes to this sink (see :meth:`divert`).
        """
        async with self._lock:
            if self._closed:
                raise DeviceError("port closed")
            self._done = trio.Event()
            self._prompt = trio.Event()
            self._result = None
            now = trio.current_time()
            self._divert_next = divert
            wire = self.machine.send_command(
                command,
                now,
                timeout=timeout,
                want_prompt=prompt_data is not None,
                raw_after=divert is not None,
            )
            self._record(">", command)
            await self.stream.send_all(wire)
            if prompt_data is not None:
                with trio.move_on_at(now + timeout):
                    await self._prompt.wait()
                if self._prompt.is_set() and self.machine.busy and not self._done.is_set():
                    self._record(">", prompt_data.decode("latin-1"))
                    wire = self.machine.send_prompt_data(prompt_data, trio.current_time(), timeout=timeout)
                    await self.stream.send_all(wire)
            deadline = self.machine.next_timer()
            with trio.move_on_at(deadline if deadline is not None else math.inf):
                await self._done.wait()
            if not self._done.is_set():
                self.machine.handle_timer(trio.current_time())
                self._dispatch()
            result = self._result
            if result is None:
                if self._closed:
                    raise DeviceError(f"{command}: port closed before the answer")
                raise AtCommandTimeout(command)
            if isinstance(result, CommandTimeout):
                raise AtCommandTimeout(command, result.lines)
            if check and not result.ok:
                raise AtCommandError(result)
            return result

    async def write_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def resync(self, *, attempts: int = 3, timeout: float = 1.0) -> bool:
        """Get the modem's attention: ``AT`` until ``OK``, dropping stale input in between."""
        for _ in range(attempts):
            discard = getattr(self.stream, "discard_input", None)
            if discard is not None:
                discard()
            self.machine.reset()
            try:
                result = await self.command("AT", timeout=timeout, check=False)
            except AtCommandTimeout:
                continue
            if result.ok:
                return True
        return False
