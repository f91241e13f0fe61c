"""Serial DTMF decoder boards (ASCII digits, or MT8870 nibbles)."""

from __future__ import annotations

from ._device import PROFILES, BoardDtmf, DtmfBoard
from ._frames import FRAMINGS, BoardDigit, FrameParser

__all__ = ["FRAMINGS", "PROFILES", "BoardDigit", "BoardDtmf", "DtmfBoard", "FrameParser"]
