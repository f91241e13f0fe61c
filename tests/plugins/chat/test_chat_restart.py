"""A chat conversation open across an engine restart (a visitor over a real WebSocket).

The visitor leaves; the agent's reply is stored for them while they are away; the visitor comes back and
writes again, and the engine stops before anyone answers. Started again on the same data directory, the
conversation waits in its queue again, the visitor's token still finds it, the history holds every message
exactly once, and the conversation goes on.
"""

from __future__ import annotations

from pathlib import Path

import trio

from engine.testing import open_test_engine
from plugins.chat import plugin as chat_plugin


async def _hello(ws_client, base: str, token: str | None = None):
    client = await ws_client.connect(base)
    await client.send_json({"type": "hello", "token": token, "name": "Lucía"})
    return client, await client.receive("welcome")


def _texts(history) -> list[tuple[str, str]]:
    return [(m["direction"], m["text"]) for m in history]


async def test_open_chat_conversation_survives_a_restart(tmp_path: Path, chat_config: str, ws_client) -> None:
    async with open_test_engine(chat_config, plugins=[chat_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["chat"]
        visitor, welcome = await _hello(ws_client, engine.console.url)
        token = welcome["token"]
        await visitor.send_json({"type": "message", "text": "¿Hacéis devoluciones?"})
        await visitor.receive("message")
        (interaction,) = engine.interactions.values()
        await visitor.aclose()  # the visitor's link is down while the agent answers

        await engine.interaction_action(interaction.id, "reply", {"text": "Sí, 30 días."})
        with trio.fail_after(20):
            while await channel.messages.pending_count():
                await trio.sleep(0.02)

        back, welcome = await _hello(ws_client, engine.console.url, token)
        assert _texts(welcome["history"]) == [("inbound", "¿Hacéis devoluciones?"), ("outbound", "Sí, 30 días.")]
        await back.send_json({"type": "message", "text": "¿Y sin ticket?"})  # received, not yet answered
        await back.receive("message")
        await back.aclose()

    async with open_test_engine(chat_config, plugins=[chat_plugin], data_dir=tmp_path) as engine:
        # The conversation is offered again without the visitor doing anything.
        with trio.fail_after(20):
            while not engine.interactions:
                await trio.sleep(0.02)
        (restored,) = engine.interactions.values()
        assert (restored.kind.value, restored.queue) == ("chat", "web")
        assert restored.attributes.get("restored") is True

        visitor, welcome = await _hello(ws_client, engine.console.url, token)
        assert welcome["token"] == token
        assert _texts(welcome["history"]) == [
            ("inbound", "¿Hacéis devoluciones?"), ("outbound", "Sí, 30 días."), ("inbound", "¿Y sin ticket?")]

        # The agent answers through the restored interaction and the visitor gets it live, once.
        await engine.interaction_action(restored.id, "reply", {"text": "Con el justificante de pago vale."})
        reply = await visitor.receive("message")
        assert (reply["direction"], reply["text"]) == ("outbound", "Con el justificante de pago vale.")
        await visitor.send_json({"type": "message", "text": "Gracias"})
        await visitor.receive("message")
        assert len(engine.interactions) == 1
        rows = await engine.store.fetchall("SELECT direction, body FROM msg_messages ORDER BY seq")
        assert [(r["direction"], r["body"]) for r in rows] == [
            ("inbound", "¿Hacéis devoluciones?"), ("outbound", "Sí, 30 días."), ("inbound", "¿Y sin ticket?"),
            ("outbound", "Con el justificante de pago vale."), ("inbound", "Gracias")]
        assert (await engine.store.fetchone("SELECT count(*) AS n FROM msg_conversations")) == {"n": 1}
        await visitor.aclose()
