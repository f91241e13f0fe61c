"""The running SIP transports against raw peers: OPTIONS health probe, response routing, hostile input."""

from __future__ import annotations

import secrets
import socket

import trio

from sip_shell_helpers import RFC4475_DIR, header, options, status_of


async def _tcp_exchange(port: int, data: bytes, *, until: bytes = b"\r\n\r\n") -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        received = b""
        with trio.fail_after(10):
            while until not in received:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                received += chunk
        return received


async def test_options_is_answered_200_whatever_the_user_part(sip_engine, udp_peer) -> None:
    async with sip_engine() as (engine, channel):
        udp = channel.bound[0]
        for user in ("anything", "1001", "no-such-user", "%41"):
            await udp_peer.send(options(udp_peer.port, user=user), udp.port)
            reply = await udp_peer.receive()
            assert status_of(reply) == 200, reply
        # RFC 3581: the source port went back in rport, the source address in received.
        via = header(reply, "Via")
        assert f"rport={udp_peer.port}" in via and "received=127.0.0.1" in via


async def test_udp_response_goes_to_the_via_port_without_rport(sip_engine, udp_peer) -> None:
    other = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await other.bind(("127.0.0.1", 0))
    other_port = other.getsockname()[1]
    async with sip_engine() as (engine, channel):
        # Sent from udp_peer, but the Via (no rport) names the other socket: RFC 3261 §18.2.2.
        message = options(other_port).replace(b";rport", b"")
        await udp_peer.send(message, channel.bound[0].port)
        with trio.fail_after(10):
            data, _ = await other.recvfrom(65536)
        assert status_of(data) == 200
    other.close()


async def test_options_over_tcp_and_keepalive_pong(sip_engine) -> None:
    async with sip_engine() as (engine, channel):
        tcp = channel.bound[1]
        assert tcp.transport == "tcp"
        stream = await trio.open_tcp_stream("127.0.0.1", tcp.port)
        async with stream:
            local_port = stream.socket.getsockname()[1]
            await stream.send_all(b"\r\n\r\n")
            with trio.fail_after(10):
                assert await stream.receive_some(10) == b"\r\n"
            await stream.send_all(options(local_port, transport="TCP"))
            received = b""
            with trio.fail_after(10):
                while b"Content-Length: 0\r\n\r\n" not in received:
                    received += await stream.receive_some(65536)
            assert status_of(received) == 200


async def test_tcp_peer_that_sends_nothing_is_cut_off(sip_engine) -> None:
    async with sip_engine() as (engine, channel):
        stream = await trio.open_tcp_stream("127.0.0.1", channel.bound[1].port)
        async with stream:
            with trio.fail_after(15):
                assert await stream.receive_some(100) == b""
        assert channel.statistics()["transport"]["tcp_closed_slow_message"] == 1


async def test_tcp_dribbler_is_cut_off_and_others_still_served(sip_engine, udp_peer) -> None:
    async with sip_engine() as (engine, channel):
        message = options(5060, transport="TCP")
        stream = await trio.open_tcp_stream("127.0.0.1", channel.bound[1].port)
        closed = False
        async with stream:
            with trio.fail_after(20):
                for byte in message:
                    try:
                        await stream.send_all(bytes([byte]))
                    except trio.BrokenResourceError:
                        closed = True
                        break
                    # Pace the dribble (the peer's behaviour under test, not a wait for a result).
                    await trio.sleep(0.1)
                    with trio.move_on_after(0):
                        if await stream.receive_some(100) == b"":
                            closed = True
                            break
        assert closed, "a peer taking ~10 s to send one OPTIONS was never disconnected"
        assert channel.statistics()["transport"]["tcp_closed_slow_message"] >= 1
        await udp_peer.send(options(udp_peer.port), channel.bound[0].port)
        assert status_of(await udp_peer.receive()) == 200


BAD_INPUTS = {
    "nul bytes": b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKnul\x00x\r\n"
    b"From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: nul\x00\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    "invalid utf-8": b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKutf\r\n"
    b"From: \xff\xfe <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: utf\xc3\x28\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    "5000-digit content-length": b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKcl\r\n"
    b"From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: cl\r\nCSeq: 1 OPTIONS\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
    "non-numeric content-length": b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKnn\r\n"
    b"From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: nn\r\nCSeq: 1 OPTIONS\r\nContent-Length: five\r\n\r\n",
    "5000-digit cseq": b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKcs\r\n"
    b"From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: cs\r\nCSeq: " + b"1" * 5000 + b" OPTIONS\r\nContent-Length: 0\r\n\r\n",
    "60 KiB header": b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKbig\r\n"
    b"From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: big\r\nCSeq: 1 OPTIONS\r\nX-Big: " + b"a" * 60000 + b"\r\nContent-Length: 0\r\n\r\n",
    "5000 headers": b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKmany\r\n"
    b"From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: many\r\nCSeq: 1 OPTIONS\r\n" + b"X: y\r\n" * 5000 + b"Content-Length: 0\r\n\r\n",
    "binary garbage": bytes(range(256)) * 8,
    "empty datagram": b"",
}


async def test_hostile_datagrams_get_an_error_or_nothing_and_the_server_lives(sip_engine, udp_peer) -> None:
    async with sip_engine() as (engine, channel):
        port = channel.bound[0].port
        for name, template in BAD_INPUTS.items():
            await udp_peer.send(template.replace(b"{port}", str(udp_peer.port).encode()), port)
            marker = secrets.token_hex(6)
            await udp_peer.send(options(udp_peer.port, call_id=marker), port)
            seen = await udp_peer.receive_until(lambda d: marker.encode() in d)
            before = seen[:-1]
            # Either dropped silently, or one 4xx/5xx answer (never a 2xx to a broken request).
            assert len(before) <= 1, (name, before)
            for reply in before:
                assert 400 <= (status_of(reply) or 0) < 600, (name, reply[:200])
            assert status_of(seen[-1]) == 200, name
        stats = channel.statistics()
        assert stats["transport"]["handler_errors"] == 0
        assert stats["messages"]["parse_errors"] >= 6


async def test_ten_thousand_headers_over_tcp_close_the_connection_not_the_server(sip_engine, udp_peer) -> None:
    async with sip_engine() as (engine, channel):
        message = (
            b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKmany\r\n"
            + b"X: y\r\n" * 10000
            + b"Content-Length: 0\r\n\r\n"
        )
        stream = await trio.open_tcp_stream("127.0.0.1", channel.bound[1].port)
        async with stream:
            try:
                await stream.send_all(message)
            except trio.BrokenResourceError:
                pass
            received = b""
            with trio.fail_after(15):
                while True:
                    try:
                        chunk = await stream.receive_some(65536)
                    except trio.BrokenResourceError:
                        break
                    if not chunk:
                        break
                    received += chunk
        # A 4xx/5xx answer before the close is allowed; a 200 is not.
        assert status_of(received) in (None, 400, 413, 513)
        await udp_peer.send(options(udp_peer.port), channel.bound[0].port)
        assert status_of(await udp_peer.receive()) == 200
