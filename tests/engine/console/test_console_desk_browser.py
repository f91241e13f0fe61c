"""The agent desk in a real browser with a real chat visitor: two headless Chromium contexts (Debian's
chromium, Playwright's sync API in a worker thread) against the real engine, chat channel and CRM.

Alice logs in and waits on /desk. A visitor on a shop's page (which tells the widget who she is)
writes; the desk shows the offer with the CRM screen pop, without a reload. Alice accepts, inserts a
canned response, types (the visitor sees "The agent is typing…"), sends, sees the visitor typing,
and sets a disposition with a note, which lands in the CRM. Screenshots go to
``<repo>/build/screenshots/console/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from engine.console import add_token, add_user
from engine.testing import open_test_engine
from plugins.chat import plugin as chat_plugin
from plugins.crm_sqlite import plugin as crm_plugin
from plugins.crm_sqlite._model import ContactRow

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "build" / "screenshots" / "console"
XSS = '<img src=x onerror="window.__xss=1">'

CONFIG = """
[[agents]]
id = "alice"
name = "Alice"
channels = { chat = 2 }

[[queues]]
name = "web"
members = ["alice"]
wrapup = 0

[[routes]]
match = "webchat"
queue = "web"

[chat]
queue_update_interval = 0.2
reoffer_after = 0
"""


def first_login(page: Any, user: str, one_time: str) -> None:
    """Log in with the one-time password and replace it, as the console forces."""
    page.goto("/login")
    page.fill('input[name="user"]', user)
    page.fill('input[name="password"]', one_time)
    page.click('button[type="submit"]')
    for field in ("current", "new", "confirm"):
        page.fill(f'input[name="{field}"]', one_time if field == "current" else f"{user}'s own password")
    page.click('button[type="submit"]')


def _session(url: str, password: str, supervisor_password: str) -> dict[str, Any]:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: .venv/bin/pip install playwright (the browser is Debian's chromium)")
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Any] = {}
    shop_page = (f'<!doctype html><html><head><meta charset="utf-8"><title>Shop</title></head><body><h1>Shop</h1>'
                 f'<script src="{url}/chat/widget.js" data-name="Ana" data-email="ana@example.com" async></script></body></html>')
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            agent = browser.new_context(base_url=url, viewport={"width": 1280, "height": 1000})
            desk = agent.new_page()
            desk.set_default_timeout(20_000)
            first_login(desk, "alice", password)
            expect(desk.locator("h1")).to_have_text("Agent desk")
            expect(desk.locator("#live-status")).to_have_text("live")
            desk.evaluate("() => { window.__sameDocument = true; }")  # gone if the page ever reloads

            visitor_context = browser.new_context(viewport={"width": 900, "height": 800})
            visitor = visitor_context.new_page()
            visitor.set_default_timeout(20_000)
            visitor.goto(url + "/livez")  # a real loopback page first: Chromium lets its documents reach loopback
            visitor.set_content(shop_page)
            visitor.wait_for_selector("#centralita-chat-input")
            visitor.fill("#centralita-chat-input", "Hola, tengo un problema con la factura")
            visitor.click("#centralita-chat-send")

            # the offer arrives live, with the CRM screen pop (escaped)
            offer = desk.locator("#offers article.offer")
            expect(offer).to_contain_text("chat from Ana")
            expect(offer.locator(".pop .contact-name")).to_have_text(f"Ana García {XSS}")
            expect(offer.locator(".pop")).to_contain_text("plan: gold")
            expect(offer.locator(".pop .notes")).to_contain_text(f"VIP, prefers Spanish {XSS}")
            desk.screenshot(path=str(SCREENSHOTS / "desk-screen-pop.png"), full_page=True)
            offer.locator("button", has_text="Accept").click()

            conversation = desk.locator("article.conversation")
            expect(conversation.locator(".transcript")).to_contain_text("Hola, tengo un problema con la factura")
            expect(visitor.locator("#centralita-chat-status")).to_have_text("An agent is with you")

            # a canned response with the customer's name filled in, then more typing: the visitor sees it
            conversation.locator("select.canned").select_option(label="Greeting")
            textarea = conversation.locator("textarea")
            expect(textarea).to_have_value("Hola Ana, soy Alice.")
            textarea.press("End")
            textarea.press_sequentially(" ¿En qué puedo ayudarle?", delay=40)
            expect(visitor.locator("#centralita-chat-typing")).to_have_text("The agent is typing…")
            visitor.screenshot(path=str(SCREENSHOTS / "chat-visitor-agent-typing.png"))
            conversation.locator(".reply button").click()
            expect(visitor.locator(".cc-outbound")).to_have_text("Hola Ana, soy Alice. ¿En qué puedo ayudarle?")
            expect(visitor.locator("#centralita-chat-typing")).to_have_text("")
            expect(conversation.locator(".transcript")).to_contain_text("Hola Ana, soy Alice. ¿En qué puedo ayudarle?")
            expect(textarea).to_have_value("")

            # the visitor types: the desk shows it
            visitor.locator("#centralita-chat-input").press_sequentially("Gracias, es la factura de marzo", delay=60)
            expect(conversation.locator(".typing")).to_have_text("The customer is typing…")
            desk.screenshot(path=str(SCREENSHOTS / "desk-conversation-live.png"), full_page=True)
            visitor.click("#centralita-chat-send")
            expect(conversation.locator(".transcript")).to_contain_text("Gracias, es la factura de marzo")

            # disposition with a note: it goes to the CRM
            conversation.locator('.disposition input[name="disposition"]').fill("resolved")
            conversation.locator('.disposition input[name="notes"]').fill(f"March invoice re-sent {XSS}")
            conversation.locator(".disposition button").click()
            expect(conversation.locator(".pop .notes")).to_contain_text("March invoice re-sent")  # the CRM has it
            conversation.locator('button[value="hangup"]').click()
            expect(desk.locator("#conversations")).to_contain_text("None right now.")
            seen["same_document"] = desk.evaluate("() => window.__sameDocument === true")
            seen["xss"] = desk.evaluate("() => window.__xss === 1") or visitor.evaluate("() => window.__xss === 1")
            desk.screenshot(path=str(SCREENSHOTS / "desk-after-disposition.png"), full_page=True)

            # the supervisor: agents with their queues, and the canned responses page
            boss = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900}).new_page()
            boss.set_default_timeout(20_000)
            first_login(boss, "sue", supervisor_password)
            boss.goto("/supervise")
            expect(boss.locator("#supervise-agents")).to_contain_text("alice")
            boss.screenshot(path=str(SCREENSHOTS / "supervise.png"), full_page=True)
            boss.goto("/canned")
            boss.fill('input[name="title"]', f"Thanks {XSS}")
            boss.fill('textarea[name="body"]', f"Gracias, {{customer_name}} {XSS}")
            boss.click('form.card button[type="submit"]')
            expect(boss.locator("#canned")).to_contain_text(f"Gracias, {{customer_name}} {XSS}")
            boss.screenshot(path=str(SCREENSHOTS / "canned.png"), full_page=True)
            seen["xss"] = seen["xss"] or boss.evaluate("() => window.__xss === 1")
        finally:
            browser.close()
    return seen


async def test_agent_desk_in_a_real_browser_with_a_real_chat_visitor(tmp_path):
    async with open_test_engine(CONFIG, plugins=[chat_plugin, crm_plugin], data_dir=tmp_path) as engine:
        (crm,) = engine.crm.values()
        contact = await crm.create(ContactRow(name=f"Ana García {XSS}", emails=["ana@example.com"], fields={"plan": "gold"}))
        await crm.add_note(contact, "bob", f"VIP, prefers Spanish {XSS}")
        from engine.console._canned import add_canned

        await add_canned(engine.store, "Greeting", "Hola {customer_name}, soy {agent_name}.", "web", "sue")
        await add_canned(engine.store, "Bye", "Adiós", None, "sue")
        await add_token(engine.store, "ops", "admin")
        password = await add_user(engine.store, "alice", "agent")
        supervisor_password = await add_user(engine.store, "sue", "supervisor")
        with trio.fail_after(240):
            seen = await trio.to_thread.run_sync(_session, engine.console.url, password, supervisor_password)
        notes = [n["text"] for n in await crm.notes(contact)]
        (chat,) = [i for i in engine.all_interactions() if i.kind.value == "chat"]
    assert seen == {"same_document": True, "xss": False}
    assert notes[-1] == f"March invoice re-sent {XSS}"
    assert chat.attributes["disposition"] == "resolved" and chat.state.value == "ended"
    assert all((SCREENSHOTS / f"{name}.png").stat().st_size > 0
               for name in ("desk-screen-pop", "desk-conversation-live", "chat-visitor-agent-typing", "supervise", "canned"))
