"""Every in-tree plugin passes the same conformance checks the test kit offers third-party authors."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest

from engine import PLUGIN_GROUP
from engine.testing import (
    FakeChannel,
    FakeVoiceChannel,
    check_channel,
    check_plugin_module,
    check_service_lifecycle,
    open_test_engine,
)

ENTRY_POINTS = sorted(importlib.metadata.entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name)


def test_every_in_tree_package_is_registered_as_an_entry_point() -> None:
    root = Path(__file__).resolve().parents[2]
    modules = {ep.value for ep in ENTRY_POINTS}
    for top in ("plugins", "hardware"):
        for plugin in sorted((root / top).glob("*/plugin.py")):
            module = f"{top}.{plugin.parent.name}.plugin"
            assert module in modules, f"{module} has hooks but no entry point in pyproject.toml"


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=lambda ep: ep.name)
def test_plugin_module_hooks_are_valid(entry_point: importlib.metadata.EntryPoint) -> None:
    assert check_plugin_module(entry_point.load()) == []


@pytest.mark.parametrize("channel_class", [FakeChannel, FakeVoiceChannel])
def test_the_kits_own_fakes_pass(channel_class: Any) -> None:
    class Context:
        name = "fake"

    assert check_channel(channel_class(Context())) == []


async def test_the_running_channels_of_a_default_engine_pass(tmp_path: Path) -> None:
    config = '[sip]\nlisten = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]\n'
    async with open_test_engine(config, data_dir=tmp_path, entry_points=True) as engine:
        assert engine.channels, "no channel started"
        for name, channel in engine.channels.items():
            assert check_channel(channel) == [], name


async def test_a_service_that_never_starts_is_caught() -> None:
    class Mute:
        async def run(self, *, task_status: Any) -> None:
            import trio

            await trio.sleep_forever()

        async def aclose(self) -> None:
            pass

    problems = await check_service_lifecycle(Mute(), timeout=0.2)
    assert problems == ["run() did not call task_status.started() within 0.2s"]
