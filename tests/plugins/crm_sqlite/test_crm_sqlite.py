"""The built-in CRM: contacts imported from CSV, VIP tags served first, history kept, exports safe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

import plugins.crm_sqlite.plugin as crm_plugin
from engine import InteractionState, hookimpl
from engine.testing import FakeVoiceChannel, check_plugin_module, open_test_engine, wait_until
from plugins.crm_sqlite._model import CrmInputError, normalise, parse_csv

CONFIG = """
[crm]
priority_tags = { vip = 10 }

[[agents]]
id = "alice"
endpoint = "fake:alice"
wrapup = 0

[[queues]]
name = "support"
members = ["alice"]
wrapup = 0

[[routes]]
match = "100"
queue = "support"
"""

CSV = """name,phones,emails,tags,plan
Ana VIP,+34 911 000 001,ana@example.com,vip,gold
Ben,0034600000002,,,=HYPERLINK("http://evil")
,+34600000003,,,
Bad Phone,12;ATDT555,,,
"""


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)


def test_plugin_hooks_are_valid() -> None:
    assert check_plugin_module(crm_plugin) == []


def test_identities_are_normalised_or_refused() -> None:
    assert normalise("phone", "+34 (911) 000-001") == "+34911000001"
    assert normalise("phone", "0034911000001") == "+34911000001"
    assert normalise("email", "Ana@Example.COM") == "ana@example.com"
    for kind, bad in (("phone", "555;ATH"), ("email", "no-at-sign"), ("fax", "1")):
        with pytest.raises(CrmInputError):
            normalise(kind, bad)


def test_csv_rows_are_imported_or_reported_by_line() -> None:
    rows, problems = parse_csv(CSV)
    assert [r.name for r in rows] == ["Ana VIP", "Ben"]
    assert rows[0].phones == ["+34911000001"] and rows[0].tags == ["vip"] and rows[0].fields == {"plan": "gold"}
    assert [line for line, _ in problems] == [4, 5]
    assert "empty name" in problems[0][1] and "not a phone number" in problems[1][1]


async def test_vip_is_served_first_and_history_is_kept(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[crm_plugin, Channels()], data_dir=tmp_path) as engine:
        crm = engine.crm["sqlite"]
        imported, problems = await crm.import_csv(CSV)
        assert imported == 2 and len(problems) == 2
        voice = engine.channels["fake"]
        ordinary = voice.call("+34600999999", "100")
        vip = voice.call("+34911000001", "100")
        await wait_until(lambda: vip.state is InteractionState.QUEUED and ordinary.state is InteractionState.QUEUED)
        voice.register("fake:alice")
        await wait_until(lambda: vip.state is InteractionState.ACTIVE)
        assert ordinary.state is InteractionState.QUEUED  # the VIP arrived later but was served first
        await voice.caller_hangs_up(vip)
        contact = await crm.lookup(phone="+34 911 000 001")
        assert contact is not None and contact.name == "Ana VIP" and contact.segments == ("vip",)
        history: list[dict[str, Any]] = []
        with trio.fail_after(20):  # written by the CRM's own task after the hang-up
            while not history:
                history = await crm.history(contact.id)
                await trio.sleep(0.02)
        assert history[0]["interaction"] == vip.id and history[0]["agent"] == "alice"
        await crm.add_note(contact.id, "alice", "Asked about the gold plan")
        assert [n["text"] for n in await crm.notes(contact.id)] == ["Asked about the gold plan"]
        exported = await crm.export_csv()
        assert "'=HYPERLINK" in exported and '\n=HYPERLINK' not in exported
