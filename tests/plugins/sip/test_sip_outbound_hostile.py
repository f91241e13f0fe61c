"""Outbound calls against a hostile or broken far end (a raw UDP peer posing as the trunk): whatever it
answers, ``dial`` returns an outcome, leaves no call or RTP endpoint behind, and never crashes."""

from __future__ import annotations

import re

import pytest
import trio

from engine import Direction, InteractionKind
from plugins.sip._outbound import outcome_for_status


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "answered"), (202, "answered"), (486, "busy"), (600, "busy"), (408, "no-answer"),
        (480, "no-answer"), (487, "no-answer"), (404, "invalid"), (484, "invalid"), (604, "invalid"),
        (410, "invalid"), (503, "congestion"), (500, "congestion"), (502, "congestion"), (599, "congestion"),
        (403, "failed"), (488, "failed"), (603, "failed"), (401, "failed"), (302, "failed"), (699, "failed"),
    ],
)
def test_final_responses_map_to_dial_outcomes(status: int, outcome: str) -> None:
    assert outcome_for_status(status) == outcome


def trunk(port: int) -> str:
    return (
        f'\n[[sip.trunks]]\nname = "carrier"\nserver = "sip:127.0.0.1:{port}"\noutbound = true\ndial = ["_X."]\n'
        'username = "acct"\npassword = "pw"\n'
    )


def _header(request: bytes, name: str) -> str:
    match = re.search(rb"(?im)^" + name.encode() + rb":[^\r\n]*", request)
    assert match is not None, request
    return match.group(0).decode()


def reply(request: bytes, status: int, reason: str, *, to_tag: bool = True, extra: str = "", body: bytes = b"") -> bytes:
    """A response to ``request`` as a (possibly broken) provider would send it."""
    to = _header(request, "To") + (";tag=hostile1" if to_tag else "")
    head = (
        f"SIP/2.0 {status} {reason}\r\n{_header(request, 'Via')}\r\n{_header(request, 'From')}\r\n{to}\r\n"
        f"{_header(request, 'Call-ID')}\r\n{_header(request, 'CSeq')}\r\n"
        f"Contact: <sip:hostile@127.0.0.1>\r\n{extra}"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def is_request(method: str):
    return lambda data: data.startswith(method.encode() + b" ")


async def place(engine, channel, peer, answer, number: str = "600111222") -> tuple:
    """Dial through the hostile trunk, which answers each INVITE with ``answer(invite, n)``."""
    interaction = engine.new_interaction(InteractionKind.VOICE, Direction.OUTBOUND, from_="+3491", to=number, channel="sip")
    port = channel.bound[0].port
    seen: list[bytes] = []

    async def far_end() -> None:
        invites = 0
        while True:
            data = await peer.receive(timeout=30)
            seen.append(data)
            if is_request("INVITE")(data):
                invites += 1
                for message in answer(data, invites):
                    await peer.send(message, port)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(far_end)
        result = await channel.dial(interaction, number, caller_id="+3491", ring_timeout=3)
        if result.outcome == "answered":
            await channel.hangup(interaction)
        # Whatever happened, the channel keeps nothing of a failed attempt.
        with trio.fail_after(10):
            while result.outcome != "answered" and engine.media.statistics()["endpoints"]:
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    assert result.outcome == "answered" or interaction.id not in channel.calls.calls
    return result, seen


async def test_a_2xx_without_to_tag_is_a_failed_attempt(sip_engine, udp_peer) -> None:
    async with sip_engine(sip=trunk(udp_peer.port)) as (engine, channel):
        result, _ = await place(engine, channel, udp_peer, lambda invite, n: [reply(invite, 200, "OK", to_tag=False, body=b"v=0\r\n")])
        assert result.outcome == "failed"


async def test_a_2xx_with_garbage_sdp_is_acknowledged_hung_up_and_failed(sip_engine, udp_peer) -> None:
    async with sip_engine(sip=trunk(udp_peer.port)) as (engine, channel):
        garbage = b"v=0\r\nm=audio notaport RTP/AVP \xff\xfe\r\n" + b"a=" * 3000
        result, seen = await place(engine, channel, udp_peer, lambda invite, n: [reply(invite, 200, "OK", body=garbage)])
        assert result.outcome == "failed"
        with trio.fail_after(10):
            while not any(is_request("BYE")(m) for m in seen):
                seen.append(await udp_peer.receive())
        assert any(is_request("ACK")(m) for m in seen)


async def test_garbage_early_media_then_busy(sip_engine, udp_peer) -> None:
    async with sip_engine(sip=trunk(udp_peer.port)) as (engine, channel):
        result, _ = await place(
            engine, channel, udp_peer,
            lambda invite, n: [reply(invite, 183, "Session Progress", body=b"not sdp at all"), reply(invite, 486, "Busy Here")],
        )
        assert (result.outcome, result.status) == ("busy", 486)


async def test_a_provider_that_challenges_every_time_gets_one_answer_then_failed(sip_engine, udp_peer) -> None:
    challenge = 'WWW-Authenticate: Digest realm="x", nonce="n1", algorithm=MD5\r\n'
    async with sip_engine(sip=trunk(udp_peer.port)) as (engine, channel):
        result, seen = await place(engine, channel, udp_peer, lambda invite, n: [reply(invite, 401, "Unauthorized", extra=challenge)])
        assert (result.outcome, result.status) == ("failed", 401)
        invites = [m for m in seen if is_request("INVITE")(m)]
        assert len({_header(m, "CSeq") for m in invites}) == 2  # the original and one answer, never a loop
        assert b"Authorization: Digest" in invites[-1]


async def test_a_challenge_we_cannot_answer_is_failed(sip_engine, udp_peer) -> None:
    bad = "WWW-Authenticate: Basic realm=\"x\"\r\n"
    async with sip_engine(sip=trunk(udp_peer.port)) as (engine, channel):
        result, _ = await place(engine, channel, udp_peer, lambda invite, n: [reply(invite, 401, "Unauthorized", extra=bad)])
        assert (result.outcome, result.status) == ("failed", 401)


async def test_silence_then_ring_timeout_is_no_answer_with_cancel(sip_engine, udp_peer) -> None:
    async with sip_engine(sip=trunk(udp_peer.port)) as (engine, channel):
        result, seen = await place(engine, channel, udp_peer, lambda invite, n: [reply(invite, 180, "Ringing")])
        assert result.outcome == "no-answer"
        with trio.fail_after(10):
            while not any(is_request("CANCEL")(m) for m in seen):
                seen.append(await udp_peer.receive())


async def test_numbers_that_are_not_dial_strings_never_reach_the_wire(sip_engine, udp_peer) -> None:
    async with sip_engine(sip=trunk(udp_peer.port)) as (engine, channel):
        for number in ("600111222@evil.example", "600;transport=tcp", "sip:600111222", "", "6001112223333333333333"):
            interaction = engine.new_interaction(InteractionKind.VOICE, Direction.OUTBOUND, from_="x", to="x", channel="sip")
            result = await channel.dial(interaction, number, caller_id="+3491", ring_timeout=1)
            assert result.outcome == "failed"
        # The first thing the trunk ever receives is the INVITE of the next, valid number.
        result, seen = await place(engine, channel, udp_peer, lambda invite, n: [reply(invite, 486, "Busy Here")], "600999888")
        assert result.outcome == "busy"
        assert seen[0].startswith(b"INVITE sip:600999888@127.0.0.1:")


async def test_a_proxy_407_is_answered_with_proxy_authorization(sip_engine, udp_peer) -> None:
    challenge = 'Proxy-Authenticate: Digest realm="carrier", nonce="abc", algorithm=MD5, qop="auth"\r\n'

    def answer(invite: bytes, n: int) -> list[bytes]:
        if n == 1:
            return [reply(invite, 407, "Proxy Authentication Required", extra=challenge)]
        return [reply(invite, 486, "Busy Here")]

    async with sip_engine(sip=trunk(udp_peer.port)) as (engine, channel):
        result, seen = await place(engine, channel, udp_peer, answer)
        assert (result.outcome, result.status) == ("busy", 486)
        second = [m for m in seen if is_request("INVITE")(m)][-1]
        assert b'Proxy-Authorization: Digest username="acct", realm="carrier", nonce="abc"' in second
        assert b"CSeq: 2 INVITE" in second
