"""Issue #5 end to end, over real SIP peers on loopback.

A SIPp caller reaches the IVR, presses 1 (RFC 2833, SIPp's own capture) for the sales queue, waits
hearing position announcements while the only agent is logged out, and is bridged to that agent, a
baresip phone registered with digest auth and answering on its own; the agent's voice (a tone from
baresip's aufile source) is what the caller then hears. A second caller presses 2 for a callback,
confirms with 1 and hangs up; once the first call is over the engine calls the customer back
(a SIPp UAS behind the outbound trunk) exactly once and bridges the agent in. Both callers, and the
callback, appear in the CDR and in the event stream, and the two agree.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from routing_e2e_helpers import (
    RtpSniffer,
    caller_args,
    free_port_trio,
    loud,
    open_baresip,
    start_sipp,
    tone_share,
    write_tone,
)
from sip_interop_helpers import free_udp_port

from engine import InteractionState
from engine.console import MASTER_CSV_COLUMNS, add_token
from engine.testing import wait_until

pytestmark = pytest.mark.interop

MENU_HZ, CONFIRM_HZ, BOOKED_HZ, ANNOUNCE_HZ, AGENT_HZ = 600, 800, 1400, 1000, 440
QUEUE_CALLER, CALLBACK_CALLER = "600100201", "600100202"

ENGINE = """
[[agents]]
id = "alice"
endpoint = "sip:1001"
auto_login = false

[[queues]]
name = "sales"
members = ["alice"]
timeout = 10
wrapup = 0
retry = 1
announce_frequency = 2
callback_attempts = 1

[[routes]]
match = "500"
flow = "main"

[[flows]]
name = "main"
start = "menu"

[flows.nodes.menu]
type = "menu"
prompt = "main-menu"
options = { "1" = "sales", "2" = "confirm" }
timeout = 10
retries = 0

[flows.nodes.sales]
type = "queue"
queue = "sales"

[flows.nodes.confirm]
type = "menu"
prompt = "callback-confirm"
options = { "1" = "callback" }
timeout = 10
retries = 0

[flows.nodes.callback]
type = "callback"
queue = "sales"
prompt = "callback-booked"
"""

SIP = """
[[sip.users]]
name = "1001"
password = "s3cret"

[[sip.trunks]]
name = "caller-a"
server = "sip:127.0.0.1:{a}"

[[sip.trunks]]
name = "caller-b"
server = "sip:127.0.0.1:{b}"

[[sip.trunks]]
name = "pstn"
server = "sip:127.0.0.1:{pstn}"
outbound = true
dial = ["_X."]
"""


def write_prompts(data_dir: Path) -> None:
    """Each prompt is a tone of its own frequency, so the caller's audio says which one it heard."""
    prompts = data_dir / "prompts" / "en"
    write_tone(prompts / "main-menu.wav", MENU_HZ, 6)
    write_tone(prompts / "callback-confirm.wav", CONFIRM_HZ, 6)
    write_tone(prompts / "callback-booked.wav", BOOKED_HZ, 5)  # the caller hangs up during it
    write_tone(prompts / "queue-you-are-next.wav", ANNOUNCE_HZ, 1)


def interaction_from(engine: Any, caller: str) -> Any:
    return next((i for i in engine.all_interactions() if i.from_ == caller), None)


class EventLog:
    """Every event on the engine's bus, in order, from before the first call."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def collect(self, engine: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with engine.bus.subscribe("e2e", buffer=100_000) as events:
            task_status.started()
            async for event in events:
                self.events.append(event)

    def named(self, name: str, interaction: str | None = None) -> list[Any]:
        return [e for e in self.events if e.event == name and (interaction is None or e.interaction == interaction)]

    def index(self, name: str, interaction: str) -> int:
        return next(i for i, e in enumerate(self.events) if e.event == name and e.interaction == interaction)


async def test_ivr_queue_announcements_baresip_agent_and_a_callback_in_order(routing_engine, tmp_path: Path) -> None:
    caller_a, caller_b, pstn = free_udp_port(), free_udp_port(), free_udp_port()
    # Media ports are picked just before each SIPp starts: a port picked minutes earlier may meanwhile be
    # taken by one of the engine's or baresip's RTP sockets (SIPp then exits with "Address already in use").
    media_a = free_port_trio()
    write_prompts(tmp_path / "engine")
    log = EventLog()
    async with routing_engine(ENGINE, sip=SIP.format(a=caller_a, b=caller_b, pstn=pstn)) as (engine, channel):
        engine_port = channel.bound[0].port
        token = await add_token(engine.store, "e2e", "supervisor")
        api = httpx.AsyncClient(base_url=engine.console.url, headers={"Authorization": f"Bearer {token}"})
        async with api, trio.open_nursery() as nursery:
            await nursery.start(log.collect, engine)
            sniffer = RtpSniffer(media_a)
            await nursery.start(sniffer.run)
            async with open_baresip(tmp_path / "baresip", user="1001", password="s3cret", engine_port=engine_port,
                                    tone_hz=AGENT_HZ) as phone:
                await wait_until(lambda: channel.endpoint_reachable("sip:1001"), timeout=30)
                assert engine.acd.router.agent_status("alice")["state"] == "logged_out"

                # 1. The first caller presses 1 and waits: alice is logged out, the caller hears announcements.
                first_run = start_sipp(nursery, "queue caller", caller_args(
                    engine_port, "caller_chooses_queue.xml", service="500", caller=QUEUE_CALLER,
                    sip_port=caller_a, media_port=media_a))
                await wait_until(lambda: (i := interaction_from(engine, QUEUE_CALLER)) is not None
                                 and i.state is InteractionState.QUEUED, timeout=30)
                first = interaction_from(engine, QUEUE_CALLER)
                joined_at = len(sniffer.packets)
                await wait_until(lambda: len(log.named("QueueCallerAnnounce", first.id)) >= 3, timeout=30)
                waiting_audio = sniffer.audio(joined_at)
                assert loud(waiting_audio) and tone_share(waiting_audio, ANNOUNCE_HZ) > 0.5, \
                    f"announcements not heard: {tone_share(waiting_audio, ANNOUNCE_HZ):.2f} of the waiting audio"
                assert tone_share(sniffer.audio(0)[: 8000], MENU_HZ) > 0.5  # the menu played before the digit

                # 2. The second caller chooses a callback, confirms, and hangs up while told it will be called back.
                second_run = start_sipp(nursery, "callback caller", caller_args(
                    engine_port, "caller_chooses_callback.xml", service="500", caller=CALLBACK_CALLER,
                    sip_port=caller_b, media_port=free_port_trio()))
                with trio.fail_after(60):
                    await second_run.done.wait()
                assert second_run.ok, second_run.describe()
                second = interaction_from(engine, CALLBACK_CALLER)
                await wait_until(lambda: second.state is InteractionState.ENDED)
                assert second.attributes["ivr"]["outcome"] == "callback"
                sales = (await api.get("/api/v1/queues/sales")).json()
                assert [(c["interaction"], c["callback"] is not None) for c in sales["callers"]] == \
                    [(first.id, False), (second.id, True)]  # the callback keeps its place, behind the first

                # 3. The customer waits behind the trunk; alice logs in through the API.
                customer_run = start_sipp(nursery, "customer", [
                    "-sf", str(Path(__file__).parent / "scenarios" / "customer_answers.xml"), "-i", "127.0.0.1",
                    "-p", str(pstn), "-mp", str(free_port_trio()), "-m", "1", "-d", "3000"])
                assert not customer_run.done.is_set()
                response = await api.post("/api/v1/agents/alice/state", json={"state": "available"})
                assert response.status_code == 200, response.text
                await wait_until(lambda: first.state is InteractionState.ACTIVE, timeout=30)
                assert first.agent == "alice"
                bridged_at = len(sniffer.packets)
                await wait_until(lambda: len(sniffer.packets) - bridged_at >= 100, timeout=20)  # 2 s of audio
                talk = sniffer.audio(bridged_at)
                assert loud(talk) and tone_share(talk, AGENT_HZ) > 0.5, \
                    f"baresip's tone not heard: {tone_share(talk, AGENT_HZ):.2f} at {AGENT_HZ} Hz"
                assert tone_share(talk, ANNOUNCE_HZ) < 0.05  # no announcement over the conversation
                assert engine.acd.router.interaction_state(second.id) == "waiting"  # next in line, not yet dialed

                # 4. The agent hangs up on baresip; the first caller gets the BYE; then the callback is dialed.
                reply = await phone.command("hangup")
                assert reply.get("ok") is not False, reply
                with trio.fail_after(30):
                    await first_run.done.wait()
                assert first_run.ok, first_run.describe() + phone.tail()
                with trio.fail_after(60):
                    await customer_run.done.wait()
                assert customer_run.ok, customer_run.describe() + phone.tail()
                await wait_until(lambda: not engine.acd.router.has_interaction(second.id), timeout=20)
            nursery.cancel_scope.cancel()

        # 5. CDR and events agree.
        callbacks = [i for i in engine.all_interactions() if i.attributes.get("callback_for") == second.id]
        assert len(callbacks) == 1, "called back exactly once"
        callback = callbacks[0]
        assert callback.agent == "alice" and callback.to == CALLBACK_CALLER
        await wait_until(lambda: callback.state is InteractionState.ENDED)
        rows = {row["uniqueid"]: row for row in await engine.cdr()}
        assert set(rows) == {first.id, second.id, callback.id}
        assert (rows[first.id]["src"], rows[first.id]["dst"], rows[first.id]["dcontext"],
                rows[first.id]["dstchannel"], rows[first.id]["disposition"]) == (QUEUE_CALLER, "500", "sales", "alice", "ANSWERED")
        assert (rows[second.id]["src"], rows[second.id]["dcontext"], rows[second.id]["dstchannel"],
                rows[second.id]["disposition"]) == (CALLBACK_CALLER, "sales", "", "ANSWERED")  # the IVR answered it
        assert (rows[callback.id]["dst"], rows[callback.id]["dstchannel"], rows[callback.id]["disposition"]) == \
            (CALLBACK_CALLER, "alice", "ANSWERED")
        assert rows[callback.id]["start"] >= rows[first.id]["end"]  # called back after the first call, in order

        csv_text = (await httpx.AsyncClient(base_url=engine.console.url, headers={
            "Authorization": f"Bearer {token}", "Accept": "text/csv"}).get("/api/v1/cdr")).text
        table = list(csv.reader(io.StringIO(csv_text)))
        by_id = {line[MASTER_CSV_COLUMNS.index("uniqueid")]: line for line in table if len(line) == len(MASTER_CSV_COLUMNS)}
        assert {first.id, second.id, callback.id} <= set(by_id)
        for iid, row in rows.items():  # Master.csv (no header, Asterisk's column order) says the same
            line = by_id[iid]
            for column in ("src", "dst", "dcontext", "dstchannel", "disposition", "userfield"):
                assert line[MASTER_CSV_COLUMNS.index(column)] == str(row[column]), (iid, column)
            (created,) = log.named("Newchannel", iid)  # and the event stream agrees with the CDR
            assert (created.fields["CallerIDNum"], created.fields["Exten"]) == (row["src"], row["dst"])

        for iid in (first.id, second.id, callback.id):
            assert len(log.named("Newchannel", iid)) == 1 and len(log.named("Hangup", iid)) == 1
        assert [e.fields["Digit"] for e in log.named("DTMFEnd", first.id)] == ["1"]
        assert [e.fields["Digit"] for e in log.named("DTMFEnd", second.id)] == ["2", "1"]
        joins = log.named("QueueCallerJoin")
        assert [(e.interaction, e.fields["Position"]) for e in joins] == [(first.id, 1), (second.id, 2)]
        assert {e.fields["Position"] for e in log.named("QueueCallerAnnounce", first.id)} == {1}
        assert not log.named("QueueCallerAnnounce", second.id)  # a callback is not announced to
        connects = log.named("AgentConnect")
        assert [(e.interaction, e.fields["Agent"]) for e in connects] == [(first.id, "alice"), (second.id, "alice")]
        assert not log.named("QueueCallerAbandon")
        assert log.index("Hangup", first.id) < log.index("Newchannel", callback.id) < log.index("AgentConnect", second.id)
        completes = log.named("AgentComplete")
        assert [e.interaction for e in completes] == [first.id, second.id]
        outbound = [e for e in log.named("Newchannel") if e.fields["Exten"] == CALLBACK_CALLER]
        assert [e.interaction for e in outbound] == [callback.id]
        # nobody is left reserved: alice is free, routing holds nothing
        assert engine.acd.router.statistics()["interactions"] == 0
        assert engine.acd.router.agent_status("alice")["status"] == "available"
