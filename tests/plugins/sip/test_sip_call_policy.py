"""Who may call, and where calls may go: challenges for strangers, strict dial strings, trunk allowlists."""

from __future__ import annotations

import secrets

import pytest
import trio

from plugins.sip._trunks import DialRefused, check_dial_string
from sip_shell_helpers import header, status_of

SETUP = """
[[sip.users]]
name = "1001"
password = "s3cret"

[[sip.trunks]]
name = "itsp"
server = "sip:192.0.2.10:5060"
outbound = true
dial = ["_6XXXXXXXX", "_9XXXXXXXX"]
"""


def invite(port: int, user: str = "100", call_id: str | None = None) -> bytes:
    call_id = call_id or secrets.token_hex(8)
    return (
        f"INVITE sip:{user}@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
        f"From: <sip:stranger@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:stranger@127.0.0.1:{port}>\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    "text",
    ["300&Zap/g1/4165551212", "1001@evil.example", "+34 600 111 222", "", "+", "6001;user=phone", "١٢٣", "1" * 21, "0x1F"],
)
def test_dial_strings_outside_the_strict_syntax_are_refused(text: str) -> None:
    with pytest.raises(DialRefused):
        check_dial_string(text)


@pytest.mark.parametrize("text", ["+34600111222", "600111222", "112"])
def test_plain_numbers_pass_the_syntax_check(text: str) -> None:
    assert check_dial_string(text) == text


async def test_a_stranger_calling_in_is_challenged_and_creates_nothing(sip_engine, udp_peer) -> None:
    async with sip_engine(sip=SETUP) as (engine, channel):
        await udp_peer.send(invite(udp_peer.port), channel.bound[0].port)
        replies = await udp_peer.receive_until(lambda d: (status_of(d) or 0) >= 200)
        final = replies[-1]
        assert status_of(final) == 407
        assert header(final, "Proxy-Authenticate").startswith("Digest ")
        assert engine.list_interactions() == []


async def test_outbound_calls_only_reach_numbers_the_trunk_allows(sip_engine) -> None:
    async with sip_engine(sip=SETUP) as (engine, channel):
        trunks = channel.trunks
        assert trunks.outbound_trunk("600111222").name == "itsp"
        for refused in ("+1900555000", "00441234567", "80012345", "300&Zap/g1/4165551212"):
            with pytest.raises(DialRefused):
                trunks.outbound_trunk(refused)
        with pytest.raises(ValueError):
            await engine.originate({"to": "00441234567"})
        assert engine.list_interactions() == []


async def test_an_invite_flood_without_acks_hits_the_transaction_cap(sip_engine, udp_peer) -> None:
    security = "rate = 10000\nburst = 10000\nmax_transactions_per_source = 5\nmax_failures_per_source = 1000\n"
    async with sip_engine(sip=SETUP, security=security) as (engine, channel):
        port = channel.bound[0].port
        statuses = []
        for n in range(10):
            call_id = f"flood-{n}"
            await udp_peer.send(invite(udp_peer.port, call_id=call_id), port)
            # Earlier challenges are retransmitted meanwhile (nobody ACKs them): wait for this call's answer.
            replies = await udp_peer.receive_until(
                lambda d, c=call_id: (status_of(d) or 0) >= 200 and header(d, "Call-ID") == c
            )
            statuses.append(status_of(replies[-1]))
        # Unacknowledged challenges keep their transactions open: the first five are challenged, the
        # rest are turned away with 503 until those transactions end.
        assert statuses[:5] == [407] * 5
        assert set(statuses[5:]) == {503}


@pytest.mark.parametrize("destination", ["300&Zap/g1/4165551212", "100%00", "1001;phone", "a'b", "x" * 65, "$(reboot)"])
async def test_a_destination_outside_the_allowlist_never_reaches_routing(sip_engine, udp_peer, destination: str) -> None:
    # The provider's own address: no challenge, so the destination check is what answers.
    setup = f'[[sip.trunks]]\nname = "provider"\nserver = "sip:127.0.0.1:{udp_peer.port}"\n'
    async with sip_engine(sip=setup) as (engine, channel):
        async with engine.bus.subscribe("t") as events:
            await udp_peer.send(invite(udp_peer.port, user=destination), channel.bound[0].port)
            replies = await udp_peer.receive_until(lambda d: (status_of(d) or 0) >= 200)
            assert status_of(replies[-1]) == 404
            with trio.fail_after(10):
                async for event in events:
                    if event.event == "SipSecurityEvent" and event.fields["Kind"] == "bad_destination":
                        break
        assert engine.list_interactions() == []
        assert event.fields["Detail"].startswith("refused destination") and event.fields["RemoteAddress"] == "127.0.0.1"
