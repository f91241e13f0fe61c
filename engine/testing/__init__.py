"""A test kit for plugin authors (like ``trio.testing``): run the real engine with your plugin."""

from ._conformance import check_channel, check_plugin_module, check_service_lifecycle
from ._fakes import FakeChannel, FakeCrm, FakeDevice, FakeVoiceChannel
from ._harness import TEST_CONSOLE, load_test_config, make_manager, open_test_engine, wait_until
from ._prompts import write_prompts

__all__ = [
    "TEST_CONSOLE",
    "FakeChannel",
    "FakeCrm",
    "FakeDevice",
    "FakeVoiceChannel",
    "check_channel",
    "check_plugin_module",
    "check_service_lifecycle",
    "load_test_config",
    "make_manager",
    "open_test_engine",
    "wait_until",
    "write_prompts",
]
