"""Found by the end-to-end routing test: a caller who chose a callback and hung up during "we will call
you back" (what most people do) lost the callback, because it was booked only when the prompt ended."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from engine import InteractionState, hookimpl
from engine.ivr import FlowEnded, FlowSession, Hangup, Play, RequestCallback, load_flows
from engine.testing import FakeVoiceChannel, open_test_engine, wait_until

OPEN = 1_795_600_000.0  # Wednesday 2026-11-25 10:46 in Madrid: the main flow's hours are open


def of(commands, kind):
    return [c for c in commands if isinstance(c, kind)]


def through_welcome(s, now=OPEN):
    assert of(s.start(now), Play)[0].prompt == "welcome"
    return s.playback_done(now + 2)


@pytest.fixture
def session(main_flow_raw):
    flows = load_flows(main_flow_raw, queues={"sales"})
    return lambda caller="+34600111222": FlowSession(flows["main"], caller=caller, session_id="s1")


def test_hanging_up_during_the_callback_prompt_still_books_it(session):
    s = session("+34911222333")
    through_welcome(s)
    commands = s.digit("9", OPEN + 3)
    assert of(commands, Play) and not of(commands, RequestCallback)   # the prompt plays first
    commands = s.hangup(OPEN + 4)
    (request,) = of(commands, RequestCallback)
    assert (request.queue, request.number) == ("sales", "+34911222333")
    assert not of(commands, Hangup) and not of(commands, Play)        # nothing is said to nobody
    assert [e.outcome for e in of(commands, FlowEnded)] == ["callback"]
    assert s.hangup(OPEN + 5) == [] and s.playback_done(OPEN + 6) == []  # once, and nothing after


def test_hanging_up_in_the_menu_books_nothing(session):
    s = session()
    through_welcome(s)
    commands = s.hangup(OPEN + 3)
    assert not of(commands, RequestCallback)
    assert [e.outcome for e in of(commands, FlowEnded)] == ["caller-hangup"]


CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"

[[queues]]
name = "support"
members = ["alice"]
wrapup = 0

[[routes]]
match = "100"
flow = "main"

[[flows]]
name = "main"
start = "cb"

[flows.nodes.cb]
type = "callback"
queue = "support"
prompt = "we-will-call-you"
"""


def write_prompts(data_dir: Path, *names: str) -> None:
    import wave

    for name in names:
        path = data_dir / "prompts" / "en" / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\x00\x10" * 800)


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)


async def test_the_runner_books_it_before_the_call_is_recorded(tmp_path: Path) -> None:
    write_prompts(tmp_path, "we-will-call-you")
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        call = voice.call("+34911000005", "100")
        await wait_until(lambda: voice.played)
        await voice.caller_hangs_up(call)                     # during "we will call you back"
        assert call.state is InteractionState.ENDED
        assert call.attributes["ivr"]["outcome"] == "callback"
        (row,) = await engine.cdr()
        assert row["dcontext"] == "support"                   # the CDR knows where it went
        (waiting,) = engine.queue_detail("support")["callers"]
        assert waiting["interaction"] == call.id and waiting["callback"] is not None
        voice.register("fake:alice")
        await wait_until(lambda: voice.dialed == ["+34911000005"])


class ClobberingChannel(FakeVoiceChannel):
    """Plays like the SIP channel: one player per call, and a stopped prompt's clean-up clears the
    player whatever is playing by then (here a little late, as under load). Prompts last 30 s unless
    stopped."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.player: dict[str, object | None] = {}
        self.ended: list[str] = []
        self.cut: list[str] = []  # prompts stopped by another prompt's clean-up

    async def play(self, interaction: Any, *, prompt: str | None = None, text: str | None = None) -> None:
        self.played.append((interaction.id, prompt or ""))
        token = object()
        self.player[interaction.id] = token
        try:
            with trio.move_on_after(30):
                while self.player.get(interaction.id) is token:
                    await trio.sleep(0.005)
            if self.player.get(interaction.id) is not token:
                self.cut.append(prompt or "")
        finally:
            # the clean-up lands a moment later (under load, after the next prompt has started)
            with trio.CancelScope(shield=True):
                await trio.sleep(0.05)
            self.player[interaction.id] = None
            self.ended.append(prompt or "")


class ClobberingChannels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", ClobberingChannel)


MENU_THEN_CALLBACK = CONFIG.replace('start = "cb"', 'start = "menu"') + """
[flows.nodes.menu]
type = "menu"
prompt = "press-1-for-a-callback"
options = { "1" = "cb" }
"""


async def test_a_barged_in_prompt_does_not_cut_the_next_one(tmp_path: Path) -> None:
    """Found by the end-to-end test under load: the menu prompt stopped by a digit, cleaning up after
    the callback prompt had started, cut that prompt short; its early "end" booked the callback and
    hung up on the caller at once."""
    write_prompts(tmp_path, "we-will-call-you", "press-1-for-a-callback")
    async with open_test_engine(MENU_THEN_CALLBACK, plugins=[ClobberingChannels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        call = voice.call("+34911000006", "100")
        await wait_until(lambda: voice.played)
        voice.press(call, "1")
        await wait_until(lambda: "we-will-call-you" in [p for _, p in voice.played])
        await wait_until(lambda: "press-1-for-a-callback" in voice.ended)
        assert voice.cut == [] and voice.hung_up == []  # still hearing "we will call you back"
        await voice.caller_hangs_up(call)
        assert call.attributes["ivr"]["outcome"] == "callback"
