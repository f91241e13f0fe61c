"""Opt-outs for the dialer service: one do-not-call list for every campaign, fed by every channel.

Voice opt-outs (an agent's ``do-not-call`` disposition) are in the dialer's audit log; other channels'
(an SMS "STOP") in the messaging layer's ``msg_do_not_contact`` table. At start both are loaded quietly
(they were audited when they happened); while running, the campaign loops read the messaging table's
new rows before each pass and each campaign audits them as ``opt-out`` records.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import trio

from .dialing import DoNotCallList
from .dialing.leads import opt_out_number

log = logging.getLogger("centralita.dialer")

__all__ = ["OptOuts"]

#: rows read per query (a backlog is read in several)
_BATCH = 1000


class OptOuts:
    def __init__(self, engine: Any, clock: Callable[[], float]) -> None:
        self.engine = engine  # its store is opened after the service is made
        self.clock = clock
        self.dnc = DoNotCallList()
        self._seen = 0  # rowid of the last messaging opt-out read
        self._lock = trio.Lock()  # campaign loops share the cursor: each opt-out is applied once

    async def restore(self, regions: Iterable[str]) -> None:
        """Everyone who opted out before this start, on any channel."""
        rows = await self.engine.store.fetchall("SELECT time, record FROM dialer_audit WHERE kind = 'opt-out'")
        for row in rows:
            record = json.loads(row["record"])
            if record.get("number"):
                self.dnc.opt_out(record["number"], str(record.get("detail", {}).get("channel", "voice")), row["time"])
        regions = sorted(set(regions))
        while batch := await self._new_messaging_opt_outs():
            for channel, address, created in batch:
                for region in regions:
                    number = opt_out_number(address, region)
                    if number is not None and self.dnc.match(number) is None:
                        self.dnc.opt_out(number, channel, created)

    async def apply_new(self, campaigns: Iterable[Any]) -> None:
        """Other channels' new opt-outs reach every campaign before its next dial."""
        async with self._lock:
            new = await self._new_messaging_opt_outs()
        now = self.clock()
        for channel, address, _created in new:
            for campaign in campaigns:
                number = opt_out_number(address, campaign.settings.region)
                if number is not None:
                    campaign.dialer.opted_out(number, channel, now, note=f"{channel} opt-out")
                    log.info("campaign %s: %s opted out on %s; not dialed again", campaign.settings.name, number, channel)

    async def _new_messaging_opt_outs(self) -> list[tuple[str, str, float]]:
        """Opt-outs the messaging layer recorded since last asked, if a messaging channel runs."""
        store = self.engine.store
        table = await store.fetchone("SELECT 1 AS present FROM sqlite_master WHERE type = 'table' "
                                     "AND name = 'msg_do_not_contact'")
        if table is None:
            return []
        rows = await store.fetchall("SELECT rowid AS seq, channel, address, created FROM msg_do_not_contact "
                                    "WHERE rowid > ? ORDER BY rowid LIMIT ?", (self._seen, _BATCH))
        if rows:
            self._seen = int(rows[-1]["seq"])
        return [(str(r["channel"]), str(r["address"]), float(r["created"])) for r in rows]
