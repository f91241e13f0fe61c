"""Answering-machine detection is pluggable: a plugin registers a detector through
``centralita_register_amd_detectors``, a campaign chooses it with ``amd = "name"``, and the dialer then
listens to each answered call with a new instance of it, fed the call's real audio (RTP over loopback).

The example detector deliberately disagrees with the built-in one (whoever speaks within 1.5 s is "a
machine", a silent line "a person"), so the outcome shows whose verdict the dialer acted on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import trio

from engine import InteractionState, hookimpl
from engine._errors import ConfigError
from engine.dialing import AmdResult, AmdVerdict, validate_campaigns
from engine.dialing.amd import FRAME_SECONDS, frame_level
from engine.testing import open_test_engine

from .conftest import AMD_SET, read_wav
from .test_dialer_live_amd import CONFIG, PERSON, SILENT, Channels, MediaPeersChannel, add_leads


class SpeaksFirstDetector:
    """The example plugin's detector: anything said in the first 1.5 s makes it a machine."""

    built_for: ClassVar[list[str]] = []

    def __init__(self, campaign: Any) -> None:
        self.built_for.append(campaign.name)
        self.frames = 0
        self.loud = 0
        self._result: AmdResult | None = None

    @property
    def result(self) -> AmdResult | None:
        return self._result

    def feed(self, frame: np.ndarray) -> AmdResult | None:
        if self._result is None:
            self.frames += 1
            self.loud += frame_level(frame) > 500
            if self.frames * FRAME_SECONDS >= 1.5:
                heard = self.loud >= 5
                self._result = AmdResult(AmdVerdict.MACHINE if heard else AmdVerdict.HUMAN,
                                         "PLUGIN-HEARD" if heard else "PLUGIN-SILENT", self.frames * FRAME_SECONDS)
        return self._result


class DetectorPlugin:
    @hookimpl
    def centralita_register_amd_detectors(self, registry: Any) -> None:
        registry.add("speaks-first", SpeaksFirstDetector)


async def test_a_campaign_listens_with_the_detector_a_plugin_registered(tmp_path: Path) -> None:
    SpeaksFirstDetector.built_for = []
    MediaPeersChannel.clips = {PERSON: read_wav(AMD_SET / "human_003.wav"), SILENT: None}
    config = CONFIG.replace('on_machine = "message"', 'on_machine = "message"\namd = "speaks-first"')
    async with open_test_engine(config, plugins=[Channels(), DetectorPlugin()], data_dir=tmp_path) as engine:
        channel = engine.channels["peer"]
        engine.endpoint_state_changed("peer:alice", True)
        await add_leads(engine, [PERSON, SILENT])
        with trio.fail_after(60):
            while not channel.bridged or not channel.played:
                await trio.sleep(0.05)
        silent_call = next(i for i in engine.interactions.values() if i.to == SILENT)
        assert silent_call.state is InteractionState.ACTIVE and silent_call.agent == "alice"
        await engine.interaction_action(silent_call.id, "hangup", {})
        with trio.fail_after(30):
            while any(i.state is not InteractionState.ENDED for i in engine.all_interactions()):
                await trio.sleep(0.05)
        audit = [json.loads(r["record"]) for r in await engine.store.fetchall(
            "SELECT record FROM dialer_audit WHERE campaign = 'live' ORDER BY seq")]
        calls = {i.to: i for i in engine.all_interactions()}
    answers = {r["number"]: (r["kind"], r["detail"].get("amd")) for r in audit if r["kind"].startswith("answer-")}
    # the plugin's verdicts, not the built-in's (which calls this person HUMAN and the silent line a machine)
    assert answers == {PERSON: ("answer-machine", "PLUGIN-HEARD"), SILENT: ("answer-live", "PLUGIN-SILENT")}
    assert channel.bridged == [(SILENT, "alice")]
    assert [number for number, _, _ in channel.played] == [PERSON]  # the campaign's on_machine action
    assert calls[PERSON].attributes["amd_cause"] == "PLUGIN-HEARD"
    # one new detector per answered call, built with the campaign's settings
    assert SpeaksFirstDetector.built_for == ["live", "live"]


async def test_a_campaign_naming_an_unknown_detector_is_a_configuration_error(tmp_path: Path) -> None:
    config = CONFIG.replace('on_machine = "message"', 'on_machine = "message"\namd = "nobody-registered-this"')
    with pytest.raises(ConfigError, match=r"centralita.toml:\d+: campaigns\[0\]\.amd: .*one of cadence, got 'nobody"):
        async with open_test_engine(config, plugins=[Channels()], data_dir=tmp_path):
            pass
    _, problems = validate_campaigns([{"name": "x", "agents": ["a"], "amd": "cadence"}], detectors={"cadence"})
    assert problems == []
    _, problems = validate_campaigns([{"name": "x", "agents": ["a"], "amd": 3}], detectors={"cadence"})
    assert [p.path for p in problems] == ["campaigns[0].amd"]
