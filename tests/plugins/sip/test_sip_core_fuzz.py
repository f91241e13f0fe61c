"""Hostile bytes into the running message core: whatever arrives, nothing escapes and the server lives."""

from __future__ import annotations

import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugins.sip._transport import Peer
from sip_shell_helpers import options, status_of

INVITE = (
    b"INVITE sip:100@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKfuzz;rport\r\n"
    b"From: \"Fuzz\" <sip:fuzz@127.0.0.1>;tag=abc\r\n"
    b"To: <sip:100@127.0.0.1>\r\n"
    b"Call-ID: fuzz-1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:fuzz@127.0.0.1:5999>\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 88\r\n\r\n"
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)

RESPONSE = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnothing\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: r-1\r\nCSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def _mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for position, length, replacement in edits:
        position %= len(out) + 1
        out[position : position + length] = replacement
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 600), st.integers(0, 40), st.binary(max_size=40)), max_size=6)
TRUNK = '\n[[sip.trunks]]\nname = "local"\nserver = "sip:127.0.0.1"\n[[routes]]\nmatch = "_X."\nflow = "main"\n[[flows]]\nname = "main"\nstart = "bye"\n[flows.nodes.bye]\ntype = "hangup"\n'


async def test_mutated_messages_never_escape_the_core(sip_engine, udp_peer, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="centralita.sip")
    async with sip_engine(TRUNK) as (engine, channel):
        peer = Peer("udp", "127.0.0.1", 5999, channel.bound[0])
        sent: list[bytes] = []
        real_send = channel.core._send
        channel.core._send = lambda data, to: sent.append(data) or True

        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.sampled_from([INVITE, RESPONSE, options(5999)]), edits)
        def feed(base: bytes, changes: list[tuple[int, int, bytes]]) -> None:
            channel.core.deliver(_mutate(base, changes), peer)

        feed()
        channel.core._send = real_send
        assert channel.statistics()["transport"]["handler_errors"] == 0
        # No handler failed on its way to an answer (they would log an error and answer 500).
        errors = [r for r in caplog.records if r.name.startswith("centralita.sip") and r.levelno >= logging.ERROR]
        assert errors == [], [r.getMessage() for r in errors]
        # And the server still answers the health probe.
        await udp_peer.send(options(udp_peer.port), channel.bound[0].port)
        assert status_of(await udp_peer.receive()) == 200
