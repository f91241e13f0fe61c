"""Answering-machine detection on live media: the dialer service listens to answered calls through the
engine's media framework (real RTP over loopback, G.711, jitter buffer, the media clock) and acts on
what it hears.

The called parties are RTP endpoints of the same media framework playing clips of the labelled set
(``data/amd``), so the audio the detector hears went through encoding, UDP and decoding. The SIP version
of this, with SIPp as the called party, is ``tests/integration/dialer``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import trio

from engine import InteractionKind, InteractionState, hookimpl
from engine.abc import DialResult, VoiceChannel
from engine.media import Prompt
from engine.testing import open_test_engine

from .conftest import AMD_SET, read_wav


class MediaPeersChannel(VoiceChannel):
    """Called parties who answer at once and play a clip (or send no audio at all) over real RTP."""

    kinds = frozenset({InteractionKind.VOICE})
    schemes = frozenset({"peer"})
    clips: ClassVar[dict[str, np.ndarray | None]] = {}  # number -> what the called party says (None: no RTP at all)

    def __init__(self, context: Any) -> None:
        self.context = context
        self.name = context.name
        self.dialed: list[str] = []
        self.answered_at: dict[str, float] = {}
        self.played: list[tuple[str, str, float]] = []  # (number, prompt, when)
        self.bridged: list[tuple[str, str]] = []
        self.hung_up: list[tuple[str, str]] = []
        self.legs: dict[str, tuple[Any, Any]] = {}  # interaction -> (our endpoint, the called party's)

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    def endpoint_reachable(self, endpoint: str) -> bool:
        return endpoint.startswith("peer:")

    async def offer(self, interaction: Any, agent: str, endpoint: str) -> None:
        await trio.sleep_forever()

    async def dial(self, interaction: Any, number: str, *, caller_id: str, ring_timeout: float) -> DialResult:
        self.dialed.append(number)
        media = self.context.engine.media
        ours = media.allocate(codec="PCMU", name=f"dialer-{number}")
        theirs = media.allocate(codec="PCMU", name=f"called-{number}")
        ours.set_remote(theirs.local_address)
        theirs.set_remote(ours.local_address)
        clip = self.clips[number]
        if clip is not None:
            theirs.play(Prompt(number, clip).player())
        self.legs[interaction.id] = (ours, theirs)
        self.answered_at[interaction.id] = time.time()
        return DialResult("answered", status=200)

    def media_of(self, interaction: Any) -> Any:
        leg = self.legs.get(interaction.id)
        return leg[0] if leg else None

    async def connect_agent(self, interaction: Any, agent: str, endpoint: str) -> bool:
        self.bridged.append((interaction.to, agent))
        return True

    async def play(self, interaction: Any, *, prompt: str | None = None, text: str | None = None) -> None:
        self.played.append((interaction.to, prompt or "", time.time() - self.answered_at[interaction.id]))

    async def hangup(self, interaction: Any, cause: str = "normal") -> None:
        self.hung_up.append((interaction.to, cause))
        for endpoint in self.legs.pop(interaction.id, ()):
            self.context.engine.media.release(endpoint)


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("peer", MediaPeersChannel)


CONFIG = """
[[agents]]
id = "alice"
endpoint = "peer:alice"

[[campaigns]]
name = "live"
mode = "progressive"
agents = ["alice"]
caller_id = "+34910000000"
ring_timeout = 15
on_machine = "message"
machine_message = "promo"
beep_wait = 1.0
dispositions = ["sale", "machine"]
[campaigns.schedule]
start = "00:00"
end = "23:59"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
timezone = "UTC"
"""

PERSON, MACHINE, SILENT = "+34600000001", "+34600000002", "+34600000003"


def labels() -> dict[str, dict[str, str]]:
    import csv

    with open(AMD_SET / "labels.csv", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


async def add_leads(engine: Any, numbers: list[str]) -> None:
    await engine.store.write_many([
        ("INSERT INTO dialer_leads(campaign, lead, numbers, fields, imported) VALUES (?,?,?,?,?)",
         ("live", f"lead-{i}", json.dumps([n]), "{}", time.time()))
        for i, n in enumerate(numbers)
    ])


async def test_person_machine_and_silent_line_told_apart_on_live_rtp(tmp_path: Path) -> None:
    rows = labels()
    person, machine = rows["human_003.wav"], rows["machine_000.wav"]
    MediaPeersChannel.clips = {
        PERSON: read_wav(AMD_SET / person["file"]),
        MACHINE: read_wav(AMD_SET / machine["file"]),
        SILENT: None,  # answers and never sends a packet
    }
    amd_events: list[dict[str, Any]] = []
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        engine.bus.add_listener(lambda event: amd_events.append({**event.fields, "interaction": event.interaction})
                                if event.event == "DialerAmdResult" else None)
        channel = engine.channels["peer"]
        engine.endpoint_state_changed("peer:alice", True)
        await add_leads(engine, [MACHINE, SILENT, PERSON])
        with trio.fail_after(60):
            while not channel.bridged:
                await trio.sleep(0.05)
        person_call = next(i for i in engine.interactions.values() if i.to == PERSON)
        assert person_call.state is InteractionState.ACTIVE and person_call.agent == "alice"
        await engine.interaction_action(person_call.id, "hangup", {})
        await engine.interaction_action(person_call.id, "disposition", {"disposition": "sale"})
        with trio.fail_after(30):
            while any(i.state is not InteractionState.ENDED for i in engine.all_interactions()):
                await trio.sleep(0.05)
        calls = {i.to: i for i in engine.all_interactions()}
        audit = [json.loads(r["record"]) for r in await engine.store.fetchall(
            "SELECT record FROM dialer_audit WHERE campaign = 'live' ORDER BY seq")]
        campaign = engine.dialer.campaigns["live"]

    # each number dialed once
    assert sorted(channel.dialed) == sorted([PERSON, MACHINE, SILENT])
    answers = {r["number"]: (r["kind"], r["detail"].get("amd")) for r in audit
               if r["kind"].startswith("answer-")}
    assert answers[PERSON] == ("answer-live", "HUMAN")
    assert answers[MACHINE][0] == "answer-machine"
    assert answers[SILENT] == ("answer-machine", "INITIALSILENCE")
    # the person reached the agent; machines got the message and nobody else did
    assert channel.bridged == [(PERSON, "alice")]
    assert {number for number, prompt, _ in channel.played} == {MACHINE, SILENT}
    assert all(prompt == "promo" for _, prompt, _ in channel.played)
    # after the machine's beep (it starts beep_start seconds into the greeting), never on top of it
    machine_played_at = next(at for number, _, at in channel.played if number == MACHINE)
    assert machine_played_at >= float(machine["beep_start"])
    assert calls[MACHINE].attributes["beep"] == "heard"
    assert calls[SILENT].attributes["beep"] == "not-heard"
    assert calls[PERSON].attributes["amd"] == "HUMAN"
    # the person was recognised within a second of the end of their greeting (in audio heard), and the
    # greeting the detector heard ended where the clip's does (its quiet last syllable, the network delay)
    decided = {e["interaction"]: e for e in amd_events}[calls[PERSON].id]
    assert decided["AudioSeconds"] - decided["GreetingEnd"] <= 1.0
    assert float(person["speech_end"]) - 0.2 <= decided["GreetingEnd"] <= float(person["speech_end"]) + 1.0
    kinds = [r["kind"] for r in audit]
    assert kinds.count("machine-message") == 2
    # the detector's verdict is counted against the agent's disposition, and still is after a restart
    assert campaign.dialer.amd_confusion[("live", "human")] == 1
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        assert engine.dialer.statistics()["live"]["amd"] == {"live/human": 1}


async def test_a_far_end_sending_only_undecodable_packets_still_gets_a_verdict() -> None:
    """Hostile or broken far end: RTP with a payload type nobody negotiated, 200 packets a second. Packets
    arrive but no audio is ever decoded; the listener must not wait for frames forever."""
    import socket as socket_module

    from engine._dialer_listen import listen_to_answer
    from engine.dialing import AnswerListener, Decided
    from engine.media import MediaEngine

    media = MediaEngine(host="127.0.0.1")
    events: list[Any] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(media.run)
        ours = media.allocate(codec="PCMU")
        sender = socket_module.socket(socket_module.AF_INET, socket_module.SOCK_DGRAM)
        sender.bind(("127.0.0.1", 0))
        ours.set_remote(sender.getsockname()[:2])

        async def send_garbage() -> None:
            seq = 0
            while True:
                seq += 1
                header = bytes([0x80, 99]) + seq.to_bytes(2, "big") + (seq * 160).to_bytes(4, "big") + b"\x00\x00\x00\x07"
                sender.sendto(header + b"\x55" * 160, ours.local_address)
                await trio.sleep(0.005)  # faster than the listener looks: a packet between any two looks

        nursery.start_soon(send_garbage)
        listener = AnswerListener(time.time())
        with trio.fail_after(20):
            await listen_to_answer(ours, listener, time.time, lambda event: events.append(event) or True)
        assert ours.wrong_payload_type > 0  # the packets did arrive...
        nursery.cancel_scope.cancel()
    sender.close()
    # ...and, hearing nothing, the detector called it what an empty line is
    assert [type(e) for e in events] == [Decided]
    assert events[0].machine and events[0].result.cause == "INITIALSILENCE"
