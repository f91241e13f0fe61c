"""What one agent desk refresh costs the server: ``GET /desk/live`` for an agent with N chats in
progress (transcripts, CRM screen pops, canned responses), against ``GET /api/v1/agents`` in the same
run as the yardstick. desk.js fetches ``/desk/live`` after each event about its agent.

Prints JSON. CPU is the process's (client and server share it), per request; the ratio to the
yardstick is what survives a noisy machine.

    .venv/bin/python benchmarks/console_desk.py --chats 3 --messages 50 --requests 200
"""

from __future__ import annotations

import argparse
import json
import os
import time

import httpx
import trio

from engine.console import add_token
from engine.console._canned import add_canned
from engine.testing import open_test_engine, wait_until
from plugins.chat import plugin as chat_plugin
from plugins.crm_sqlite import plugin as crm_plugin
from plugins.crm_sqlite._model import ContactRow

CONFIG = """
[[agents]]
id = "alice"
name = "Alice"
channels = { chat = 10 }

[[queues]]
name = "web"
members = ["alice"]

[[routes]]
match = "webchat"
queue = "web"

[chat]
reoffer_after = 0
rate = 1000.0
burst = 1000
"""


async def _measure(client: httpx.AsyncClient, path: str, headers: dict[str, str], requests: int) -> dict[str, float]:
    await client.get(path, headers=headers)  # warm caches (screen pops, imports)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(requests):
        r = await client.get(path, headers=headers)
        assert r.status_code == 200, r.text[:200]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_ms_per_request": 1000 * cpu / requests, "wall_ms_per_request": 1000 * wall / requests,
            "bytes": len(r.content)}


async def main(chats: int, messages: int, requests: int) -> dict[str, object]:
    async with open_test_engine(CONFIG, plugins=[chat_plugin, crm_plugin]) as engine:
        channel = engine.channels["chat"]
        (crm,) = engine.crm.values()
        for n in range(5):
            await add_canned(engine.store, f"Canned {n}", "Hola {customer_name}, soy {agent_name}.", "web" if n % 2 else None, "sue")
        for n in range(chats):
            contact = await crm.create(ContactRow(name=f"Customer {n}", emails=[f"c{n}@example.com"], fields={"plan": "gold"}))
            for k in range(5):
                await crm.add_note(contact, "bob", f"note {k}")
            session, _ = await channel.open_session(None, f"Customer {n}", f"c{n}@example.com")
            await channel.visitor_says(session, "hola")
        await wait_until(lambda: len(engine.acd.router.agent_status("alice")["offers"]) == chats, timeout=60)
        for interaction in list(engine.acd.router.agent_status("alice")["offers"]):
            await engine.interaction_action(interaction, "accept", {"agent": "alice"})
            item = engine.find_interaction(interaction)
            session = channel.by_conversation[item.attributes["conversation"]]
            for k in range(messages // 2):
                await channel.visitor_says(session, f"message {k} from the customer")
                await engine.interaction_action(interaction, "reply", {"text": f"answer {k} from the agent"})
        token = await add_token(engine.store, "alice", "agent")
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=60) as client:
            yardstick = await _measure(client, "/api/v1/agents", headers, requests)
            desk = await _measure(client, "/desk/live", headers, requests)
    return {
        "benchmark": "console_desk", "chats": chats, "messages_per_chat": messages, "requests": requests,
        "agents_api": yardstick, "desk_live": desk,
        "desk_cpu_ratio_to_agents_api": desk["cpu_ms_per_request"] / yardstick["cpu_ms_per_request"],
        "load_average": os.getloadavg(), "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=3)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(trio.run(main, args.chats, args.messages, args.requests), indent=2))
