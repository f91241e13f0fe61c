from __future__ import annotations

import socket

import trio


async def _wait_subscribers(console, count: int) -> None:
    with trio.fail_after(30):
        while console.bus.statistics().subscribers < count:
            await trio.sleep(0.01)


async def test_events_need_credentials(console, ws_connect):
    client = await ws_connect(console, [])
    assert client.status == 401
    await client.aclose()
    client = await ws_connect(console, [("authorization", "Bearer wrong")])
    assert client.status == 401
    await client.aclose()


async def test_events_arrive_in_order_as_json(console, ws_connect):
    token = await console.token("agent")
    client = await ws_connect(console, [("authorization", f"Bearer {token}")])
    assert client.status == 101
    await _wait_subscribers(console, 1)
    for position in range(1, 51):
        console.bus.publish("QueueCallerJoin", interaction=f"i{position}", Queue="support", Position=position,
                            CallerIDName="<script>alert(1)</script>")
    with trio.fail_after(30):
        received = [await client.recv_json() for _ in range(50)]
    assert [e["Position"] for e in received] == list(range(1, 51))
    first = received[0]
    assert first["event"] == "QueueCallerJoin" and first["interaction"] == "i1" and first["timestamp"].endswith("Z")
    assert first["CallerIDName"] == "<script>alert(1)</script>"  # data, escaped by JSON; pages escape it again
    await client.aclose()


async def test_non_reading_client_never_stalls_the_bus_and_is_dropped(make_console, tmp_path, ws_connect):
    async with make_console(tmp_path, ws_buffer=16, send_timeout=2.0) as console:
        token = await console.token("agent")
        headers = [("authorization", f"Bearer {token}")]
        sleeper = await ws_connect(console, headers)
        # a tiny receive window so the server's sends back up quickly
        sleeper.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader = await ws_connect(console, headers)
        await _wait_subscribers(console, 2)
        padding = "x" * 4000
        sequence = 0
        with trio.fail_after(60):
            while console.server.statistics()["ws_open"] > 1:
                # publishing returns at once every time: the bus never blocks on the sleeping client
                batch = range(sequence, sequence + 8)
                for n in batch:
                    console.bus.publish("MessageReceived", Seq=n, Text=padding)
                sequence += 8
                assert [(await reader.recv_json())["Seq"] for _ in batch] == list(batch)
        stats = console.server.statistics()
        assert stats["ws_closed_too_slow"] == 1
        assert console.bus.statistics().subscribers == 1
        # the reading client kept receiving after the sleeper was dropped
        console.bus.publish("MessageReceived", Seq=-5, Text="after")
        with trio.fail_after(30):
            while True:
                event = await reader.recv_json()
                if event["Seq"] == -5:
                    break
        await reader.aclose()
        await sleeper.aclose()


async def test_slow_client_gets_close_reason(make_console, tmp_path, ws_connect):
    async with make_console(tmp_path, ws_buffer=4) as console:
        token = await console.token("agent")
        client = await ws_connect(console, [("authorization", f"Bearer {token}")])
        await _wait_subscribers(console, 1)
        for n in range(200):
            console.bus.publish("MessageReceived", Seq=n)
        with trio.fail_after(30):
            while await client.recv_json() is not None:
                pass
        assert client.close_code == 1013 and "too slow" in client.close_reason
        await client.aclose()


async def test_agents_do_not_receive_other_agents_message_text(console, ws_connect):
    alice_token = await console.token("agent", "alice")
    sup_token = await console.token("supervisor", "sue")
    alice = await ws_connect(console, [("authorization", f"Bearer {alice_token}")])
    sup = await ws_connect(console, [("authorization", f"Bearer {sup_token}")])
    await _wait_subscribers(console, 2)
    console.bus.publish("MessageReceived", interaction="i2", Message="bob's customer's secret")  # i2 is bob's
    console.bus.publish("MessageReceived", interaction="i1", Message="for alice")
    console.bus.publish("QueueMemberPause", Queue="support", Agent="bob", Paused=1)
    with trio.fail_after(30):
        alice_got = [await alice.recv_json() for _ in range(2)]
        sup_got = [await sup.recv_json() for _ in range(3)]
    assert [e.get("Message") for e in alice_got] == ["for alice", None]
    assert alice_got[1]["event"] == "QueueMemberPause"
    assert [e.get("Message") for e in sup_got] == ["bob's customer's secret", "for alice", None]
    await alice.aclose()
    await sup.aclose()
