"""The ``read`` status, both ways: the visitor's widget says what it showed (``seen``), the agent opens the
conversation (``POST /api/v1/interactions/{id}/read``); the statuses are visible in the desk transcript."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from engine.console import add_token
from engine.testing import open_test_engine, wait_until
from plugins.chat import plugin as chat_plugin
from plugins.chat._protocol import Seen, VisitorError, parse_frame


async def _hello(ws_client, base: str, token: str | None = None):
    client = await ws_client.connect(base)
    await client.send_json({"type": "hello", "token": token, "name": "Lucía"})
    return client, await client.receive("welcome")


async def _agent_message(visitor):
    while True:  # the visitor's own lines come back too
        message = await visitor.receive("message")
        if message["direction"] == "outbound":
            return message


def test_seen_frame_is_parsed_and_bad_ones_refused() -> None:
    assert parse_frame('{"type": "seen", "id": "1f3a9c04be"}', max_chars=2000) == Seen("1f3a9c04be")
    for bad in ('{"type": "seen"}', '{"type": "seen", "id": 5}', '{"type": "seen", "id": ""}',
                '{"type": "seen", "id": "' + "x" * 41 + '"}'):
        try:
            parse_frame(bad, max_chars=2000)
        except VisitorError:
            continue
        raise AssertionError(f"accepted {bad}")


async def test_agent_messages_become_read_when_the_widget_shows_them_and_customer_messages_when_the_agent_opens_them(
        tmp_path: Path, chat_config: str, ws_client) -> None:
    async with open_test_engine(chat_config, plugins=[chat_plugin], data_dir=tmp_path) as engine:
        tokens = {name: await add_token(engine.store, name, "agent") for name in ("alice", "bob")}
        auth = {name: {"authorization": f"Bearer {token}"} for name, token in tokens.items()}
        visitor, _ = await _hello(ws_client, engine.console.url)
        await visitor.send_json({"type": "message", "text": "¿Dónde está mi pedido?"})
        await wait_until(lambda: any(i.state.value == "offered" for i in engine.interactions.values()), timeout=30)
        (item,) = engine.interactions.values()
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            async def statuses() -> list[tuple[str, str]]:
                r = await client.get(f"/api/v1/interactions/{item.id}/messages", headers=auth["alice"])
                assert r.status_code == 200
                return [(m["direction"], m["status"]) for m in r.json()]

            assert (await client.post(f"/api/v1/interactions/{item.id}/accept", headers=auth["alice"], json={})).status_code == 200
            assert await statuses() == [("inbound", "received")]
            # Only the agent who has the conversation can mark it read.
            assert (await client.post(f"/api/v1/interactions/{item.id}/read", headers=auth["bob"], json={})).status_code == 403
            assert await statuses() == [("inbound", "received")]
            r = await client.post(f"/api/v1/interactions/{item.id}/read", headers=auth["alice"], json={})
            assert r.status_code == 200 and r.json()["marked_read"] == 1
            assert await statuses() == [("inbound", "read")]

            for text in ("Está en reparto.", "Llega hoy."):
                await client.post(f"/api/v1/interactions/{item.id}/reply", headers=auth["alice"], json={"text": text})
            first, second = await _agent_message(visitor), await _agent_message(visitor)
            channel = engine.channels["chat"]

            with trio.fail_after(30):
                while await channel.messages.pending_count():
                    await trio.sleep(0.02)
            assert await statuses() == [("inbound", "read"), ("outbound", "sent"), ("outbound", "sent")]

            # A hostile or mistaken "seen": an inbound id, an unknown id, another visitor's message: no change.
            other, _ = await _hello(ws_client, engine.console.url)
            await other.send_json({"type": "message", "text": "hola"})
            own_line = await other.receive("message")
            await other.send_json({"type": "seen", "id": first["id"]})
            await visitor.send_json({"type": "seen", "id": own_line["id"]})
            await visitor.send_json({"type": "seen", "id": "0123456789"})
            await visitor.send_json({"type": "ping"})
            await visitor.receive("pong")  # frames are handled in order: the seen frames above are done
            await other.send_json({"type": "ping"})
            await other.receive("pong")
            assert await statuses() == [("inbound", "read"), ("outbound", "sent"), ("outbound", "sent")]

            # The widget showed the first reply: it is read, the second is not yet.
            await visitor.send_json({"type": "seen", "id": first["id"]})
            await visitor.send_json({"type": "ping"})
            await visitor.receive("pong")
            assert await statuses() == [("inbound", "read"), ("outbound", "read"), ("outbound", "sent")]
            await visitor.send_json({"type": "seen", "id": second["id"]})
            await visitor.send_json({"type": "ping"})
            await visitor.receive("pong")
            assert await statuses() == [("inbound", "read"), ("outbound", "read"), ("outbound", "read")]

            # A new customer message is unread again until the agent opens the conversation.
            await visitor.send_json({"type": "message", "text": "Gracias"})
            await wait_until(lambda: channel.counters["received"] == 3, timeout=30)
            assert (await statuses())[-1] == ("inbound", "received")
            r = await client.post(f"/api/v1/interactions/{item.id}/read", headers=auth["alice"], json={})
            assert r.json()["marked_read"] == 1
            assert [s for d, s in await statuses() if d == "inbound"] == ["read", "read"]
        await visitor.aclose()
        await other.aclose()
