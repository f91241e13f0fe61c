"""``centralita run --demo``: simulated callers go through the real IVR and queues to simulated agents."""

from __future__ import annotations

from pathlib import Path

import trio

from engine import InteractionState
from engine._demo import demo_config_text, write_demo_prompts
from engine.testing import open_test_engine


async def test_demo_desk_handles_simulated_calls_and_chats_end_to_end(tmp_path: Path) -> None:
    config = demo_config_text().replace('data_dir = "var/demo"', f'data_dir = "{tmp_path}"')
    write_demo_prompts(tmp_path)
    async with open_test_engine(config, data_dir=tmp_path, demo=True, demo_rate=600.0) as engine:
        assert engine.ready()[0]
        with trio.fail_after(60):
            while not any(i.state is InteractionState.ACTIVE and i.kind.value == "voice" for i in engine.interactions.values()):
                await trio.sleep(0.05)
        voice = next(i for i in engine.interactions.values() if i.state is InteractionState.ACTIVE and i.kind.value == "voice")
        assert voice.queue in ("support", "billing") and voice.agent in ("alice", "bob", "carmen")
        assert [s for _, s in voice.history][:2] == [InteractionState.IVR, InteractionState.QUEUED]


async def test_demo_attaches_the_emulated_hardware_through_the_plugins(tmp_path: Path) -> None:
    from engine.abc import DeviceHealth
    from engine.testing import wait_until

    config = demo_config_text().replace('data_dir = "var/demo"', f'data_dir = "{tmp_path}"')
    write_demo_prompts(tmp_path)
    config += '\n[sip]\nlisten = ["udp:127.0.0.1:0"]\n'
    async with open_test_engine(config, data_dir=tmp_path, demo=True, demo_rate=1.0, entry_points=True) as engine:
        await wait_until(lambda: {"demo-line", "demo-gsm", "demo-board"} <= {name for name, _ in engine.devices.items()})
        await wait_until(lambda: all(d.health() is DeviceHealth.OK for _, d in engine.devices.items()), timeout=30)
        assert engine.devices.get("demo-line").describe()["model"].startswith("Centralita emulated")
