"""A progressive campaign runs on the real engine: leads imported by the CLI are dialed once each,
answered calls reach a free agent, busy numbers are retried later, and the audit log tells it all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from engine import InteractionState, hookimpl
from engine.testing import FakeVoiceChannel, open_test_engine

REPO = Path(__file__).resolve().parents[3]

CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"

[[queues]]
name = "outbound"
members = ["alice"]

[[campaigns]]
name = "renewals"
mode = "progressive"
agents = ["alice"]
caller_id = "+34910000000"
ring_timeout = 15
[campaigns.schedule]
start = "00:00"
end = "23:59"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
timezone = "UTC"
"""

LEADS = "name,phone\nAna,+34600000001\nBea,+34600000002\nCarlos,+34600000003\nAna again,+34600000001\nBad,12;ATH\n"


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)


def import_leads(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "centralita.toml"
    config.write_text(f'[engine]\ndata_dir = "{tmp_path}"\n' + CONFIG)
    leads = tmp_path / "leads.csv"
    leads.write_text(LEADS)
    return subprocess.run(
        [sys.executable, "-m", "engine", "import-leads", str(leads), "--campaign", "renewals", "--region", "ES",
         "--config", str(config), "--json"],
        capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


async def test_campaign_dials_each_lead_once_and_connects_answers(tmp_path: Path) -> None:
    result = import_leads(tmp_path)
    assert result.returncode == 1, result.stderr  # some rows were rejected...
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["imported"] == 3 and report["rejected"] >= 1  # ...the duplicate and the AT-command text
    assert "leads.csv:6:" in result.stderr
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        voice.called["+34600000002"] = "busy"
        voice.register("fake:alice")
        with trio.fail_after(30):
            while len(voice.dialed) < 3 or any(
                i.state is not InteractionState.ENDED for i in engine.all_interactions() if i.direction.value == "outbound"
            ):
                for interaction in list(engine.interactions.values()):
                    if interaction.state is InteractionState.ACTIVE and interaction.agent == "alice":
                        await engine.interaction_action(interaction.id, "hangup", {})
                await trio.sleep(0.02)
        assert sorted(voice.dialed) == ["+34600000001", "+34600000002", "+34600000003"]
        connected = [i for i in engine.all_interactions() if i.agent == "alice"]
        assert sorted(i.to for i in connected) == ["+34600000001", "+34600000003"]
        audit = await engine.store.fetchall("SELECT kind FROM dialer_audit WHERE campaign = 'renewals' ORDER BY seq")
        kinds = [row["kind"] for row in audit]
        assert kinds.count("dial") == 3 and "busy" in kinds and kinds.count("answer-live") == 2
        cdr = {row["dst"]: row["disposition"] for row in await engine.cdr()}
        assert cdr == {"+34600000001": "ANSWERED", "+34600000002": "BUSY", "+34600000003": "ANSWERED"}
    # a restart dials nobody again
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        voice.register("fake:alice")
        campaign = engine.dialer.campaigns["renewals"]
        with trio.fail_after(30):  # several full passes with alice free: a wrong hopper would dial now
            while campaign.passes < 5:
                await trio.sleep(0.01)
        assert voice.dialed == []
