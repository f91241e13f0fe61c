"""Chat visitors over a real WebSocket to the console server, with the real engine."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio
import trio.lowlevel

from engine.testing import open_test_engine
from plugins.chat import plugin as chat_plugin


async def _hello(ws_client, base: str, token: str | None = None):
    client = await ws_client.connect(base)
    await client.send_json({"type": "hello", "token": token, "name": "Lucía"})
    return client, await client.receive("welcome")


async def test_visitor_message_becomes_interaction_agent_reply_arrives_and_reconnect_resumes(tmp_path: Path, chat_config: str, ws_client) -> None:
    async with open_test_engine(chat_config, plugins=[chat_plugin], data_dir=tmp_path) as engine:
        base = engine.console.url
        visitor, welcome = await _hello(ws_client, base)
        token = welcome["token"]
        assert welcome["history"] == []
        await visitor.send_json({"type": "message", "text": "Hola, ¿tenéis envío gratis?"})
        echo = await visitor.receive("message")
        assert echo["direction"] == "inbound"
        queue = await visitor.receive("queue")
        assert queue["position"] >= 0 and "wait" in queue
        (interaction,) = engine.interactions.values()
        assert (interaction.kind.value, interaction.to, interaction.queue) == ("chat", "webchat", "web")
        assert interaction.caller_name == "Lucía"

        await engine.interaction_action(interaction.id, "reply", {"text": "Sí, desde 30 €."})
        reply = await visitor.receive("message")
        assert (reply["direction"], reply["text"]) == ("outbound", "Sí, desde 30 €.")
        await visitor.aclose()

        # A reload: same token, same conversation and history, same interaction.
        again, welcome2 = await _hello(ws_client, base, token)
        assert welcome2["token"] == token
        assert [(m["direction"], m["text"]) for m in welcome2["history"]] == [
            ("inbound", "Hola, ¿tenéis envío gratis?"), ("outbound", "Sí, desde 30 €.")]
        await again.send_json({"type": "message", "text": "¡Genial!"})
        await again.receive("message")
        assert len(engine.interactions) == 1
        await again.aclose()


async def test_widget_script_snippet_and_demo_page_are_public(tmp_path: Path, chat_config: str, ws_client) -> None:
    async with open_test_engine(chat_config, plugins=[chat_plugin], data_dir=tmp_path) as engine:  # noqa: SIM117
        async with httpx.AsyncClient(base_url=engine.console.url) as http:  # (the client needs the engine's URL)
            script = await http.get("/chat/widget.js")
            assert script.status_code == 200 and "javascript" in script.headers["content-type"]
            assert "innerHTML" not in script.text  # visitor and agent text is only ever textContent
            snippet = await http.get("/chat/snippet")
            assert "/chat/widget.js" in snippet.text
            page = await http.get("/chat/")
            assert page.status_code == 200 and "<script src=" in page.text
            assert (await http.get("/api/v1/agents")).status_code == 401  # the API stays private


async def test_invalid_json_floods_and_oversize_are_refused_then_the_socket_closed(tmp_path: Path, chat_config: str, ws_client) -> None:
    async with open_test_engine(chat_config, plugins=[chat_plugin], data_dir=tmp_path) as engine:
        base = engine.console.url
        visitor, _ = await _hello(ws_client, base)
        await visitor.send_text("{not json")
        assert (await visitor.receive("error"))["reason"] == "invalid JSON"
        await visitor.send_json({"type": "message", "text": "x" * 5000})
        assert "longer than" in (await visitor.receive("error"))["reason"]
        for n in range(12):  # a flood: the bucket lets 5 through, the rest are refused
            await visitor.send_json({"type": "message", "text": f"spam {n}"})
        await visitor.wait_closed()
        channel = engine.channels["chat"]
        assert channel.counters["rate_limited"] >= 1 and channel.counters["closed_for_abuse"] == 1
        rows = await engine.store.fetchall("SELECT body FROM msg_messages")
        assert 1 <= len(rows) <= 6  # what was accepted is kept; nothing else
        assert all(r["body"].startswith("spam ") for r in rows)
        # Another visitor is unaffected.
        other, _ = await _hello(ws_client, base)
        await other.send_json({"type": "message", "text": "hola"})
        assert (await other.receive("message"))["text"] == "hola"
        await other.aclose()


async def test_a_visitor_who_never_reads_is_disconnected_and_nothing_is_lost(tmp_path: Path, chat_config: str, ws_client) -> None:
    async with open_test_engine(chat_config, plugins=[chat_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["chat"]
        visitor, welcome = await _hello(ws_client, engine.console.url)
        await visitor.send_json({"type": "message", "text": "send me everything"})
        with trio.fail_after(20):
            while not engine.interactions:
                await trio.sleep(0.02)
        (interaction,) = engine.interactions.values()
        # The visitor stops reading; the agent keeps writing long answers until the socket fills up.
        big = "x" * 60_000
        with trio.fail_after(60):
            sent = 0
            while channel.counters["closed_not_reading"] == 0:
                await channel.send_message(interaction, f"{sent} {big}")
                sent += 1
                await trio.lowlevel.checkpoint()  # let the outbox and the socket pump run
        assert channel.counters["closed_not_reading"] == 1
        session = next(iter(channel.sessions.values()))
        assert session.connections == set()  # no more frames are queued for the stuck socket
        await visitor.aclose()
        # Everything the agent wrote is stored; a reconnect gets it as history.
        with trio.fail_after(30):
            while await channel.messages.pending_count():
                await trio.sleep(0.02)
        again, welcome2 = await _hello(ws_client, engine.console.url, welcome["token"])
        outbound = [m for m in welcome2["history"] if m["direction"] == "outbound"]
        assert len(outbound) == sent
        await again.aclose()


async def test_file_upload_is_stored_within_limits_and_refused_otherwise(tmp_path: Path, chat_config: str, ws_client) -> None:
    async with open_test_engine(chat_config, plugins=[chat_plugin], data_dir=tmp_path) as engine:
        base = engine.console.url
        visitor, welcome = await _hello(ws_client, base)
        token = welcome["token"]
        async with httpx.AsyncClient(base_url=base) as http:
            # No conversation yet (nothing written) and unknown tokens: refused.
            early = await http.post("/chat/upload", content=b"x", headers={"x-chat-token": token, "content-type": "text/plain"})
            assert early.status_code == 403
            await visitor.send_json({"type": "message", "text": "here is the photo"})
            await visitor.receive("message")
            ok = await http.post("/chat/upload", content=b"\x89PNG fake", headers={
                "x-chat-token": token, "content-type": "image/png", "x-filename": "../../etc/router.png"})
            assert ok.status_code == 201
            echo = await visitor.receive("message")
            assert echo["text"].startswith("[file] router.png")
            stored = list((tmp_path / "chat" / "uploads").rglob("router.png"))
            assert len(stored) == 1 and stored[0].read_bytes() == b"\x89PNG fake"
            wrong_type = await http.post("/chat/upload", content=b"MZ", headers={
                "x-chat-token": token, "content-type": "application/x-msdownload"})
            assert wrong_type.status_code == 415
            too_big = await http.post("/chat/upload", content=b"x" * (5 * 1024 * 1024 + 1), headers={
                "x-chat-token": token, "content-type": "text/plain"})
            assert too_big.status_code == 413
            stranger = await http.post("/chat/upload", content=b"x", headers={
                "x-chat-token": "z" * 32, "content-type": "text/plain"})
            assert stranger.status_code == 403
        assert len(list((tmp_path / "chat" / "uploads").rglob("*.*"))) == 1
        await visitor.aclose()


async def test_an_agent_who_does_not_answer_loses_the_conversation_to_the_queue(tmp_path: Path, ws_client) -> None:
    config = """
[[agents]]
id = "alice"
endpoint = "sip:1001"
channels = { chat = 3 }

[[agents]]
id = "bob"
endpoint = "sip:1002"
channels = { chat = 3 }

[[queues]]
name = "web"
members = ["alice", "bob"]
wrapup = 0  # (engine: transferring an active interaction out of a queue with wrap-up fails today)

[[routes]]
match = "webchat"
queue = "web"

[chat]
reoffer_after = 0.5
"""
    async with open_test_engine(config, plugins=[chat_plugin], data_dir=tmp_path) as engine:
        visitor, _ = await _hello(ws_client, engine.console.url)
        await visitor.send_json({"type": "message", "text": "¿hay alguien?"})
        with trio.fail_after(20):
            while not engine.interactions or next(iter(engine.interactions.values())).state.value != "offered":
                await trio.sleep(0.02)
        (interaction,) = engine.interactions.values()
        first_agent = interaction.attributes["offers"][-1]["agent"]
        await engine.interaction_action(interaction.id, "accept", {"agent": first_agent})
        assert interaction.state.value == "active" and interaction.agent == first_agent
        # The agent says nothing: after reoffer_after the conversation is offered again.
        with trio.fail_after(20):
            while interaction.attributes.get("reoffered", 0) < 1:
                await trio.sleep(0.02)
        assert interaction.state.value in ("queued", "offered")
        # An agent who answers in time keeps it.
        with trio.fail_after(20):
            while interaction.state.value != "offered":
                await trio.sleep(0.02)
        second_agent = interaction.attributes["offers"][-1]["agent"]
        await engine.interaction_action(interaction.id, "accept", {"agent": second_agent})
        await engine.interaction_action(interaction.id, "reply", {"text": "Sí, aquí estoy"})
        with trio.move_on_after(1.5):
            while interaction.attributes.get("reoffered", 0) < 2:
                await trio.sleep(0.02)
        assert interaction.attributes["reoffered"] == 1 and interaction.agent == second_agent
        await visitor.aclose()
