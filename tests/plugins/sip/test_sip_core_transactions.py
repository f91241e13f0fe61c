"""The shell's message core on the sans-IO transaction layer, driven synchronously on a virtual clock:
what a peer sees (answers, retransmissions absorbed or repeated) and what the security guard counts."""

from __future__ import annotations

from plugins.sip._core import SipCore
from plugins.sip._security import SecurityGuard, SecurityPolicy
from plugins.sip._timers import Scheduler
from plugins.sip._transport import ListenAddress, Peer
from plugins.sip.sansio import parse_message

LOCAL = ListenAddress("udp", "127.0.0.1", 5070)
PHONE = Peer("udp", "192.0.2.7", 5062, LOCAL)


def request(method: str, call_id: str, branch: str, cseq: int = 1, to_tag: str = "") -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    return (
        f"{method} sip:100@127.0.0.1:5070 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK{branch};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:phone@192.0.2.7>;tag=p1\r\nTo: <sip:100@127.0.0.1>{tag}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:phone@192.0.2.7:5062>\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


class Harness:
    def __init__(self, policy: SecurityPolicy) -> None:
        self.now = 0.0
        self.sent: list[tuple[bytes, Peer]] = []
        self.scheduler = Scheduler()
        self.guard = SecurityGuard(policy)
        self.core = SipCore(
            lambda data, peer: self.sent.append((data, peer)) or True, self.scheduler, self.guard, lambda: self.now,
            t1=0.5, t2=4.0, t4=5.0,
        )
        self.core.local["udp"] = LOCAL

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while (due := self.scheduler.next_timer()) is not None and due <= end:
            self.now = due
            self.scheduler.handle_timer(due)
        self.now = end

    def statuses(self) -> list[int]:
        return [parse_message(data).status for data, _ in self.sent]


def test_answered_and_acknowledged_calls_do_not_count_against_the_transaction_cap() -> None:
    h = Harness(SecurityPolicy(max_transactions_per_source=2))
    h.core.handlers["INVITE"] = lambda req, txn: h.core.respond(txn, 200, headers=[("Contact", "<sip:100@127.0.0.1:5070>")])
    h.core.handlers["BYE"] = lambda req, txn: h.core.respond(txn, 200)
    for n in range(6):
        h.core.deliver(request("INVITE", f"call-{n}", f"inv{n}"), PHONE)
        to_tag = parse_message(h.sent[-1][0]).to.tag
        h.core.deliver(request("ACK", f"call-{n}", f"ack{n}", to_tag=to_tag), PHONE)
        h.core.deliver(request("BYE", f"call-{n}", f"bye{n}", cseq=2, to_tag=to_tag), PHONE)
        h.advance(0.1)
    # Six calls one after the other from one source with a cap of two open transactions: none refused.
    assert h.statuses() == [200, 200] * 6
    assert h.guard._sources["192.0.2.7"].transactions == 0


def test_retransmissions_get_the_same_answer_and_everything_is_forgotten_in_time() -> None:
    h = Harness(SecurityPolicy())
    h.core.handlers["BYE"] = lambda req, txn: h.core.respond(txn, 481)
    h.core.handlers["INVITE"] = lambda req, txn: None  # a call layer that forgets to answer
    h.core.deliver(request("BYE", "gone", "b1"), PHONE)
    h.core.deliver(request("BYE", "gone", "b1"), PHONE)  # a retransmission: the same bytes again
    assert h.statuses() == [481, 481] and h.sent[0][0] == h.sent[1][0]
    assert h.core.statistics()["retransmissions_absorbed"] == 1
    # An INVITE nobody answers: 100 Trying at once, then the guard gives it up (64*T1 + 180 s).
    h.core.deliver(request("INVITE", "ringing", "i1"), PHONE)
    assert h.statuses()[-1] == 100
    h.advance(64 * 0.5 + 181)
    assert h.core.statistics()["server_transactions"] == 0
    assert h.guard._sources["192.0.2.7"].transactions == 0
    assert len(h.scheduler) == 0
