"""A real visitor: headless Chromium (Debian's) opens a page with the widget, writes, sees its queue
position, gets the agent's answer (which becomes 'read' once the page shows it), reloads and still has the conversation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from engine.testing import open_test_engine
from plugins.chat import plugin as chat_plugin

CHROMIUM = "/usr/bin/chromium"


def _browser_visit(url: str, agent_reply, reply_status) -> dict[str, object]:  # runs in a worker thread
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: .venv/bin/pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    seen: dict[str, object] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--headless=new"])
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(url)
            page.wait_for_selector("#centralita-chat-input")
            page.fill("#centralita-chat-input", "Hola, <b>necesito</b> ayuda")
            page.click("#centralita-chat-send")
            page.wait_for_function(
                "document.getElementById('centralita-chat-status').textContent.includes('in the queue')")
            seen["status"] = page.text_content("#centralita-chat-status")
            agent_reply()
            page.wait_for_selector(".cc-outbound >> text=Hola, soy Alice")
            seen["reply_status"] = reply_status()  # the widget showed it: 'read'
            seen["bold_tags"] = page.eval_on_selector_all("#centralita-chat-log b", "els => els.length")
            page.reload()
            page.wait_for_selector(".cc-outbound >> text=Hola, soy Alice")
            seen["after_reload"] = page.eval_on_selector_all(
                "#centralita-chat-log .cc-msg", "els => els.map(e => [e.className, e.textContent])")
        finally:
            browser.close()
    return seen


async def test_visitor_in_chromium_talks_to_an_agent_and_survives_a_reload(tmp_path: Path, chat_config: str) -> None:
    async with open_test_engine(chat_config, plugins=[chat_plugin], data_dir=tmp_path) as engine:
        async def reply() -> None:
            with trio.fail_after(30):
                while not engine.interactions:
                    await trio.sleep(0.02)
            (interaction,) = engine.interactions.values()
            await engine.interaction_action(interaction.id, "reply", {"text": "Hola, soy Alice. ¿En qué puedo ayudar?"})

        async def reply_read() -> str:
            with trio.fail_after(30):
                while True:
                    row = await engine.store.fetchone("SELECT status FROM msg_messages WHERE direction='outbound'")
                    if row is not None and row["status"] == "read":
                        return "read"
                    await trio.sleep(0.02)

        seen = await trio.to_thread.run_sync(
            _browser_visit, engine.console.url + "/chat/", lambda: trio.from_thread.run(reply),
            lambda: trio.from_thread.run(reply_read),
        )
    assert "number 1 in the queue" in str(seen["status"])
    assert seen["reply_status"] == "read"
    assert seen["bold_tags"] == 0  # the visitor's "<b>" was shown as text, never parsed as HTML
    assert seen["after_reload"] == [
        ["cc-msg cc-inbound", "Hola, <b>necesito</b> ayuda"],
        ["cc-msg cc-outbound", "Hola, soy Alice. ¿En qué puedo ayudar?"],
    ]
