"""The pure visitor protocol: what is accepted, what is refused and why; the rate limiter."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.chat import TokenBucket, VisitorError, estimate_wait, parse_frame
from plugins.chat._protocol import Hello, Say, Transcript, Typing


def test_valid_frames() -> None:
    assert parse_frame('{"type":"hello","token":null,"name":"Ana"}', max_chars=100) == Hello(None, "Ana")
    assert parse_frame('{"type":"message","text":"hola\\u0007 <b>x</b>"}', max_chars=100) == Say("hola <b>x</b>")
    assert parse_frame('{"type":"typing","on":true}', max_chars=100) == Typing(True)
    assert parse_frame('{"type":"transcript","email":"a@b.test"}', max_chars=100) == Transcript("a@b.test")


@pytest.mark.parametrize(("raw", "reason"), [
    ("{nope", "invalid JSON"),
    ("[1,2]", "JSON object"),
    ('{"type":"shout"}', "unknown frame type"),
    ('{"type":"message","text":""}', "non-empty"),
    ('{"type":"message","text":"' + "x" * 101 + '"}', "longer than"),
    ('{"type":"hello","token":"short"}', "token"),
    ('{"type":"transcript","email":"a@b.test\\r\\nBcc: x@y"}', "plain email"),
    (b"\x00\x01", "binary"),
])
def test_refused_frames_say_why(raw, reason: str) -> None:
    with pytest.raises(VisitorError, match=reason):
        parse_frame(raw, max_chars=100)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=50)))
def test_any_frame_parses_or_is_refused(raw) -> None:
    try:
        parse_frame(raw, max_chars=100)
    except VisitorError:
        pass


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.allow(0.5) and not bucket.allow(0.5)
    assert bucket.allow(10.0)


def test_wait_estimate_grows_with_position_and_shrinks_with_agents() -> None:
    assert estimate_wait(0, 1, 180) == 0
    assert estimate_wait(3, 1, 180) == 540
    assert estimate_wait(3, 3, 180) == 180
