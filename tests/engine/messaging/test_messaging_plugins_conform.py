"""The three messaging plugins are well-formed plugins and can run side by side in one engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from engine.testing import check_plugin_module, open_test_engine
from plugins.chat import plugin as chat_plugin
from plugins.email import plugin as email_plugin
from plugins.sms import plugin as sms_plugin


@pytest.mark.parametrize("module", [email_plugin, sms_plugin, chat_plugin], ids=lambda m: m.__name__)
def test_plugin_module_conforms(module) -> None:
    assert check_plugin_module(module) == []


async def test_all_three_share_one_schema_in_one_engine(tmp_path: Path) -> None:
    async with open_test_engine("", plugins=[email_plugin, sms_plugin, chat_plugin], data_dir=tmp_path) as engine:
        assert {"email", "sms", "chat"} <= set(engine.channels)
        with trio.fail_after(30):
            while not engine.ready()[0]:
                await trio.sleep(0.02)
        tables = await engine.store.fetchall("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'msg_%'")
        assert {t["name"] for t in tables} >= {"msg_conversations", "msg_messages", "msg_outbox", "msg_do_not_contact"}
