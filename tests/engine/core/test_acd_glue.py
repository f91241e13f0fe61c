"""The engine drives the routing core: calls and chats reach agents, events and CDRs tell the story."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from engine import InteractionState, hookimpl
from engine.testing import FakeChannel, FakeVoiceChannel, open_test_engine, wait_until

CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"
channels = { voice = 1, chat = 2 }

[[agents]]
id = "bob"
endpoint = "fake:bob"

[[queues]]
name = "support"
strategy = "linear"
members = ["alice", "bob"]
timeout = 1
wrapup = 0

[[routes]]
match = "100"
queue = "support"

[[routes]]
match = "_2XX"
agent = "bob"

[[routes]]
match = "chat@example.com"
queue = "support"
"""


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)
        registry.add("chat", FakeChannel)



async def test_call_rings_the_first_reachable_agent_and_bridges(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        async with engine.bus.subscribe("test") as events:
            voice = engine.channels["fake"]
            assert isinstance(voice, FakeVoiceChannel)
            voice.register("fake:bob")  # alice is not registered: she gets no voice offers
            call = voice.call("+34911000111", "100")
            await wait_until(lambda: call.state is InteractionState.ACTIVE)
            assert call.agent == "bob" and voice.bridged == [(call.id, "fake:bob")]
            await voice.caller_hangs_up(call)
            names = []
            with trio.move_on_after(2):
                async for event in events:
                    names.append(event.event)
                    if event.event == "Hangup":
                        break
        story = [n for n in names if n in ("Newchannel", "QueueCallerJoin", "AgentCalled", "AgentConnect",
                                            "AgentComplete", "Hangup")]
        assert story == ["Newchannel", "QueueCallerJoin", "AgentCalled", "AgentConnect", "AgentComplete", "Hangup"]
        (cdr,) = await engine.cdr()
        assert cdr["uniqueid"] == call.id and cdr["disposition"] == "ANSWERED" and cdr["dstchannel"] == "bob"


async def test_unanswered_offer_moves_to_the_next_agent(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        voice.register("fake:alice", answering=False)  # rings and rings
        voice.register("fake:bob")
        call = voice.call("+34911000222", "100")
        await wait_until(lambda: call.state is InteractionState.ACTIVE)
        assert [e for _, e in voice.rang] == ["fake:alice", "fake:bob"]
        assert call.agent == "bob"


async def test_direct_agent_route_and_abandon(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        voice.register("fake:bob", answering=False)
        call = voice.call("+34911000333", "250")
        await wait_until(lambda: voice.rang)
        assert voice.rang[0] == (call.id, "fake:bob")
        await voice.caller_hangs_up(call)
        assert call.state is InteractionState.ENDED and call.attributes.get("abandoned")
        (cdr,) = await engine.cdr()
        assert cdr["disposition"] == "NO ANSWER"


async def test_chat_is_offered_accepted_replied_and_closed_through_the_api(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        chat = engine.channels["chat"]
        assert isinstance(chat, FakeChannel)
        conversation = chat.receive("visitor-1", "chat@example.com", "hello?")
        await wait_until(lambda: conversation.state is InteractionState.OFFERED)
        offered_to = conversation.attributes["offers"][-1]["agent"]
        assert offered_to == "alice"  # linear: alice first; chat needs no reachable phone
        await engine.interaction_action(conversation.id, "accept", {"agent": "alice"})
        assert conversation.state is InteractionState.ACTIVE
        reply = await engine.interaction_action(conversation.id, "reply", {"text": "Hi, how can I help?"})
        assert chat.sent == [(conversation.id, "Hi, how can I help?")] and reply["message_id"]
        await engine.interaction_action(conversation.id, "hangup", {})
        assert conversation.state is InteractionState.ENDED


async def test_paused_agent_gets_no_offers(tmp_path: Path) -> None:
    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        voice.register("fake:alice")
        voice.register("fake:bob")
        engine.set_agent_state("alice", "paused", "lunch")
        agents = {a["id"]: a for a in engine.list_agents()}
        assert agents["alice"]["state"] == "paused" and agents["alice"]["reason"] == "lunch"
        call = voice.call("+34911000444", "100")
        await wait_until(lambda: call.state is InteractionState.ACTIVE)
        assert call.agent == "bob"
        detail = engine.queue_detail("support")
        assert detail["answered"] == 1 and detail["waiting"] == 0


async def test_reload_changes_queues_without_dropping_a_waiting_caller(tmp_path: Path) -> None:
    from engine.testing import load_test_config

    async with open_test_engine(CONFIG, plugins=[Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        call = voice.call("+34911000555", "100")  # nobody registered: the caller waits
        await wait_until(lambda: call.state is InteractionState.QUEUED)
        bigger = CONFIG.replace('members = ["alice", "bob"]', 'members = ["alice", "bob", "carol"]') + (
            '\n[[agents]]\nid = "carol"\nendpoint = "fake:carol"\n'
        )
        engine.reload(load_test_config(f'[engine]\ndata_dir = "{tmp_path}"\n' + bigger, engine.plugins, tmp_path))
        assert call.state is InteractionState.QUEUED
        voice.register("fake:carol")
        await wait_until(lambda: call.state is InteractionState.ACTIVE)
        assert call.agent == "carol"
