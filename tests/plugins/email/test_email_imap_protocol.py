"""The sans-IO IMAP response reader: literals, chunking, hostile servers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.email import ImapServerError, ImapUsageError
from plugins.email._imap_proto import (
    CommandBuilder,
    ResponseReader,
    capabilities,
    fetch_item,
    quote,
    response_code,
    search_uids,
)

STREAM = (
    b"* OK [CAPABILITY IMAP4rev1 IDLE LITERAL+] ready\r\n"
    b"* 3 EXISTS\r\n"
    b"* OK [UIDVALIDITY 1700000000] UIDs valid\r\n"
    b"* 1 FETCH (UID 41 RFC822.SIZE 12 BODY[] {12}\r\nhello\r\nworld)\r\n"
    b"* SEARCH 41 42 57\r\n"
    b"C0001 OK Completed (0.001 + 0.000 secs).\r\n"
)


def _all(reader: ResponseReader) -> list:
    out = []
    while (response := reader.next_response()) is not None:
        out.append(response)
    return out


def test_responses_with_literals_and_codes_are_read() -> None:
    reader = ResponseReader()
    reader.feed(STREAM)
    greeting, _exists, validity, fetch, search, done = _all(reader)
    assert capabilities(greeting) == {"IMAP4REV1", "IDLE", "LITERAL+"}
    assert response_code(validity) == ("UIDVALIDITY", "1700000000")
    item = fetch_item(fetch)
    assert (item.uid, item.size, item.body) == (41, 12, b"hello\r\nworld")
    assert search_uids(search) == [41, 42, 57]
    assert done.tag == "C0001" and done.status() == "OK"
    assert capabilities(done) is None  # "Completed" is not a capability list


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM)), max_size=20))
def test_any_chunking_gives_the_same_responses(cuts: list[int]) -> None:
    whole = ResponseReader()
    whole.feed(STREAM)
    expected = [(r.tag, r.line, r.literals) for r in _all(whole)]
    reader = ResponseReader()
    got = []
    last = 0
    for cut in sorted(set(cuts)) + [len(STREAM)]:
        reader.feed(STREAM[last:cut])
        last = cut
        got += [(r.tag, r.line, r.literals) for r in _all(reader)]
    assert got == expected


def test_endless_line_is_a_server_error_not_unbounded_memory() -> None:
    reader = ResponseReader(max_line=1024)
    reader.feed(b"* OK " + b"x" * 2000)
    with pytest.raises(ImapServerError):
        reader.next_response()


def test_huge_announced_literal_is_refused_before_buffering() -> None:
    reader = ResponseReader(max_literal=1000)
    reader.feed(b"* 1 FETCH (UID 1 BODY[] {999999999}\r\n")
    with pytest.raises(ImapServerError, match="literal"):
        reader.next_response()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=500))
def test_garbage_gives_responses_or_a_server_error(data: bytes) -> None:
    reader = ResponseReader(max_line=200, max_literal=200)
    reader.feed(data)
    try:
        for response in _all(reader):
            fetch_item(response)
            search_uids(response)
            capabilities(response)
            response_code(response)
    except ImapServerError:
        pass


def test_quoting_escapes_and_refuses_line_breaks() -> None:
    assert quote('pa"ss\\word') == b'"pa\\"ss\\\\word"'
    with pytest.raises(ImapUsageError):
        quote("user\r\nA1 DELETE INBOX")


def test_commands_are_tagged_uniquely() -> None:
    builder = CommandBuilder()
    tag1, data1 = builder.build("NOOP")
    tag2, _ = builder.build("NOOP")
    assert tag1 != tag2 and data1 == f"{tag1} NOOP\r\n".encode()
