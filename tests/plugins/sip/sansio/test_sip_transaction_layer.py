"""The transaction layer: matching, absorption of retransmissions, ACK for 2xx, CANCEL, timers."""

from __future__ import annotations

from sip_sansio_helpers import drive, make_request

from plugins.sip.sansio import (
    DeliverRequest,
    DeliverResponse,
    Headers,
    Request,
    SendMessage,
    TimerConfig,
    TransactionLayer,
    TransactionTimeout,
    make_cancel,
    new_branch,
    parse_message,
)

T = TimerConfig(t1=0.5, t2=4.0, t4=5.0, timer_d=32.0)


def wire(actions) -> list:
    """What went on the wire, parsed back (as the peer would see it)."""
    return [parse_message(a.data) for a in actions if isinstance(a, SendMessage)]


def delivered(actions, kind=DeliverRequest) -> list:
    return [a for a in actions if isinstance(a, kind)]


def test_invite_200_ack_through_two_layers() -> None:
    uac, uas = TransactionLayer(T), TransactionLayer(T)
    invite = make_request("INVITE")
    ctxn, out = uac.send_request(invite, 0.0)
    (got,) = delivered(uas.receive_request(wire(out)[0], 0.01))
    stxn = got.transaction
    ringing = wire(uas.respond(stxn, 180, now=0.02, to_tag="b1"))
    assert [a.response.status for a in delivered(uac.receive_response(ringing[0], 0.03), DeliverResponse)] == [180]
    ok = wire(uas.respond(stxn, 200, now=0.04, to_tag="b1"))[0]
    assert delivered(uac.receive_response(ok, 0.05), DeliverResponse)[0].response.status == 200
    # No ACK yet: the UAS retransmits its 200.
    assert [m.status for m in wire(a for _, a in drive(uas, 0.6))] == [200]
    ack = make_request("ACK", branch=new_branch())
    ack.headers.set("To", ok.headers.get("To"))
    (to_tu,) = delivered(uas.receive_request(ack, 0.7))
    assert to_tu.request.method == "ACK" and to_tu.transaction is None
    # The ACK stopped the 2xx retransmission; only Timer L is left, which ends quietly.
    rest = drive(uas, 100.0)
    assert wire(a for _, a in rest) == [] and not any(isinstance(a, TransactionTimeout) for _, a in rest)
    assert len(uas) == 0


def test_retransmitted_request_is_absorbed() -> None:
    uas = TransactionLayer(T)
    request = make_request("OPTIONS")
    first = uas.receive_request(request, 0.0)
    assert len(delivered(first)) == 1
    assert uas.receive_request(request, 0.5) == []  # Trying: absorbed silently
    uas.respond(first[0].transaction, 200, now=0.6)
    again = uas.receive_request(request, 0.7)
    assert [m.status for m in wire(again)] == [200] and delivered(again) == []
    assert uas.statistics()["requests_absorbed"] == 2


def test_cancel_matches_invite_and_487_is_acked() -> None:
    uac, uas = TransactionLayer(T), TransactionLayer(T)
    invite = make_request("INVITE")
    _, out = uac.send_request(invite, 0.0)
    (got,) = delivered(uas.receive_request(wire(out)[0], 0.0))
    uac.receive_response(wire(uas.respond(got.transaction, 180, now=0.1, to_tag="b1"))[0], 0.1)
    _, out = uac.send_request(make_cancel(invite), 1.0)
    (cancel,) = delivered(uas.receive_request(wire(out)[0], 1.0))
    assert cancel.request.method == "CANCEL" and cancel.cancels is got.transaction
    ok = wire(uas.respond(cancel.transaction, 200, now=1.1))[0]
    assert ok.cseq == (1, "CANCEL")
    terminated = wire(uas.respond(cancel.cancels, 487, now=1.1, to_tag="b1"))[0]
    assert delivered(uac.receive_response(ok, 1.2), DeliverResponse)[0].response.status == 200
    actions = uac.receive_response(terminated, 1.2)
    assert delivered(actions, DeliverResponse)[0].response.status == 487
    (ack,) = wire(actions)
    assert ack.method == "ACK"
    # The UAS's INVITE transaction matches that ACK and stops repeating the 487.
    assert uas.receive_request(ack, 1.3) == []
    assert wire(a for _, a in drive(uas, 100.0)) == []


def test_cancel_without_invite_gets_481() -> None:
    uas = TransactionLayer(T)
    cancel = make_cancel(make_request("INVITE"))
    actions = uas.receive_request(cancel, 0.0)
    assert [m.status for m in wire(actions)] == [481] and delivered(actions) == []


def test_rfc2543_requests_match_without_branch() -> None:
    uas = TransactionLayer(T)
    headers = Headers([("Via", "SIP/2.0/UDP old.example.com"), ("From", "<sip:a@example.com>;tag=x"),
                       ("To", "<sip:b@example.com>"), ("Call-ID", "old-1"), ("CSeq", "5 INVITE")])
    invite = Request("INVITE", "sip:b@example.com", headers)
    (got,) = delivered(uas.receive_request(invite, 0.0))
    assert uas.receive_request(invite, 0.1) == []
    reject = wire(uas.respond(got.transaction, 486, now=0.2, to_tag="t9"))[0]
    ack_headers = Headers(headers)
    ack_headers.set("To", reject.headers.get("To"))
    ack_headers.set("CSeq", "5 ACK")
    assert uas.receive_request(Request("ACK", "sip:b@example.com", ack_headers), 0.3) == []
    assert got.transaction.state.value == "confirmed"


def test_stray_response_goes_to_tu_without_transaction() -> None:
    uac = TransactionLayer(T)
    request = make_request("INVITE")
    stray = parse_message(
        b"SIP/2.0 200 OK\r\n" + f"Via: {request.headers.get('Via')}\r\n".encode()
        + b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\nCall-ID: z\r\n"
        b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    (action,) = uac.receive_response(stray, 0.0)
    assert isinstance(action, DeliverResponse) and action.transaction is None


def test_layer_runs_many_timers_in_order() -> None:
    uac = TransactionLayer(T)
    for i in range(50):
        uac.send_request(make_request("OPTIONS", call_id=f"c{i}"), i * 0.01)
    assert uac.next_timer() == 0.5
    timed = drive(uac, 100.0)
    times = [t for t, _ in timed]
    assert times == sorted(times)
    assert sum(isinstance(a, TransactionTimeout) for _, a in timed) == 50
    assert len(uac) == 0 and uac.next_timer() is None


# -- random traffic: the layer never breaks and only transactions waiting for the TU outlive their timers ---
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from plugins.sip.sansio import SipLocalError, TransactionState, make_response  # noqa: E402

_BRANCHES = ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc", None]


def _pool() -> list:
    requests = []
    for i, branch in enumerate(_BRANCHES):
        for method in ("INVITE", "ACK", "CANCEL", "OPTIONS", "BYE"):
            request = make_request(method, branch=branch or "", call_id=f"c{i % 2}", cseq=1 + i % 2)
            if branch is None:
                request.headers.set("Via", "SIP/2.0/UDP old.example.com")
            requests.append(request)
    responses = [make_response(r, status, to_tag="t") for r in requests if r.method != "ACK"
                 for status in (100, 180, 200, 486)]
    return requests + responses


POOL = _pool()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(POOL) - 1), st.floats(0, 40), st.sampled_from([None, 180, 200, 487])),
                max_size=30))
def test_random_traffic_never_breaks_the_layer(steps) -> None:
    layer = TransactionLayer(T)
    now = 0.0
    waiting = []
    for index, dt, answer in steps:
        now += dt
        layer.handle_timer(now)
        message = POOL[index]
        if hasattr(message, "method"):
            actions = layer.receive_request(message, now)
        else:
            actions = layer.receive_response(message, now)
        for action in actions:
            if isinstance(action, DeliverRequest) and action.transaction is not None:
                waiting.append(action.transaction)
        if answer is not None and waiting:
            txn = waiting[index % len(waiting)]
            try:
                layer.respond(txn, answer, now=now, to_tag="u")
            except SipLocalError:
                pass  # answering twice is our misuse, reported as such
    drive(layer, now + 10_000)
    for txn in list(layer._servers.values()) + list(layer._clients.values()):
        # Only a request the TU has not answered yet may still be alive: it has no timer of its own.
        assert txn.state in (TransactionState.PROCEEDING, TransactionState.TRYING)
        assert txn.next_timer() is None
        assert txn.last_response is None or txn.last_response.status < 200


def test_cancel_matches_an_rfc2543_invite() -> None:
    uas = TransactionLayer(T)
    headers = Headers([("Via", "SIP/2.0/UDP old.example.com"), ("From", "<sip:a@example.com>;tag=x"),
                       ("To", "<sip:b@example.com>"), ("Call-ID", "old-2"), ("CSeq", "9 INVITE")])
    (got,) = delivered(uas.receive_request(Request("INVITE", "sip:b@example.com", headers), 0.0))
    cancel_headers = Headers(headers)
    cancel_headers.set("CSeq", "9 CANCEL")
    (cancel,) = delivered(uas.receive_request(Request("CANCEL", "sip:b@example.com", cancel_headers), 0.1))
    assert cancel.cancels is got.transaction


def test_an_invite_the_tu_never_answers_is_given_up_by_the_layer() -> None:
    layer = TransactionLayer(T)
    (got,) = delivered(layer.receive_request(make_request("INVITE"), 0.0))
    layer.guard_unanswered(got.transaction, 0.0, 100.0)
    assert layer.next_timer() == 100.0
    timed = drive(layer, 1000.0)
    assert [(t, a.timer) for t, a in timed if isinstance(a, TransactionTimeout)] == [(100.0, "P")]
    assert len(layer) == 0


def test_finished_transactions_are_not_kept_alive_by_timers_that_moved() -> None:
    # The guard's far deadline stays in the heap after the answer moved the deadline closer; it must
    # not hold the finished transaction (and its INVITE) until it comes due.
    import gc
    import weakref

    layer = TransactionLayer(T)
    (pending,) = delivered(layer.receive_request(make_request("INVITE", call_id="still-ringing@test"), 0.0))
    layer.guard_unanswered(pending.transaction, 0.0, 500.0)  # a live timer ahead of the stale ones
    refs = []
    for n in range(50):
        invite = make_request("INVITE", call_id=f"c{n}@test")
        (got,) = delivered(layer.receive_request(invite, 0.0))
        layer.guard_unanswered(got.transaction, 0.0, 1000.0)
        layer.respond(got.transaction, 486, now=0.0, to_tag="b1")
        refs.append(weakref.ref(got.transaction))
        del got
    drive(layer, 100.0)  # Timer H ends every one of them (no ACK came)
    gc.collect()
    assert len(layer) == 1 and layer.next_timer() == 500.0
    assert [r for r in refs if r() is not None] == []


def test_the_ack_of_a_2xx_names_the_invite_it_acknowledges() -> None:
    layer = TransactionLayer(T)
    invite = make_request("INVITE", call_id="acked@test")
    (got,) = delivered(layer.receive_request(invite, 0.0))
    layer.respond(got.transaction, 200, now=0.1, to_tag="b1")
    ack = make_request("ACK", call_id="acked@test")  # a new branch: the ACK of a 2xx is its own transaction
    (delivered_ack,) = delivered(layer.receive_request(ack, 0.2))
    assert delivered_ack.transaction is None and delivered_ack.acknowledges is got.transaction
