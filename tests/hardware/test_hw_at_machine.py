"""The sans-IO AT machine: echo, final results, URCs interleaved with answers, prompts, timeouts, noise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import LocalProtocolError
from hardware._at import AtMachine, CommandResult, CommandTimeout, Prompt, Urc

GSM_URCS = ("RING", "+CMTI:", "+CMT:", "+CDS:", "+CLIP:", "+CREG:", "^")


def machine() -> AtMachine:
    return AtMachine(urc_prefixes=GSM_URCS, two_line_urcs=("+CMT:", "+CDS:"))


def test_echo_is_dropped_and_information_lines_kept() -> None:
    m = machine()
    assert m.send_command("AT+CSQ", 0.0, timeout=1) == b"AT+CSQ\r"
    m.receive_data(b"AT+CSQ\r\r\n+CSQ: 17,99\r\n\r\nOK\r\n", 0.1)
    assert m.events() == [CommandResult("AT+CSQ", "OK", ("+CSQ: 17,99",))]
    assert not m.busy


def test_urc_between_echo_and_ok_is_dispatched_and_the_answer_stays_right() -> None:
    m = machine()
    m.send_command("AT+CSQ", 0.0, timeout=1)
    m.receive_data(b'AT+CSQ\r\r\n+CMTI: "SM",3\r\n\r\n+CSQ: 20,99\r\nRING\r\n\r\nOK\r\n', 0.1)
    events = m.events()
    assert Urc('+CMTI: "SM",3') in events and Urc("RING") in events
    result = next(e for e in events if isinstance(e, CommandResult))
    assert result.lines == ("+CSQ: 20,99",) and result.ok


def test_creg_answer_is_the_commands_but_creg_urc_during_another_command_is_a_urc() -> None:
    m = machine()
    m.send_command("AT+CREG?", 0.0, timeout=1)
    m.receive_data(b"\r\n+CREG: 1,5\r\n\r\nOK\r\n", 0.0)
    assert m.events()[0].info("+CREG") == ["1,5"]
    m.send_command("AT+CSQ", 0.0, timeout=1)
    m.receive_data(b"\r\n+CREG: 2\r\n\r\n+CSQ: 9,99\r\nOK\r\n", 0.0)
    assert m.events() == [Urc("+CREG: 2"), CommandResult("AT+CSQ", "OK", ("+CSQ: 9,99",))]


def test_two_line_urc_carries_its_pdu_even_mid_command() -> None:
    m = machine()
    m.send_command("AT+CSQ", 0.0, timeout=1)
    m.receive_data(b"\r\n+CMT: ,23\r\n0791AABB\r\n+CSQ: 1,99\r\nOK\r\n", 0.0)
    assert m.events() == [Urc("+CMT: ,23", "0791AABB"), CommandResult("AT+CSQ", "OK", ("+CSQ: 1,99",))]


def test_stray_ok_while_idle_is_not_taken_as_the_next_commands_answer() -> None:
    m = machine()
    m.receive_data(b"\r\nOK\r\n", 0.0)  # faucamp/python-gsmmodem#6
    assert m.events() == [Urc("OK", known=False)]
    m.send_command("AT+CMGR=1", 0.0, timeout=1)
    assert m.events() == []
    m.receive_data(b"\r\n+CMGR: 0,,5\r\n0011\r\nOK\r\n", 0.0)
    assert m.events()[0].lines == ("+CMGR: 0,,5", "0011")


def test_cme_error_is_final_with_its_code() -> None:
    m = machine()
    m.send_command("AT+CPIN?", 0.0, timeout=1)
    m.receive_data(b"\r\n+CME ERROR: 14\r\n", 0.0)
    (result,) = m.events()
    assert not result.ok and result.error_code == 14


def test_prompt_then_pdu_then_result() -> None:
    m = machine()
    m.send_command("AT+CMGS=23", 0.0, timeout=5, want_prompt=True)
    m.receive_data(b"AT+CMGS=23\r\r\n> ", 0.1)
    assert m.events() == [Prompt("AT+CMGS=23")]
    assert m.send_prompt_data(b"0011AB", 0.2, timeout=5) == b"0011AB\x1a"
    m.receive_data(b"\r\n+CMGS: 7\r\n\r\nOK\r\n", 0.3)
    assert m.events()[0].info("+CMGS") == ["7"]


def test_prompt_data_cannot_smuggle_ctrl_z() -> None:
    m = machine()
    m.send_command("AT+CMGS=23", 0.0, timeout=5, want_prompt=True)
    m.receive_data(b"\r\n> ", 0.1)
    with pytest.raises(LocalProtocolError):
        m.send_prompt_data(b"00\x1aATH", 0.2, timeout=5)


def test_deadline_gives_a_timeout_with_what_was_said_and_frees_the_machine() -> None:
    m = machine()
    m.send_command("AT+COPS=?", 10.0, timeout=2)
    m.receive_data(b'\r\n+COPS: (2,"X")\r\n', 10.5)
    assert m.next_timer() == 12.0
    m.handle_timer(11.9)
    assert m.events() == []
    m.handle_timer(12.0)
    assert m.events() == [CommandTimeout("AT+COPS=?", ('+COPS: (2,"X")',))]
    assert not m.busy and m.next_timer() is None


def test_a_second_command_while_one_is_in_flight_is_local_misuse() -> None:
    m = machine()
    m.send_command("AT", 0.0, timeout=1)
    with pytest.raises(LocalProtocolError):
        m.send_command("AT", 0.0, timeout=1)
    with pytest.raises(LocalProtocolError):
        AtMachine().send_command("AT\rATH", 0.0, timeout=1)


def test_endless_line_is_bounded_and_counted() -> None:
    m = AtMachine(max_line=100)
    for _ in range(50):
        m.receive_data(b"x" * 1000, 0.0)
    assert len(m._buffer) <= 1100
    m.receive_data(b"tail\r\nRING\r\n", 0.0)
    assert m.events() == [Urc("RING")]
    assert m.stats.noise_bytes >= 50_000


def test_connect_switches_to_raw_and_keeps_the_following_bytes_unparsed() -> None:
    m = AtMachine()
    m.send_command("AT+VTR", 0.0, timeout=1, raw_after=True)
    m.receive_data(b"\r\nCONNECT\r\n\x01\x02\r\n\x03", 0.0)
    assert m.events()[0].final == "CONNECT"
    assert m.raw and m.take_raw() == b"\x01\x02\r\n\x03"
    assert not m.busy


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_any_bytes_never_raise_and_a_command_still_works_afterwards(chunks: list[bytes]) -> None:
    m = machine()
    for chunk in chunks:
        m.receive_data(chunk, 0.0)
    m.events()
    m.reset()
    m.send_command("AT", 0.0, timeout=1)
    m.receive_data(b"\r\nOK\r\n", 0.0)
    assert [e for e in m.events() if isinstance(e, CommandResult)] == [CommandResult("AT", "OK", ())]
