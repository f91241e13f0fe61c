"""Outbound dialer (placeholder; full API documented below once complete)."""
from __future__ import annotations

from ._pacing import (Abandon, Connect, Dial, Dialer, DialerStatistics, ModeChanged, OfferPreview,
                      PacingSettings, StopRinging)

__all__ = ["Abandon", "Connect", "Dial", "Dialer", "DialerStatistics", "ModeChanged", "OfferPreview",
           "PacingSettings", "StopRinging"]
