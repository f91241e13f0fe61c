"""Device health as users meet it: ``DeviceStateChange`` on the bus and ``centralita devices --config``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import trio

from engine import EventBus
from engine.abc import DeviceHealth, DeviceSpec
from engine.testing import open_test_engine
from hardware.discovery import run_devices_cli
from hardware.gsm_modem import plugin as gsm_plugin
from hardware.testing import FAST_RECONNECT, FAST_VOICE_TIMINGS
from hardware.voice_modem import VoiceModem
from hardware.voice_modem import plugin as voice_plugin

PLUGINS = [voice_plugin, gsm_plugin]
REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path, voice_link: str, gsm_link: str) -> str:
    return f"""[engine]
data_dir = "{tmp_path.as_posix()}"
drain_timeout = 1

[[devices]]
name = "line1"
driver = "voice-modem"
port = "{voice_link}"
options = {{ command_timeout = 1.0 }}

[[devices]]
name = "gsm"
driver = "gsm-modem"
port = "{gsm_link}"
options = {{ command_timeout = 1.0 }}
"""


async def test_devices_cli_shows_each_configured_devices_health_from_the_running_engine(
    nursery, voice_emulator, gsm_emulator, tmp_path, capsys
) -> None:
    text = _config(tmp_path, voice_emulator.link, gsm_emulator.link)
    config_file = tmp_path / "centralita.toml"
    config_file.write_text(text)
    async with open_test_engine(text, plugins=PLUGINS, data_dir=tmp_path) as engine:
        line, gsm = engine.devices.get("line1"), engine.devices.get("gsm")
        with trio.fail_after(15):
            await line.wait_health(DeviceHealth.OK)
            await gsm.wait_health(DeviceHealth.OK)
        capsys.readouterr()
        assert run_devices_cli(["--config", str(config_file)]) == 0
        out = capsys.readouterr().out
        assert "line1: ok" in out and "gsm: ok" in out
        assert "caller ID on" in out  # the emulated modem accepted AT+VCID=1
        assert "signal 20/31" in out and "network registered (home)" in out

        gsm_emulator.unplug()
        with trio.fail_after(10):
            await gsm.wait_health(DeviceHealth.DISCONNECTED)
        assert run_devices_cli(["--config", str(config_file), "--json"]) == 0
        shown = {d["name"]: d for d in json.loads(capsys.readouterr().out)["configured"]}
        assert shown["gsm"]["health"] == "disconnected" and shown["gsm"]["running"] is True
        assert shown["gsm"]["reason"]  # the last error is shown
        assert shown["line1"]["health"] == "ok"


async def test_a_configured_device_that_never_reported_is_not_shown_as_healthy(tmp_path, capsys) -> None:
    config_file = tmp_path / "centralita.toml"
    config_file.write_text(
        f'[engine]\ndata_dir = "{tmp_path.as_posix()}"\n\n[[devices]]\nname = "line9"\n'
        'driver = "voice-modem"\nport = "/dev/does-not-exist"\n'
    )
    assert run_devices_cli(["--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert "line9: no report" in out and ": ok" not in out


async def test_device_state_change_events_follow_unplug_and_replug_with_fields_escaped(
    nursery, voice_emulator, tmp_path
) -> None:
    context = SimpleNamespace(bus=EventBus(), data_dir=tmp_path)
    async with context.bus.subscribe("test", buffer=100) as events:
        line = VoiceModem(
            DeviceSpec("line1", "voice-modem", voice_emulator.link),
            context,
            timings=FAST_VOICE_TIMINGS,
            reconnect=FAST_RECONNECT,
        )
        # a port name carrying CR LF, as a hostile config or a device's answer could
        ghost = VoiceModem(
            DeviceSpec("ghost", "voice-modem", f"{tmp_path}/gone\r\nEvent: Forged"),
            context,
            timings=FAST_VOICE_TIMINGS,
            reconnect=FAST_RECONNECT,
        )
        await nursery.start(line.run)
        await nursery.start(ghost.run)
        with trio.fail_after(10):
            await line.wait_health(DeviceHealth.OK)
            await ghost.wait_health(DeviceHealth.DISCONNECTED)
        voice_emulator.unplug()
        with trio.fail_after(10):
            await line.wait_health(DeviceHealth.DISCONNECTED)
        voice_emulator.replug()
        with trio.fail_after(10):
            await line.wait_health(DeviceHealth.OK)
        seen = []
        while True:
            try:
                event = events.receive_nowait()
            except trio.WouldBlock:
                break
            if event.event == "DeviceStateChange":
                seen.append(dict(event.fields))
    assert [e["State"] for e in seen if e["Device"] == "line1"] == ["ok", "disconnected", "ok"]
    (ghost_event,) = [e for e in seen if e["Device"] == "ghost"]
    assert ghost_event["State"] == "disconnected"
    assert "\\x0d\\x0aEvent: Forged" in ghost_event["Reason"]  # escaped, visible, not a second line
    assert not any("\r" in e["Reason"] or "\n" in e["Reason"] for e in seen)


async def test_the_centralita_command_shows_health_and_a_dead_engines_report_is_not_trusted(
    nursery, voice_emulator, gsm_emulator, tmp_path
) -> None:
    text = _config(tmp_path, voice_emulator.link, gsm_emulator.link)
    config_file = tmp_path / "centralita.toml"
    config_file.write_text(text)
    command = [sys.executable, "-m", "engine", "devices", "--config", str(config_file)]
    async with open_test_engine(text, plugins=PLUGINS, data_dir=tmp_path) as engine:
        with trio.fail_after(15):
            await engine.devices.get("line1").wait_health(DeviceHealth.OK)
            await engine.devices.get("gsm").wait_health(DeviceHealth.OK)
        with trio.fail_after(60):
            shown = await trio.run_process(command, capture_stdout=True, capture_stderr=True, cwd=str(REPO))
        out = shown.stdout.decode()
        assert "Configured devices:" in out and "line1: ok" in out and "gsm: ok" in out, shown.stderr.decode()
    # a report written by an engine process that has since exited
    writer = "import sys; from hardware._health_file import write_health_snapshot as w; w(sys.argv[1], 'line1', 'ok', {})"
    with trio.fail_after(60):
        await trio.run_process([sys.executable, "-c", writer, str(tmp_path)], cwd=str(REPO))
        shown = await trio.run_process(command, capture_stdout=True, cwd=str(REPO))
    out = shown.stdout.decode()
    assert "line1: engine not running" in out and "line1: ok" not in out
