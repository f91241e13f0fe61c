"""RFC 4475 torture messages against the running transports, over UDP and over TCP.

The parser's own verdicts are tested in ``sansio/``; here the question is what a peer on the wire
sees: the error response the RFC calls for (sent back through the real sockets), or nothing, and the
server still answering afterwards, with no exception escaping the handlers.
"""

from __future__ import annotations

import re
import secrets

import trio

from sip_shell_helpers import RFC4475_DIR, options, status_of

ANY = "any"  # a well-formed request: whatever the engine decides (a challenge, 404, 501...), or nothing

# file stem -> the status RFC 4475 calls for, None when the message must be dropped silently.
EXPECTED: dict[str, object] = {
    "badinv01": 400, "clerr": 400, "ncl": 400, "scalar02": 400, "scalarlg": None, "quotbal": 400,
    "ltgtruri": 400, "lwsruri": 400, "lwsstart": 400, "trws": 400, "escruri": 400, "regbadct": 400,
    "badaspec": 400, "baddn": 400, "badvers": 505, "mismatch01": 400, "mismatch02": 400, "bigcode": None,
    # no From/To/Call-ID: a response could not be built from it, so a drop is what can be done
    "insuf": (400, None), "unkscm": 416, "novelsc": 416, "bext01": 420, "multi01": 400, "mcl01": 400,
    # not from RFC 4475 (no version, a line without a colon): nothing to build a response from
    "test": (400, None),
    # responses nobody asked for: dropped
    "unreason": None, "noreason": None, "bcast": None,
}
FILES = sorted(p.stem for p in RFC4475_DIR.glob("*.dat"))


def test_the_torture_files_are_there() -> None:
    assert len(FILES) >= 49, f"RFC 4475 messages missing from {RFC4475_DIR}"


def _call_id(data: bytes) -> bytes | None:
    match = re.search(rb"(?im)^(?:call-id|i)[ \t]*:[ \t]*(\S+)", data)
    return match.group(1) if match else None


def _check(stem: str, replies: list[bytes]) -> None:
    expected = EXPECTED.get(stem, ANY)
    statuses = [status_of(r) for r in replies]
    if isinstance(expected, tuple):
        finals = [s for s in statuses if s and s >= 200]
        assert (finals[0] if finals else None) in expected, (stem, statuses)
    elif expected is None:
        assert statuses == [], (stem, statuses)
    elif expected != ANY:
        # Only the final answer matters (an INVITE may get 100 Trying first).
        finals = [s for s in statuses if s and s >= 200]
        assert finals[:1] == [expected], (stem, statuses)


async def test_rfc4475_over_udp(sip_engine, udp_peer) -> None:
    async with sip_engine() as (engine, channel):
        port = channel.bound[0].port
        # Replies follow the torture message's Via (RFC 3261 §18.2.2), which names hosts and ports that
        # are not ours: record what the core really sends to see them.
        sent: list[bytes] = []
        real_send = channel.core._send

        def recording_send(data: bytes, peer: object) -> bool:
            sent.append(data)
            return real_send(data, peer)

        channel.core._send = recording_send
        for stem in FILES:
            data = (RFC4475_DIR / f"{stem}.dat").read_bytes()
            sent.clear()
            await udp_peer.send(data, port)
            marker = secrets.token_hex(6)
            await udp_peer.send(options(udp_peer.port, call_id=marker), port)
            seen = await udp_peer.receive_until(lambda d: marker.encode() in d)
            assert status_of(seen[-1]) == 200, stem
            # Only replies to this message count (earlier INVITEs' challenges are retransmitted meanwhile).
            call_id = _call_id(data)
            _check(stem, [d for d in sent if d.startswith(b"SIP/2.0 ") and call_id is not None and _call_id(d) == call_id])
        assert channel.statistics()["transport"]["handler_errors"] == 0


async def test_rfc4475_over_tcp(sip_engine) -> None:
    async with sip_engine() as (engine, channel):
        port = channel.bound[1].port
        for stem in FILES:
            await _one_over_tcp(stem, port)
        assert channel.statistics()["transport"]["handler_errors"] == 0


async def _one_over_tcp(stem: str, port: int) -> None:
    data = (RFC4475_DIR / f"{stem}.dat").read_bytes()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    received = b""
    closed = False
    async with stream:
        marker = secrets.token_hex(6)
        try:
            await stream.send_all(data)
            await stream.send_all(options(stream.socket.getsockname()[1], call_id=marker, transport="TCP"))
        except trio.BrokenResourceError:
            closed = True
        with trio.fail_after(15):
            while not closed and marker.encode() not in received:
                try:
                    chunk = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    chunk = b""
                if not chunk:
                    closed = True
                received += chunk
    replies = [m + b"\r\n\r\n" for m in received.split(b"\r\n\r\n") if m.startswith(b"SIP/2.0 ")]
    # A torture message lacking its final empty line swallows our OPTIONS: the error answer to the
    # merged message then carries the marker too, so only the marker's 200 is set aside.
    before = [r for r in replies if not (marker.encode() in r and status_of(r) == 200)]
    if closed:
        # The stream broke its framing (a bad Content-Length): closing is what RFC 4475 asks for on
        # TCP; an error answer before the close is fine too, a success is not.
        assert all((status_of(r) or 0) >= 400 or (status_of(r) or 0) < 200 for r in before), (stem, before)
    else:
        _check(stem, before)
