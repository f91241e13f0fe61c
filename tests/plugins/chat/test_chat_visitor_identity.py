"""What a website may say about its visitor in ``hello`` (``data-name``/``data-email`` on the widget's
script tag): accepted when plain, refused with a reason otherwise, and carried to the interaction as a
claim (``claimed_email``), never as the customer's identity."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.testing import open_test_engine, wait_until
from plugins.chat import VisitorError, parse_frame
from plugins.chat import plugin as chat_plugin
from plugins.chat._protocol import Hello


def test_a_plain_email_is_accepted() -> None:
    frame = '{"type":"hello","token":null,"name":"Ana","email":"ana@example.com"}'
    assert parse_frame(frame, max_chars=100) == Hello(None, "Ana", "ana@example.com")


@pytest.mark.parametrize("email", ["ana", "ana@localhost", "<ana@example.com>", "ana@example.com\r\nBcc: x@y.z",
                                   "a b@example.com", "a,b@example.com", "\"a\"@example.com", "x" * 250 + "@e.com"])
def test_an_email_that_is_not_plain_is_refused(email: str) -> None:
    import json

    with pytest.raises(VisitorError, match="email"):
        parse_frame(json.dumps({"type": "hello", "token": None, "email": email}), max_chars=100)


@pytest.mark.parametrize("value", ["5", "true", "[]", "{}"])
def test_an_email_of_the_wrong_type_is_refused(value: str) -> None:
    with pytest.raises(VisitorError, match="email"):
        parse_frame('{"type":"hello","token":null,"email":' + value + "}", max_chars=100)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_email_text_is_either_refused_or_plain(email: str) -> None:
    import json

    try:
        hello = parse_frame(json.dumps({"type": "hello", "token": None, "email": email}), max_chars=100)
    except VisitorError:
        return
    assert isinstance(hello, Hello)
    assert not any(c in hello.email for c in "\r\n\0<>,;\"' ") and len(hello.email) <= 254


async def test_the_claim_reaches_the_interaction_not_the_customer(tmp_path, chat_config, ws_client) -> None:
    async with open_test_engine(chat_config, plugins=[chat_plugin], data_dir=tmp_path) as engine:
        visitor = await ws_client.connect(engine.console.url)
        await visitor.send_json({"type": "hello", "token": None, "name": "Ana", "email": "ana@example.com"})
        await visitor.receive("welcome")
        await visitor.send_json({"type": "message", "text": "hola"})
        await wait_until(lambda: engine.interactions, timeout=30)
        (item,) = engine.interactions.values()
        assert item.attributes["claimed_email"] == "ana@example.com"
        assert item.from_.startswith("visitor:") and item.caller_name == "Ana"
        await visitor.stream.aclose()
