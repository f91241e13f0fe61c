"""A whole outbound campaign over real SIP peers.

SIPp plays four called parties behind four trunks of the engine: a person (answers, says "Hello?",
stays for an agent, hangs up), an answering machine (long greeting, beep, waits for the message),
a busy line (486) and a phone nobody answers (rings until the dialer's ring timeout CANCELs). Two
baresip phones are the agents, registered with digest auth and auto-answering. The engine runs the
campaign with answering-machine detection on the live RTP.

What a supervisor would check afterwards: each number dialed only as often as the retry rules allow,
the person connected to an agent, the machine recognised and given the message after its beep, the
CDRs and the audit log telling the same story, and the abandonment rate an auditor recomputes from the
audit log equal to the dialer's own.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
from dialer_peers import (
    describe,
    free_udp_spans,
    run_sipp,
    silence,
    speech,
    start_baresip,
    stop,
    tone,
    udp_port_taken,
    write_rtp_pcap,
    write_wav,
)

from engine import hookimpl
from engine.dialing import AuditLog, AuditRecord, recompute_abandonment
from engine.testing import open_test_engine

pytestmark = pytest.mark.interop

PERSON, MACHINE, BUSY, NO_ANSWER = "+15550001001", "+15550001002", "+15550001003", "+15550001004"
AGENTS = {"alice": ("2001", "agent-one-pw"), "bob": ("2002", "agent-two-pw")}
RETRY_DELAY = 2.0


@dataclass(frozen=True)
class LabPolicy:
    """The US rule's formula with a short minimum ring, so a test can wait for a ring timeout."""

    name: str = "lab"
    max_rate: float = 0.03
    window: float = 86400.0
    abandon_after: float = 2.0
    min_ring: float = 1.0

    def rate(self, tally: Any) -> float:
        return tally.abandoned / tally.live_answers if tally.live_answers else 0.0


class LabPolicies:
    @hookimpl
    def centralita_register_compliance_policies(self, registry: Any) -> None:
        registry.add("lab", LabPolicy())


def engine_config(ports: dict[str, int]) -> str:
    trunks = "".join(
        f'[[sip.trunks]]\nname = "{name}"\nserver = "sip:127.0.0.1:{ports[name]}"\noutbound = true\ndial = ["{number}"]\n\n'
        for name, number in (("person", PERSON), ("machine", MACHINE), ("busy", BUSY), ("noanswer", NO_ANSWER)))
    users = "".join(f'[[sip.users]]\nname = "{user}"\npassword = "{password}"\n\n' for user, password in AGENTS.values())
    agents = "".join(f'[[agents]]\nid = "{agent}"\nendpoint = "sip:{user}"\n\n' for agent, (user, _) in AGENTS.items())
    return f"""
[sip]
listen = ["udp:127.0.0.1:0"]

{users}{trunks}
[sip.security]
rate = 100000
burst = 100000

[sip.timers]
t1 = 0.1
t2 = 0.8
t4 = 1
qualify_interval = 0
ring_timeout = 10

{agents}
[[campaigns]]
name = "e2e"
mode = "progressive"
agents = ["alice", "bob"]
caller_id = "+34910000000"
compliance = "lab"
ring_timeout = 4
on_machine = "message"
machine_message = "promo"
beep_wait = 2
dispositions = ["sale", "no-sale", "machine"]

[campaigns.schedule]
start = "00:00"
end = "23:59"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
timezone = "UTC"

[campaigns.retry.busy]
delay = {RETRY_DELAY}
max_attempts = 2

[campaigns.retry.no-answer]
delay = {RETRY_DELAY}
max_attempts = 2
"""


def make_audio(directory: Path, *, prompts: Path) -> dict[str, float]:
    """The called parties' audio and the campaign's message; returns where the machine's beep starts."""
    person = [silence(0.4), speech("Hello?", directory), silence(2.5),
              speech("Yes, this is Ana. Who is calling?", directory), silence(3.0)]
    write_rtp_pcap(directory / "person.pcap", np.concatenate(person))
    greeting = speech("Hi, you have reached Ana and Luis. We cannot take your call right now. "
                      "Please leave your name, your number and a short message after the tone, and we will call "
                      "you back as soon as we can.", directory)
    lead_in = [silence(0.3), greeting, silence(0.4)]
    beep_start = sum(len(part) for part in lead_in) / 8000
    write_rtp_pcap(directory / "machine.pcap", np.concatenate([*lead_in, tone(1000, 0.5), silence(4.0)]))
    prompts.mkdir()
    write_wav(prompts / "promo.wav", speech("This is a message from Example Insurance.", directory))
    return {"beep_start": beep_start}


async def test_a_campaign_against_sipp_customers_and_baresip_agents(tmp_path: Path) -> None:
    import plugins.sip.plugin as sip_plugin

    peers = tmp_path / "peers"  # SIPp's working directory: the captures it plays
    peers.mkdir()
    audio = make_audio(peers, prompts=tmp_path / "prompts")
    names = ("person", "machine", "busy", "noanswer")
    spans = free_udp_spans(2 * len(names))
    ports = dict(zip(names, spans[:len(names)]))  # SIP
    media_ports = dict(zip(names, spans[len(names):]))  # RTP (and the video port SIPp also binds)
    sipp: dict[str, Any] = {}
    phones: list[Any] = []
    async with open_test_engine(engine_config(ports), plugins=[sip_plugin, LabPolicies()], data_dir=tmp_path) as engine, \
            trio.open_nursery() as nursery:
        channel = engine.channels["sip"]
        engine_port = channel.bound[0].port
        try:
            for agent, (user, password) in AGENTS.items():
                # baresip hangs up when its audio file ends: the agent talks, then stays on the line
                voice = np.concatenate([speech(f"Hello, this is {agent}.", tmp_path), silence(60.0)])
                phones.append(await start_baresip(tmp_path / agent, user, password, engine_port, voice))
            with trio.fail_after(30):
                while not all(channel.endpoint_reachable(f"sip:{user}") for user, _ in AGENTS.values()):
                    await trio.sleep(0.05)

            async def called_party(name: str, scenario: str, calls: int) -> None:
                sipp[name] = await run_sipp(scenario, ports[name], media_ports[name], calls, peers)

            nursery.start_soon(called_party, "person", "answer_talk_hang_up.xml", 1)
            nursery.start_soon(called_party, "machine", "answering_machine.xml", 1)
            nursery.start_soon(called_party, "busy", "busy.xml", 2)
            nursery.start_soon(called_party, "noanswer", "rings_until_cancelled.xml", 2)
            with trio.fail_after(20):
                while not all(udp_port_taken(port) for port in ports.values()):
                    await trio.sleep(0.05)
            await engine.store.write_many([
                ("INSERT INTO dialer_leads(campaign, lead, numbers, fields, imported) VALUES (?,?,?,?,?)",
                 ("e2e", f"lead-{i}", json.dumps([number]), json.dumps({"name": name}), time.time()))
                for i, (number, name) in enumerate(((PERSON, "Ana"), (MACHINE, "Luis"), (BUSY, "Eva"), (NO_ANSWER, "Max")))
            ])
            # The person hangs up after talking to an agent; the agent then gives the disposition.
            with trio.fail_after(60):
                while True:
                    person = [i for i in engine.all_interactions() if i.to == PERSON]
                    if person and person[0].state.value == "ended":
                        break
                    await trio.sleep(0.1)
            await engine.interaction_action(person[0].id, "disposition", {"disposition": "sale"})
            with trio.fail_after(90):
                while len(sipp) < 4:
                    await trio.sleep(0.1)
            campaign = engine.dialer.campaigns["e2e"]
            passes = campaign.passes
            with trio.fail_after(30):  # every call over, and a few more passes of the campaign loop
                while campaign.passes < passes + 5 or campaign.calls:
                    await trio.sleep(0.1)
            rows = await engine.store.fetchall("SELECT record FROM dialer_audit WHERE campaign = 'e2e' ORDER BY seq")
            journal = [json.loads(r["record"]) for r in await engine.store.fetchall(
                "SELECT record FROM dialer_journal WHERE campaign = 'e2e' ORDER BY seq")]
            records = [AuditRecord(**json.loads(r["record"])) for r in rows]
            cdr = await engine.cdr()
            interactions = {i.id: i for i in engine.all_interactions()}
            now = time.time()
            rate = campaign.dialer.abandon_rate(now)
            policy = engine.compliance_policies.get("lab")
        finally:
            for phone in phones:
                await stop(phone)

    story = "\n".join(f"{r.time:.2f} {r.kind} {r.number} {dict(r.detail)}" for r in records)
    for name, result in sipp.items():
        assert result.returncode == 0, describe(name, result, peers) + "\naudit:\n" + story

    try:
        check_story(records, journal, cdr, interactions, campaign, policy, rate, now, audio)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\naudit:\n{story}") from None


def check_story(records, journal, cdr, interactions, campaign, policy, rate, now, audio) -> None:
    """What a supervisor would check afterwards (a failure shows the whole audit log)."""
    def kinds(number: str) -> list[str]:
        return [r.kind for r in records if r.number == number]

    # Dialed once each, busy and no-answer once more after the retry delay, never more.
    dials = {number: [r for r in records if r.kind == "dial" and r.number == number]
             for number in (PERSON, MACHINE, BUSY, NO_ANSWER)}
    assert {n: len(d) for n, d in dials.items()} == {PERSON: 1, MACHINE: 1, BUSY: 2, NO_ANSWER: 2}
    for number in (BUSY, NO_ANSWER):
        outcome = "busy" if number == BUSY else "no-answer"
        first_end = next(r for r in records if r.number == number and r.kind == outcome)
        assert dials[number][1].time - first_end.time >= RETRY_DELAY, kinds(number)
    assert kinds(BUSY).count("busy") == 2 and kinds(NO_ANSWER).count("no-answer") == 2
    # ...and the durable dialing order will not call them again (the last result closes the lead).
    due = {r["attempt"]: r["due"] for r in journal if r.get("op") == "result"}
    for number in (BUSY, NO_ANSWER):
        first, second = (due[d.detail["attempt"]] for d in dials[number])
        assert first is not None and second is None, (number, first, second)

    # The person: recognised as a person and connected to one of the agents, who marked a sale.
    live = next(r for r in records if r.kind == "answer-live")
    assert live.number == PERSON and live.detail["amd"] in ("HUMAN", "NOTSURE")
    connect = next(r for r in records if r.kind == "connect")
    assert connect.number == PERSON and connect.detail["agent"] in AGENTS
    disposition = next(r for r in records if r.kind == "disposition")
    assert disposition.number == PERSON and disposition.detail["disposition"] == "sale"
    assert campaign.dialer.amd_confusion[("live", "human")] == 1

    # The machine: classified as one, given the campaign's message after its beep, then hung up on.
    machine_kinds = kinds(MACHINE)
    assert "answer-machine" in machine_kinds and "answer-live" not in machine_kinds and "connect" not in machine_kinds
    assert machine_kinds.index("answer-machine") < machine_kinds.index("machine-message") < machine_kinds.index("hangup")
    machine_call = next(i for i in interactions.values() if i.to == MACHINE)
    assert machine_call.attributes["amd"] == "MACHINE"
    assert machine_call.attributes["beep"] == "heard"
    answered = next(r for r in records if r.kind == "answer-machine")
    message = next(r for r in records if r.kind == "machine-message")
    assert message.time - answered.time > 0  # the message waited for the beep, after the verdict
    assert message.time - (machine_call.answered or 0) >= audio["beep_start"]

    # CDRs agree: one answered call with an agent, one answered by the machine, two busy, two unanswered.
    by_number: dict[str, list[str]] = {}
    for row in cdr:
        by_number.setdefault(row["dst"], []).append(row["disposition"])
    assert sorted(by_number[PERSON]) == ["ANSWERED"] and sorted(by_number[MACHINE]) == ["ANSWERED"]
    assert by_number[BUSY] == ["BUSY", "BUSY"] and by_number[NO_ANSWER] == ["NO ANSWER", "NO ANSWER"]
    (person_cdr,) = [row for row in cdr if row["dst"] == PERSON]
    assert person_cdr["dstchannel"] == connect.detail["agent"]

    # The stored audit log is whole (hash chain unbroken); nobody was abandoned, and the auditor's figure
    # from the audit log alone is the dialer's own.
    assert AuditLog.verify(records) is None
    assert "abandon" not in [r.kind for r in records]
    recomputed, tally = recompute_abandonment(records, "e2e", policy, now=now)
    assert (tally.live_answers, tally.abandoned, tally.machine_answers) == (1, 0, 1)
    assert recomputed == rate == 0.0
