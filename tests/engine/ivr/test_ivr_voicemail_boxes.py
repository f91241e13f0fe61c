"""Per-box voicemail settings (``[[voicemail]]``) on a real engine: limits, discarding, skipping the greeting."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import pytest
import trio

from engine import ConfigError, InteractionState, hookimpl
from engine.testing import FakeVoiceChannel, open_test_engine, wait_until


class ListeningVoice(FakeVoiceChannel):
    """Remembers what the engine asked ``record`` for; the spoken greeting lasts until interrupted."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.record_requests: list[dict[str, float]] = []
        self.greeting_started = trio.Event()
        self.greetings_cut: list[str] = []
        self.endless_greeting = False

    async def play(self, interaction: Any, *, prompt: str | None = None, text: str | None = None) -> None:
        await super().play(interaction, prompt=prompt, text=text)
        if text and self.endless_greeting:
            self.greeting_started.set()
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                self.greetings_cut.append(interaction.id)
                raise

    async def record(self, interaction: Any, path: Path, *, max_seconds: float, silence_seconds: float) -> float:
        self.record_requests.append({"max_seconds": max_seconds, "silence_seconds": silence_seconds})
        return await super().record(interaction, path, max_seconds=max_seconds, silence_seconds=silence_seconds)


class Voice:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", ListeningVoice)


def flow_to_box(number: str, box: str) -> str:
    return f"""
[[routes]]
match = "{number}"
flow = "vm-{box}"

[[flows]]
name = "vm-{box}"
start = "leave"

[flows.nodes.leave]
type = "voicemail"
box = "{box}"
"""


CONFIG = flow_to_box("100", "short") + flow_to_box("200", "strict") + flow_to_box("300", "anybox") + """
[[voicemail]]
name = "short"
max_seconds = 2
silence_seconds = 2.5

[[voicemail]]
name = "strict"
min_seconds = 5
skip_keys = ""
"""


async def test_each_box_records_with_its_own_limits_and_unlisted_boxes_get_the_defaults(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Voice()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        voice.message_seconds = 3.0  # every caller talks for 3 s
        short = voice.call("+34600000001", "100")
        await wait_until(lambda: short.state is InteractionState.ENDED)
        (message,) = await engine.voicemail.list("short")
        assert message["seconds"] == 2.0  # cut at the box's maximum
        with wave.open(str(tmp_path / message["file"])) as wav:
            assert wav.getnframes() == 2 * 8000
        strict = voice.call("+34600000002", "200")
        await wait_until(lambda: strict.state is InteractionState.ENDED)
        assert await engine.voicemail.list("strict") == []  # 3 s is under this box's 5 s minimum
        assert (strict.id, "voicemail-empty") in voice.hung_up
        other = voice.call("+34600000003", "300")
        await wait_until(lambda: other.state is InteractionState.ENDED)
        assert len(await engine.voicemail.list("anybox")) == 1
        assert voice.record_requests == [
            {"max_seconds": 2.0, "silence_seconds": 2.5},
            {"max_seconds": 120.0, "silence_seconds": 5.0},
            {"max_seconds": 120.0, "silence_seconds": 5.0},
        ]


async def test_a_key_during_the_greeting_goes_straight_to_the_beep(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Voice()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        voice.endless_greeting = True  # without the key the caller would never reach the recording
        call = voice.call("+34600000004", "300")
        with trio.fail_after(20):
            await voice.greeting_started.wait()
        voice.press(call, "5")
        await wait_until(lambda: call.state is InteractionState.ENDED)
        assert voice.greetings_cut == [call.id]
        assert len(await engine.voicemail.list("anybox")) == 1


def test_bad_box_settings_are_refused_with_their_line(tmp_path: Path) -> None:
    from engine.testing._harness import load_test_config, make_manager

    text = """
[[voicemail]]
name = "sales"
email = "boss@example.com\\r\\nBcc: x@example.com"
silence_seconds = 0

[[voicemail]]
name = "sales"

[[voicemail]]
name = "tiny"
max_seconds = 5
min_seconds = 5
"""
    with pytest.raises(ConfigError) as caught:
        load_test_config(text, make_manager([]), tmp_path)
    message = str(caught.value)
    assert "voicemail[0].email: expected one plain address" in message
    assert "voicemail[0].silence_seconds: expected at least 0.5" in message
    assert "voicemail[1].name: duplicate name 'sales'" in message
    assert "voicemail[2].min_seconds: must be below max_seconds" in message
