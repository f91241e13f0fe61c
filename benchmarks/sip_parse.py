"""Parse + serialize time of a typical SIP INVITE with SDP, ours vs ``sipmessage`` (if installed).

Run: ``.venv/bin/python benchmarks/sip_parse.py [--iterations N] [--repeats R]``. Prints one JSON object.
Each figure is the best of R runs of N iterations (least disturbed by other load), in microseconds of
process CPU time per message. "parse+serialize" also reads the fields a transaction layer needs (Call-ID, CSeq, top Via
branch, From/To tags), since our parser checks some lazily. It also counts how many RFC 4475 torture
messages each parser handles as RFC 4475 prescribes (accept valid, reject invalid).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plugins.sip.sansio import SipParseError, make_response, parse_message  # noqa: E402

RFC4475_DIR = ROOT / ".." / "shared" / "testdata" / "rfc4475"

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.50\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.50\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)
INVITE = (
    b"INVITE sip:1001@192.0.2.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice Example" <sip:alice@example.com>;tag=1928301774\r\n'
    b"To: <sip:1001@192.0.2.1>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.50:5060;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: Example Phone 1.0\r\n"
    b"Content-Type: application/sdp\r\n"
    + f"Content-Length: {len(SDP)}\r\n\r\n".encode()
    + SDP
)


ACK = (
    b"ACK sip:alice@192.0.2.50:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnashds8;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:1001@192.0.2.1>;tag=as83kd9bs\r\n"
    b'To: "Alice Example" <sip:alice@example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 ACK\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def best_us(fn, iterations: int, repeats: int) -> float:
    # CPU time of this process, not wall time: the box is shared, and waiting for a core is not our cost.
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(iterations):
            fn()
        best = min(best, (time.process_time() - start) / iterations)
    return best * 1e6


def ours(iterations: int, repeats: int) -> dict[str, float]:
    def parse_only() -> None:
        parse_message(INVITE)

    message = parse_message(INVITE)

    def serialize_only() -> None:
        message.to_bytes()

    def parse_and_serialize() -> None:
        m = parse_message(INVITE)
        m.call_id, m.cseq, m.top_via.branch, m.from_.tag, m.to.tag  # noqa: B018
        m.to_bytes()

    def answer_200() -> None:
        make_response(message, 200, to_tag="as83kd9bs").to_bytes()

    def small_ack() -> None:
        m = parse_message(ACK)
        m.call_id, m.cseq, m.top_via.branch, m.from_.tag, m.to.tag  # noqa: B018
        m.to_bytes()

    return {
        "parse_us": round(best_us(parse_only, iterations, repeats), 2),
        "serialize_us": round(best_us(serialize_only, iterations, repeats), 2),
        "parse_serialize_us": round(best_us(parse_and_serialize, iterations, repeats), 2),
        "build_200_us": round(best_us(answer_200, iterations, repeats), 2),
        "ack_parse_serialize_us": round(best_us(small_ack, iterations, repeats), 2),
    }


def whole_calls(calls: int, repeats: int) -> dict[str, float]:
    """CPU per complete call through every sans-IO layer, both ends in one process (in-memory network):
    INVITE+SDP offer, 180, 200+SDP answer, ACK, BYE, 200; parse, transactions, dialogs, offer/answer."""
    from plugins.sip.sansio import LoopbackNetwork

    best = float("inf")
    for _ in range(repeats):
        net = LoopbackNetwork()
        alice = net.agent("127.0.0.1:5061", "alice")
        bob = net.agent("127.0.0.1:5062", "bob")
        start = time.process_time()
        for _ in range(calls):
            call = alice.call(bob)
            net.run(until=net.now + 1.0)
            alice.hangup(call)
            net.run(until=net.now + 1.0)
        best = min(best, (time.process_time() - start) / calls)
        assert len(bob.calls) == calls and all(c.ended_by == "them" for c in bob.calls.values())
    messages = 6  # INVITE, 180, 200, ACK, BYE, 200
    return {
        "call_us_both_ends": round(best * 1e6, 1),
        "per_message_us_both_ends": round(best * 1e6 / messages, 1),
        "calls_per_cpu_second_both_ends": round(1 / best),
    }


def theirs(iterations: int, repeats: int) -> dict[str, object]:
    try:
        from sipmessage import Message
    except ImportError:
        return {"installed": False}

    def parse_only() -> None:
        Message.parse(INVITE)

    message = Message.parse(INVITE)

    def serialize_only() -> None:
        bytes(message)

    def parse_and_serialize() -> None:
        m = Message.parse(INVITE)
        m.call_id, m.cseq, m.via[0].parameters, m.from_address, m.to_address  # noqa: B018
        bytes(m)

    import importlib.metadata

    return {
        "installed": True,
        "version": importlib.metadata.version("sipmessage"),
        "parse_us": round(best_us(parse_only, iterations, repeats), 2),
        "serialize_us": round(best_us(serialize_only, iterations, repeats), 2),
        "parse_serialize_us": round(best_us(parse_and_serialize, iterations, repeats), 2),
    }


def rfc4475_agreement() -> dict[str, object]:
    """How many torture messages each parser treats as RFC 4475 prescribes (accept vs reject)."""
    spec = importlib.util.spec_from_file_location(
        "sip_torture_table", ROOT / "tests" / "plugins" / "sip" / "sansio" / "test_sip_torture_rfc4475.py"
    )
    assert spec and spec.loader
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    expected: dict[str, object] = table.RFC4475_EXPECTED
    try:
        from sipmessage import Message
    except ImportError:
        Message = None  # noqa: N806
    ours_ok = theirs_ok = 0
    theirs_wrong: list[str] = []
    for name, outcome in expected.items():
        data = (RFC4475_DIR / f"{name}.dat").read_bytes()
        should_accept = outcome in ("request", "response")
        try:
            parse_message(data)
            accepted = True
        except SipParseError:
            accepted = False
        ours_ok += accepted == should_accept
        if Message is not None:
            try:
                Message.parse(data)
                accepted = True
            except Exception:  # noqa: BLE001 - any exception counts as "rejected"
                accepted = False
            if accepted == should_accept:
                theirs_ok += 1
            else:
                theirs_wrong.append(name)
    return {
        "messages": len(expected),
        "ours_as_prescribed": ours_ok,
        "sipmessage_as_prescribed": theirs_ok if Message is not None else None,
        "sipmessage_disagrees_on": theirs_wrong,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    mine = ours(args.iterations, args.repeats)
    result = {
        "benchmark": "sip_parse",
        "message_bytes": len(INVITE),
        "iterations": args.iterations,
        "repeats": args.repeats,
        "python": platform.python_version(),
        "ours": mine,
        "ours_invites_per_s_one_core": round(1e6 / mine["parse_serialize_us"]),
        "sansio_whole_call": whole_calls(max(200, args.iterations // 10), args.repeats),
        "sipmessage": theirs(args.iterations, args.repeats),
        "rfc4475": rfc4475_agreement(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
