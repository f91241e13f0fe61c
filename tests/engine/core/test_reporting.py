"""Reporting: figures from the queue event log match what happened, by the contract's definitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from engine import InteractionState, hookimpl
from engine.reporting import agents_needed, compute, forecast
from engine.routing.erlang import erlang_c
from engine.testing import FakeVoiceChannel, open_test_engine, wait_until


def row(ts: float, event: str, **fields: Any) -> dict[str, Any]:
    return {"ts": ts, "event": event, "fields": fields}


def test_service_level_asa_aht_and_abandonment_by_the_definitions() -> None:
    log = [
        row(0, "QueueCallerJoin", Queue="q"), row(10, "AgentConnect", Queue="q", Agent="a", HoldTime=10),
        row(1, "QueueCallerJoin", Queue="q"), row(31, "AgentConnect", Queue="q", Agent="b", HoldTime=30),
        row(2, "QueueCallerJoin", Queue="q"), row(5, "QueueCallerAbandon", Queue="q", HoldTime=3),   # short
        row(3, "QueueCallerJoin", Queue="q"), row(43, "QueueCallerAbandon", Queue="q", HoldTime=40),  # after T
        row(4, "QueueCallerJoin", Queue="q"), row(14, "QueueCallerAbandon", Queue="q", HoldTime=10),  # within T
        row(100, "AgentComplete", Queue="q", Agent="a", TalkTime=120), row(200, "AgentComplete", Queue="q", Agent="b", TalkTime=60),
        row(7, "QueueCallerJoin", Queue="agent:bob"),  # a direct route is not a queue
    ]
    report = compute(log, threshold=20, short_abandon=5)
    q = report.queues["q"]
    assert (q["offered"], q["answered"], q["abandoned"], q["short_abandoned"]) == (5, 2, 2, 1)
    assert q["service_level"] == round(1 / 3, 4)  # 1 answered within 20 s / (2 answered + 1 abandoned after 20 s)
    assert q["asa"] == 20.0 and q["aht"] == 90.0  # mean talk 90 + no after-call work measured
    assert q["abandon_rate"] == 0.5  # 2 / (5 offered - 1 short)
    assert {a: (f["answered"], f["talk_time"], f["completed"], f["aht"]) for a, f in report.agents.items()} == {
        "a": (1, 120.0, 1, 120.0), "b": (1, 60.0, 1, 60.0)}
    assert list(report.queues) == ["q"]


def test_staffing_meets_the_target_with_the_fewest_agents() -> None:
    rate, aht = 100 / 1800, 180.0  # 100 calls per half hour, 3 minutes each: 10 Erlangs
    needed = agents_needed(rate, aht, target=0.8, threshold=20)
    assert erlang_c(needed, rate, aht, 20).service_level >= 0.8 > erlang_c(needed - 1, rate, aht, 20).service_level
    history = [row(day * 86400 + 9 * 3600 + i, "QueueCallerJoin", Queue="q") for day in range(2) for i in range(100)]
    history += [row(9 * 3600, "AgentComplete", Queue="q", TalkTime=180)]
    (slot,) = forecast(history, days=2, target=0.8, threshold=20)
    assert slot == {"queue": "q", "slot": "09:00", "calls": 100.0, "aht": 180.0, "agents": needed}


CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"

[[queues]]
name = "support"
members = ["alice"]
wrapup = 0

[[routes]]
match = "100"
queue = "support"
"""


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)


async def test_report_from_a_running_engine(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        voice.register("fake:alice")
        answered = voice.call("+34911000001", "100")
        await wait_until(lambda: answered.state is InteractionState.ACTIVE)
        await voice.caller_hangs_up(answered)
        with trio.fail_after(20):  # the log is written by its own task, a moment after the events
            while (report := await engine.report(since=0))["channels"].get("voice", {}).get("contacts") != 1:
                await trio.sleep(0.02)
    assert report["queues"]["support"]["offered"] == 1 and report["queues"]["support"]["answered"] == 1
    assert report["agents"]["alice"]["completed"] == 1
    assert report["channels"]["voice"]["contacts_answered"] == 1 and report["channels"]["voice"]["fcr_pending"] == 1
    assert 0 < report["agents"]["alice"]["occupancy"] <= 1  # alice was available, then busy


@pytest.mark.parametrize("days", [1, 7])
def test_forecast_with_no_history_is_empty(days: int) -> None:
    assert forecast([], days=days) == []
