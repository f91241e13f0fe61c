"""The hardware plugins inside the real engine: drivers registered, devices run, found by capability."""

from __future__ import annotations

import trio

from engine import CliRegistry, DeviceDriverRegistry
from engine.abc import Capability, DeviceHealth
from engine.testing import check_plugin_module, open_test_engine
from hardware import plugin as cli_plugin
from hardware.dtmf_board import plugin as board_plugin
from hardware.gsm_modem import plugin as gsm_plugin
from hardware.headset import plugin as headset_plugin
from hardware.voice_modem import plugin as voice_plugin

PLUGINS = [voice_plugin, gsm_plugin, board_plugin, headset_plugin, cli_plugin]


def test_plugin_modules_follow_the_hook_contract() -> None:
    for module in PLUGINS:
        assert check_plugin_module(module) == [], module.__name__
    registry = DeviceDriverRegistry()
    for module in PLUGINS[:4]:
        module.centralita_register_devices(registry)
    assert sorted(registry) == ["dtmf-board", "gsm-modem", "headset", "voice-modem"]  # CONTRACT.md names
    commands = CliRegistry()
    cli_plugin.centralita_register_cli_commands(commands)
    assert sorted(commands) == ["devices", "firmware-test"]


async def test_engine_runs_emulated_devices_and_a_channel_finds_sms_by_capability(
    nursery, voice_emulator, gsm_emulator, tmp_path
) -> None:
    config = f"""
[[devices]]
name = "line1"
driver = "voice-modem"
port = "{voice_emulator.link}"
profile = "generic"
options = {{ command_timeout = 1.0 }}

[[devices]]
name = "gsm"
driver = "gsm-modem"
port = "{gsm_emulator.link}"
options = {{ command_timeout = 1.0 }}
"""
    async with open_test_engine(config, plugins=PLUGINS, data_dir=tmp_path) as engine:
        line, gsm = engine.devices.get("line1"), engine.devices.get("gsm")
        with trio.fail_after(15):
            await line.wait_health(DeviceHealth.OK)
            await gsm.wait_health(DeviceHealth.OK)
        (sms_device,) = engine.devices.with_capability(Capability.SMS)
        assert sms_device is gsm
        assert [d for d in engine.devices.with_capability(Capability.VOICE_LINE)] == [line]
        status = engine.status()["devices"]
        assert status["line1"]["health"] == "ok" and status["gsm"]["registration"] == "registered (home)"
        received = []

        async def store(sms) -> None:
            received.append(sms.text)

        sms_device.set_message_handler(store)
        await gsm_emulator.deliver_sms("+34600123123", "hola desde el engine")
        await gsm_emulator.wait_until(lambda e: not e.storage and e.deleted)
        assert received == ["hola desde el engine"]
        ref = await sms_device.send_sms("+34600123123", "respuesta")
        assert gsm_emulator.sent[-1].text == "respuesta" and ref


async def test_demo_devices_run_under_the_real_engine(nursery, tmp_path) -> None:
    from hardware.emulators.demo import DemoDevices

    demo = DemoDevices(call_every=3600, sms_every=3600, seed=1, link_dir=str(tmp_path))
    await nursery.start(demo.run)
    config = ""
    for spec in demo.device_specs():
        options = spec.get("options", {})
        config += (
            f'[[devices]]\nname = "{spec["name"]}"\ndriver = "{spec["driver"]}"\nport = "{spec["port"]}"\n'
            f'profile = "{spec["profile"]}"\n'
            + (f'options = {{ line = "{options["line"]}" }}\n' if options else "")
            + "\n"
        )
    (tmp_path / "data").mkdir()
    async with open_test_engine(config, plugins=PLUGINS, data_dir=tmp_path / "data") as engine:
        with trio.fail_after(15):
            for name in ("demo-line", "demo-gsm", "demo-board"):
                await engine.devices.get(name).wait_health(DeviceHealth.OK)
    demo.close()
