"""Issue #5's bad inputs end to end: callers who hang up during the IVR menu, during a position
announcement in the queue, and during the callback confirmation. Each is counted as what it was (only
the one in the queue is an abandon), no callback is booked, and nothing stays reserved: routing holds
nothing, the agent who logs in afterwards is offered nothing, no RTP endpoint is left open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from routing_e2e_helpers import caller_args, free_port_trio, start_sipp, write_tone
from sip_interop_helpers import free_udp_port
from test_routing_e2e import ENGINE, EventLog

from engine import InteractionState
from engine.console import add_token
from engine.testing import wait_until

pytestmark = pytest.mark.interop

SIP = """
[[sip.users]]
name = "1001"
password = "s3cret"

[[sip.trunks]]
name = "callers"
server = "sip:127.0.0.1:{port}"
"""


async def call(nursery: trio.Nursery, engine: Any, scenario: str, caller: str, port: int) -> Any:
    run = start_sipp(nursery, scenario, caller_args(
        engine.channels["sip"].bound[0].port, scenario, service="500", caller=caller, sip_port=port,
        media_port=free_port_trio()))
    with trio.fail_after(60):
        await run.done.wait()
    assert run.ok, run.describe()
    interaction = next(i for i in engine.all_interactions() if i.from_ == caller)
    await wait_until(lambda: interaction.state is InteractionState.ENDED)
    return interaction


async def test_hang_ups_in_the_menu_the_queue_and_the_callback_confirmation(routing_engine, tmp_path: Path) -> None:
    prompts = tmp_path / "engine" / "prompts" / "en"
    write_tone(prompts / "main-menu.wav", 600, 6)
    write_tone(prompts / "callback-confirm.wav", 800, 6)
    write_tone(prompts / "callback-booked.wav", 1400, 0.5)
    write_tone(prompts / "queue-you-are-next.wav", 1000, 5)  # long: the caller hangs up in the middle of it
    port = free_udp_port()
    log = EventLog()
    async with routing_engine(ENGINE, sip=SIP.format(port=port)) as (engine, _channel):
        token = await add_token(engine.store, "e2e", "supervisor")
        async with httpx.AsyncClient(base_url=engine.console.url, headers={"Authorization": f"Bearer {token}"}) as api:
            async with trio.open_nursery() as nursery:
                await nursery.start(log.collect, engine)
                seen_announcing: list[str] = []

                async def watch_announcements() -> None:
                    while True:
                        if engine.acd.statistics()["announcing"]:
                            seen_announcing.extend(engine.acd._announcing)
                        await trio.sleep(0.02)

                nursery.start_soon(watch_announcements)
                in_menu = await call(nursery, engine, "caller_hangs_up_in_menu.xml", "600100301", port)
                waiting = await call(nursery, engine, "caller_hangs_up_waiting.xml", "600100302", port)
                confirming = await call(nursery, engine, "caller_hangs_up_confirming.xml", "600100303", port)
                await wait_until(lambda: engine.ivr.statistics()["active"] == 0)
                nursery.cancel_scope.cancel()

            assert in_menu.attributes["ivr"]["outcome"] == "caller-hangup" and in_menu.attributes["ivr"]["node"] == "menu"
            assert confirming.attributes["ivr"]["outcome"] == "caller-hangup"
            assert confirming.attributes["ivr"]["node"] == "confirm"
            assert waiting.attributes["ivr"]["outcome"] == "queue" and waiting.attributes.get("abandoned") is True
            assert waiting.id in seen_announcing  # it hung up while the announcement was being said

            # Counted as what they were: one abandon (the caller in the queue), no callback booked.
            sales = (await api.get("/api/v1/queues/sales")).json()
            assert (sales["joined"], sales["abandoned"], sales["answered"], sales["waiting"]) == (1, 1, 0, 0)
            (abandon,) = log.named("QueueCallerAbandon")
            assert abandon.interaction == waiting.id and abandon.fields["Position"] == 1
            assert [e.interaction for e in log.named("QueueCallerJoin")] == [waiting.id]
            rows = {row["uniqueid"]: row for row in await engine.cdr()}
            assert set(rows) == {in_menu.id, waiting.id, confirming.id}
            assert rows[waiting.id]["dcontext"] == "sales" and rows[waiting.id]["dstchannel"] == ""
            assert rows[in_menu.id]["dcontext"] == "" and rows[confirming.id]["dcontext"] == ""
            for iid in rows:
                assert len(log.named("Hangup", iid)) == 1

            # Nothing leaked: routing holds nothing, no announcement is still being said, no RTP endpoint
            # is open, and the agent who logs in now is offered nothing (no callback to dial).
            assert engine.acd.router.statistics()["interactions"] == 0
            assert engine.acd.statistics()["announcing"] == 0 and engine.acd.statistics()["ringing"] == 0
            await wait_until(lambda: engine.media.statistics()["endpoints"] == 0)
            response = await api.post("/api/v1/agents/alice/state", json={"state": "available"})
            assert response.status_code == 200, response.text
            # Routing offers synchronously on login: a leaked entry would have made alice "ringing" by now.
            assert engine.acd.router.agent_status("alice")["status"] == "available"
            assert engine.acd.router.statistics()["interactions"] == 0 and not log.named("AgentCalled")
            assert (await api.get("/api/v1/queues/sales")).json()["waiting"] == 0
