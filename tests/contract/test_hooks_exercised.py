"""Every hookspec is really called by the engine: a probe plugin implements them all and records calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from engine import InteractionState, hookimpl, hookspecs
from engine._cli import build_parser
from engine._plugins import PluginManager
from engine.testing import FakeCrm, FakeDevice, FakeVoiceChannel, open_test_engine

ALL_HOOKS = {name for name in dir(hookspecs) if name.startswith("centralita_")}


class Probe:
    """Implements every hook; each records that it ran (and does the least a real plugin would)."""

    def __init__(self) -> None:
        self.called: set[str] = set()

    @hookimpl
    def centralita_add_config_sections(self, registry: Any) -> None:
        self.called.add("centralita_add_config_sections")

    @hookimpl
    def centralita_register_migrations(self, registry: Any) -> None:
        self.called.add("centralita_register_migrations")

    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        self.called.add("centralita_register_channels")
        registry.add("fake", FakeVoiceChannel)

    @hookimpl
    def centralita_register_crm_backends(self, registry: Any) -> None:
        self.called.add("centralita_register_crm_backends")
        registry.add("fake-crm", lambda context: FakeCrm())

    @hookimpl
    def centralita_register_devices(self, registry: Any) -> None:
        self.called.add("centralita_register_devices")
        registry.add("fake-board", FakeDevice)

    @hookimpl
    def centralita_register_services(self, registry: Any) -> None:
        self.called.add("centralita_register_services")

    @hookimpl
    def centralita_register_ivr_nodes(self, registry: Any) -> None:
        self.called.add("centralita_register_ivr_nodes")

    @hookimpl
    def centralita_register_compliance_policies(self, registry: Any) -> None:
        self.called.add("centralita_register_compliance_policies")

    @hookimpl
    def centralita_register_amd_detectors(self, registry: Any) -> None:
        self.called.add("centralita_register_amd_detectors")

    @hookimpl
    def centralita_register_cli_commands(self, registry: Any) -> None:
        self.called.add("centralita_register_cli_commands")

    @hookimpl
    def centralita_register_http_routes(self, registry: Any) -> None:
        self.called.add("centralita_register_http_routes")

    @hookimpl
    def centralita_choose_agent(self, interaction: Any, queue: str, candidates: Any) -> str | None:
        self.called.add("centralita_choose_agent")
        return None

    @hookimpl(wrapper=True)
    def centralita_interaction_priority(self, interaction: Any) -> Any:
        # a wrapper around the decision: sees the result of the others and may change it
        result = yield
        self.called.add("centralita_interaction_priority")
        return result

    @hookimpl
    def centralita_allow_dial(self, number: str, caller: str, purpose: str) -> bool | None:
        self.called.add("centralita_allow_dial")
        return False if number.startswith("+1900") else None

    @hookimpl
    def centralita_configure(self, config: Any) -> None:
        self.called.add("centralita_configure")

    @hookimpl
    def centralita_engine_started(self, engine: Any) -> None:
        self.called.add("centralita_engine_started")

    @hookimpl
    def centralita_engine_stopping(self, engine: Any) -> None:
        self.called.add("centralita_engine_stopping")

    @hookimpl
    def centralita_event(self, event: Any) -> None:
        self.called.add("centralita_event")

    @hookimpl
    def centralita_interaction_ended(self, interaction: Any) -> None:
        self.called.add("centralita_interaction_ended")


CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"
wrapup = 0

[[queues]]
name = "q"
members = ["alice"]

[[routes]]
match = "100"
queue = "q"

[[devices]]
name = "board"
driver = "fake-board"
"""


async def test_every_hook_is_called_by_the_engine(tmp_path: Path) -> None:
    probe = Probe()
    async with open_test_engine(CONFIG, plugins=[probe], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        voice.register("fake:alice")
        call = voice.call("+34911000111", "100")
        with trio.fail_after(20):
            while call.state is not InteractionState.ACTIVE:
                await trio.sleep(0.01)
        await voice.caller_hangs_up(call)
        assert engine.check_dial("+34911000222") == "+34911000222"
        try:
            engine.check_dial("+19005550000", purpose="dialer")
        except ValueError as exc:
            assert "not allowed" in str(exc)
        else:
            raise AssertionError("the allow_dial veto was ignored")
    manager = PluginManager()
    manager.register(probe, "probe")
    build_parser(manager)
    assert ALL_HOOKS - probe.called == set()
