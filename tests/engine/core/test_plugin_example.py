"""The worked example in docs/plugins.md works: discovered by entry point, configured, consulted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import engine
from engine._plugins import PluginManager
from engine.testing import check_plugin_module, open_test_engine

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "centralita_vip"


@pytest.fixture
def vip_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install the example the way pip would, as far as discovery sees it: a dist-info with entry points."""
    site = tmp_path / "site"
    dist = site / "centralita_vip-1.0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: centralita-vip\nVersion: 1.0.0\n")
    (dist / "entry_points.txt").write_text("[centralita]\nvip = centralita_vip.plugin\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(EXAMPLE))
    yield
    for name in [m for m in sys.modules if m.startswith("centralita_vip")]:
        del sys.modules[name]


def test_example_hooks_are_valid(vip_installed: None) -> None:
    import centralita_vip.plugin as vip

    assert check_plugin_module(vip) == []


def test_example_is_discovered_through_the_entry_point(vip_installed: None) -> None:
    manager = PluginManager()
    manager.load_entry_points()
    info = manager.infos["vip"]
    assert info.loaded and info.error is None and info.version == "1.0.0"
    disabled = PluginManager()
    disabled.load_entry_points(disabled=["vip"])
    assert disabled.infos["vip"].enabled is False and disabled.pm.get_plugin("vip") is None


async def test_example_gives_vip_callers_priority(vip_installed: None, tmp_path: Path) -> None:
    import centralita_vip.plugin as vip

    from engine import hookimpl
    from engine.testing import FakeChannel

    class Channels:
        @hookimpl
        def centralita_register_channels(self, registry):
            registry.add("fake", FakeChannel)

    config = '[vip]\nnumbers = ["+34911222333"]\npriority = 20\n'
    async with open_test_engine(config, plugins=[vip, Channels()], data_dir=tmp_path) as running:
        channel = running.channels["fake"]
        assert isinstance(channel, FakeChannel)
        vip_chat = channel.receive("+34911222333", "support", "hello")
        other = channel.receive("+34600000000", "support", "hi")
        assert vip_chat.attributes["priority"] == 20
        assert "priority" not in other.attributes


def test_example_bad_config_is_reported_with_line(vip_installed: None, tmp_path: Path) -> None:
    import centralita_vip.plugin as vip

    path = tmp_path / "c.toml"
    path.write_text("[vip]\npriority = 0\n")
    with pytest.raises(engine.ConfigError) as info:
        engine.load_config(path, plugin_sections={"vip": vip.VipSettings})
    assert info.value.problems == [f"{path}:2: vip.priority: expected at least 1, got integer 0"]
