"""The public API is pinned: adding is a deliberate edit here, removing breaks plugin authors."""

from __future__ import annotations

import engine
import engine.abc
import engine.testing

ENGINE_EXPORTS = {
    "CONTRACT_EVENT_NAMES", "PLUGIN_GROUP", "AgentState", "BusStatistics", "ChannelRegistry", "CliRegistry",
    "CompliancePolicyRegistry", "Config", "ConfigError", "ConfigSectionRegistry", "Contact", "CrmRegistry",
    "DeviceBusyError", "DeviceDirectory", "DeviceDriverRegistry", "DeviceError", "Direction", "Disposition",
    "EngineError", "Event", "EventBus", "HttpRouteRegistry", "Interaction", "InteractionKind",
    "InteractionState", "InvalidTransition", "IvrNodeRegistry", "LocalProtocolError", "Migration",
    "MigrationRegistry", "PluginContext", "PluginError", "RegistrationError", "RemoteProtocolError",
    "ServiceRegistry", "StartupError", "__version__", "hookimpl", "load_config", "safe_text",
}

ABC_EXPORTS = {
    "AgentLeg", "Capability", "Channel", "CrmBackend", "Device", "DeviceHealth", "DeviceSpec", "DialResult", "EngineAPI",
    "MessagingChannel", "Service", "VoiceChannel",
}

TESTING_EXPORTS = {
    "TEST_CONSOLE", "FakeChannel", "FakeCrm", "FakeDevice", "FakeVoiceChannel", "check_channel", "check_plugin_module", "check_service_lifecycle", "load_test_config",
    "make_manager", "open_test_engine", "wait_until", "write_prompts",
}


def test_engine_exports_are_pinned() -> None:
    assert set(engine.__all__) == ENGINE_EXPORTS
    for name in engine.__all__:
        assert hasattr(engine, name), name


def test_abc_public_classes_are_pinned() -> None:
    public = {n for n in dir(engine.abc) if not n.startswith("_") and isinstance(getattr(engine.abc, n), type)
              and getattr(engine.abc, n).__module__ == "engine.abc"}
    assert public == ABC_EXPORTS


def test_testing_kit_exports_are_pinned() -> None:
    assert set(engine.testing.__all__) == TESTING_EXPORTS


def test_distribution_name_is_ours() -> None:
    """``hardware`` is also an unrelated PyPI name: we ship as ``centralita`` and depend on no ``hardware``."""
    import importlib.metadata

    dist = importlib.metadata.distribution("centralita")
    assert dist.metadata["Name"] == "centralita"
    assert not any(req.split()[0].lower() in {"hardware", "engine", "plugins"} for req in dist.requires or [])
