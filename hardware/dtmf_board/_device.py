"""The DTMF-board driver: digits decoded by a serial board become DTMF events on the line it watches.

``[[devices]]`` options: ``framing`` (default from the profile), ``line`` (the device name of the
analog line a single-channel board listens to) or ``lines`` (``{channel = "line-name"}`` for
multi-channel boards). Each digit is emitted as :class:`BoardDtmf` and published on the bus as
``DTMFEnd`` (``Direction`` ``Received``) with ``Device`` set to the watched line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import trio

from engine import DeviceError
from engine.abc import Capability, DeviceHealth, DeviceSpec

from .._device import ReconnectPolicy, SerialDevice
from .._serial import SerialSettings
from ._frames import FRAMINGS, FrameParser

__all__ = ["PROFILES", "BoardDtmf", "DtmfBoard"]

#: profile -> (framing, baud rate)
PROFILES: dict[str, tuple[str, int]] = {
    "generic": ("ascii", 9600),
    "ascii": ("ascii", 9600),
    "ascii-lines": ("ascii-lines", 9600),
    "mt8870-nibble": ("mt8870-nibble", 9600),
}


@dataclass(frozen=True)
class BoardDtmf:
    device: str
    line: str
    digit: str
    channel: int


class DtmfBoard(SerialDevice):
    capabilities = Capability.DTMF_IN

    def __init__(
        self, spec: DeviceSpec, context: Any = None, *, reconnect: ReconnectPolicy | None = None
    ) -> None:
        options = dict(spec.options)
        if spec.profile not in PROFILES:
            raise DeviceError(
                f"device {spec.name}: unknown dtmf-board profile {spec.profile!r} (known: {', '.join(PROFILES)})"
            )
        framing, baud = PROFILES[spec.profile]
        self.framing = str(options.get("framing", framing))
        if self.framing not in FRAMINGS:
            raise DeviceError(
                f"device {spec.name}: unknown framing {self.framing!r} (known: {', '.join(FRAMINGS)})"
            )
        super().__init__(
            spec, context, serial=SerialSettings(int(options.get("baudrate", baud))), reconnect=reconnect
        )
        lines = options.get("lines") or {}
        self.lines: dict[int, str] = {int(k): str(v) for k, v in dict(lines).items()}
        self.default_line = str(options.get("line", spec.name))
        self.parser = FrameParser(self.framing)
        self.counters.update({"digits": 0, "noise_bytes": 0})

    def line_for(self, channel: int) -> str:
        return self.lines.get(channel, self.default_line)

    def statistics(self) -> Mapping[str, Any]:
        self.counters["noise_bytes"] = self.parser.noise
        return super().statistics()

    def describe(self) -> Mapping[str, Any]:
        return {**super().describe(), "framing": self.framing, "lines": self.lines or {0: self.default_line}}

    async def _session(self, stream: Any) -> None:
        self.parser = FrameParser(self.framing)
        self._set_health(DeviceHealth.OK)
        bus = getattr(self.context, "bus", None)
        while True:
            data = await stream.receive_some(1024)
            for item in self.parser.feed(data):
                line = self.line_for(item.channel)
                self.counters["digits"] += 1
                self._emit(BoardDtmf(self.name, line, item.digit, item.channel))
                if bus is not None:
                    bus.publish("DTMFEnd", Digit=item.digit, DurationMs=0, Direction="Received", Device=line)
            await trio.lowlevel.checkpoint()
