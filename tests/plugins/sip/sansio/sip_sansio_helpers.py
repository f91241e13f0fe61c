"""Shared builders for the SIP sans-IO tests (imported by name thanks to conftest's sys.path entry)."""

from __future__ import annotations

from plugins.sip.sansio import Headers, Request, SendMessage, new_branch

SDP_OFFER = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)


def make_request(method: str = "INVITE", *, branch: str | None = None, cseq: int = 1,
                 call_id: str = "call-1@test", body: bytes = b"", via_host: str = "192.0.2.10:5060") -> Request:
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP {via_host};branch={branch or new_branch()};rport")
    headers.add("Max-Forwards", "70")
    headers.add("From", '"Alice" <sip:alice@example.com>;tag=a1')
    headers.add("To", "<sip:bob@example.com>")
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{cseq} {method}")
    headers.add("Contact", "<sip:alice@192.0.2.10:5060>")
    if body:
        headers.add("Content-Type", "application/sdp")
    return Request(method, "sip:bob@example.com", headers, body)


def drive(obj, until: float) -> list[tuple[float, object]]:
    """Fire ``obj``'s timers in order up to ``until``; return (time, action) pairs."""
    out = []
    while True:
        deadline = obj.next_timer()
        if deadline is None or deadline > until:
            return out
        out += [(deadline, a) for a in obj.handle_timer(deadline)]


def sends(timed: list[tuple[float, object]]) -> list[float]:
    return [t for t, a in timed if isinstance(a, SendMessage)]
