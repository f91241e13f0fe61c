"""RFC 3261 §17 transactions on an explicit clock: every timer path."""

from __future__ import annotations

import pytest
from sip_sansio_helpers import drive, make_request, sends

from plugins.sip.sansio import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    DeliverResponse,
    SendMessage,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    SipLocalError,
    TimerConfig,
    TransactionState,
    TransactionTerminated,
    TransactionTimeout,
    make_response,
    parse_message,
)

T = TimerConfig(t1=0.5, t2=4.0, t4=5.0, timer_d=32.0)
S = TransactionState


def kinds(actions) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_client_invite_timer_a_doubles_until_timer_b_gives_408() -> None:
    txn = ClientInviteTransaction(make_request("INVITE"), timers=T)
    first = txn.start(0.0)
    assert kinds(first) == ["SendMessage"]
    timed = drive(txn, 100.0)
    # A fires at T1, then doubling (INVITE retransmission is not capped by T2), until B = 64*T1.
    assert sends(timed) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    timeouts = [a for _, a in timed if isinstance(a, TransactionTimeout)]
    assert len(timeouts) == 1 and timeouts[0].timer == "B" and timeouts[0].response.status == 408
    assert [t for t, a in timed if isinstance(a, TransactionTimeout)] == [32.0]
    assert txn.state is S.TERMINATED and txn.next_timer() is None


def test_client_invite_reliable_has_no_retransmissions() -> None:
    txn = ClientInviteTransaction(make_request("INVITE"), timers=T, reliable=True)
    txn.start(0.0)
    timed = drive(txn, 100.0)
    assert sends(timed) == []
    assert [a.timer for _, a in timed if isinstance(a, TransactionTimeout)] == ["B"]


def test_client_invite_provisional_stops_retransmission() -> None:
    request = make_request("INVITE")
    txn = ClientInviteTransaction(request, timers=T)
    txn.start(0.0)
    drive(txn, 0.6)  # one retransmission at 0.5
    actions = txn.receive_response(make_response(request, 180, to_tag="b1"), 0.7)
    assert kinds(actions) == ["DeliverResponse"] and txn.state is S.PROCEEDING
    assert drive(txn, 1000.0) == []  # neither A nor B fires in Proceeding: the TU owns the ring timeout


def test_client_invite_failure_is_acked_and_absorbed_until_timer_d() -> None:
    request = make_request("INVITE")
    txn = ClientInviteTransaction(request, timers=T)
    txn.start(0.0)
    busy = make_response(request, 486, to_tag="b1")
    actions = txn.receive_response(busy, 1.0)
    assert kinds(actions) == ["DeliverResponse", "SendMessage"]
    ack = parse_message(actions[1].data)
    assert ack.method == "ACK" and ack.cseq == (1, "ACK")
    assert ack.to.tag == "b1" and ack.via[0].branch == request.via[0].branch
    # A retransmitted 486 is not delivered again; the ACK is re-sent.
    again = txn.receive_response(busy, 2.0)
    assert kinds(again) == ["SendMessage"] and again[0].data == actions[1].data
    timed = drive(txn, 100.0)
    assert [(t, type(a).__name__) for t, a in timed] == [(33.0, "TransactionTerminated")]


def test_client_invite_failure_reliable_terminates_at_once() -> None:
    request = make_request("INVITE")
    txn = ClientInviteTransaction(request, timers=T, reliable=True)
    txn.start(0.0)
    txn.receive_response(make_response(request, 603, to_tag="b1"), 1.0)
    assert [(t, type(a).__name__) for t, a in drive(txn, 100.0)] == [(1.0, "TransactionTerminated")]


def test_client_invite_2xx_accepted_passes_retransmissions_until_timer_m() -> None:
    request = make_request("INVITE")
    txn = ClientInviteTransaction(request, timers=T)
    txn.start(0.0)
    ok = make_response(request, 200, to_tag="b1")
    assert kinds(txn.receive_response(ok, 1.0)) == ["DeliverResponse"]
    assert txn.state is S.ACCEPTED
    # Each 2xx retransmission reaches the TU so it can re-send its ACK (RFC 6026).
    assert kinds(txn.receive_response(ok, 2.0)) == ["DeliverResponse"]
    assert [(t, type(a).__name__) for t, a in drive(txn, 100.0)] == [(33.0, "TransactionTerminated")]


def test_client_non_invite_timer_e_caps_at_t2_then_timer_f() -> None:
    txn = ClientNonInviteTransaction(make_request("OPTIONS"), timers=T)
    txn.start(0.0)
    timed = drive(txn, 100.0)
    times = sends(timed)
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) == T.t2
    timeout = [a for _, a in timed if isinstance(a, TransactionTimeout)]
    assert timeout[0].timer == "F" and timeout[0].response.status == 408
    assert txn.state is S.TERMINATED


def test_client_non_invite_proceeding_retransmits_every_t2() -> None:
    request = make_request("REGISTER")
    txn = ClientNonInviteTransaction(request, timers=T)
    txn.start(0.0)
    txn.receive_response(make_response(request, 100), 0.1)
    assert txn.state is S.PROCEEDING
    times = sends(drive(txn, 20.0))
    assert times[:3] == [0.5, 4.5, 8.5]


def test_client_non_invite_timer_k_absorbs_retransmitted_finals() -> None:
    request = make_request("BYE")
    txn = ClientNonInviteTransaction(request, timers=T)
    txn.start(0.0)
    ok = make_response(request, 200)
    assert kinds(txn.receive_response(ok, 0.2)) == ["DeliverResponse"]
    assert txn.receive_response(ok, 0.3) == []
    assert [(t, type(a).__name__) for t, a in drive(txn, 100.0)] == [(0.2 + T.t4, "TransactionTerminated")]


def test_client_non_invite_rejects_invite() -> None:
    with pytest.raises(SipLocalError):
        ClientNonInviteTransaction(make_request("INVITE"), timers=T).start(0.0)


def test_server_invite_failure_timer_g_until_ack_then_timer_i() -> None:
    request = make_request("INVITE")
    txn = ServerInviteTransaction(request, timers=T)
    assert kinds(txn.trying(0.0)) == ["SendMessage"]
    # A retransmitted INVITE gets the last provisional again.
    assert parse_message(txn.receive_request(request, 0.2)[0].data).status == 100
    txn.respond(486, now=1.0, to_tag="b1")
    assert txn.state is S.COMPLETED
    timed = drive(txn, 5.0)
    assert sends(timed) == [1.5, 2.5, 4.5]  # G: T1, 2T1, 4T1 ... (capped at T2)
    assert parse_message(timed[0][1].data).status == 486
    ack = make_request("ACK", branch=request.via[0].branch)
    assert txn.receive_request(ack, 5.1) == []
    assert txn.state is S.CONFIRMED
    # Timer I absorbs ACK and INVITE retransmissions: nothing is sent, nothing reaches the TU.
    assert txn.receive_request(ack, 6.0) == [] and txn.receive_request(request, 6.1) == []
    assert [(t, type(a).__name__) for t, a in drive(txn, 100.0)] == [(5.1 + T.t4, "TransactionTerminated")]


def test_server_invite_timer_h_when_ack_never_comes() -> None:
    request = make_request("INVITE")
    txn = ServerInviteTransaction(request, timers=T)
    txn.respond(404, now=0.0, to_tag="b1")
    timed = drive(txn, 100.0)
    gaps = [b - a for a, b in zip(sends(timed), sends(timed)[1:])]
    assert max(gaps) == T.t2
    timeouts = [(t, a.timer) for t, a in timed if isinstance(a, TransactionTimeout)]
    assert timeouts == [(32.0, "H")]
    assert txn.state is S.TERMINATED


def test_server_invite_2xx_retransmitted_until_ack_then_timer_l() -> None:
    request = make_request("INVITE")
    txn = ServerInviteTransaction(request, timers=T)
    txn.respond(200, now=0.0, to_tag="b1")
    assert txn.state is S.ACCEPTED
    assert sends(drive(txn, 2.0)) == [0.5, 1.5]
    # A retransmitted INVITE is absorbed in Accepted (RFC 6026).
    assert txn.receive_request(request, 2.1) == []
    txn.ack_received()
    timed = drive(txn, 100.0)
    assert [(t, type(a).__name__) for t, a in timed] == [(32.0, "TransactionTerminated")]


def test_server_invite_2xx_never_acked_times_out_with_timer_l() -> None:
    request = make_request("INVITE")
    txn = ServerInviteTransaction(request, timers=T)
    txn.respond(200, now=0.0, to_tag="b1")
    timed = drive(txn, 100.0)
    assert [a.timer for _, a in timed if isinstance(a, TransactionTimeout)] == ["L"]


def test_server_invite_cannot_answer_twice() -> None:
    request = make_request("INVITE")
    txn = ServerInviteTransaction(request, timers=T)
    txn.respond(486, now=0.0, to_tag="b1")
    with pytest.raises(SipLocalError):
        txn.respond(200, now=0.1, to_tag="b1")


def test_server_non_invite_timer_j_absorbs_retransmissions() -> None:
    request = make_request("OPTIONS")
    txn = ServerNonInviteTransaction(request, timers=T)
    assert txn.receive_request(request, 0.1) == []  # Trying: nothing sent yet, nothing to repeat
    txn.respond(200, now=0.2, to_tag="b1")
    resent = txn.receive_request(request, 0.3)
    assert kinds(resent) == ["SendMessage"] and parse_message(resent[0].data).status == 200
    assert [(t, type(a).__name__) for t, a in drive(txn, 100.0)] == [(0.2 + 32.0, "TransactionTerminated")]


def test_server_non_invite_reliable_timer_j_is_zero() -> None:
    request = make_request("REGISTER")
    txn = ServerNonInviteTransaction(request, timers=T, reliable=True)
    txn.respond(200, now=5.0)
    assert [(t, type(a).__name__) for t, a in drive(txn, 100.0)] == [(5.0, "TransactionTerminated")]


def test_transport_error_times_out_client() -> None:
    txn = ClientNonInviteTransaction(make_request("OPTIONS"), timers=T)
    txn.start(0.0)
    actions = txn.transport_error(0.1)
    assert isinstance(actions[0], TransactionTimeout) and actions[0].response.status == 408
    assert isinstance(actions[1], TransactionTerminated)


def test_deliver_response_names_its_transaction() -> None:
    request = make_request("OPTIONS")
    txn = ClientNonInviteTransaction(request, timers=T)
    txn.start(0.0)
    (action,) = txn.receive_response(make_response(request, 200), 0.1)
    assert isinstance(action, DeliverResponse) and action.transaction is txn
    assert isinstance(txn.start.__self__, ClientNonInviteTransaction)
    assert all(isinstance(a, SendMessage) for a in ClientNonInviteTransaction(request, timers=T).start(0))


def test_server_invite_the_tu_never_answers_is_given_up_by_its_guard() -> None:
    txn = ServerInviteTransaction(make_request("INVITE"), timers=T)
    txn.guard_unanswered(0.0, 60.0)
    txn.respond(180, now=1.0, to_tag="b1")  # a provisional does not stop the guard
    timed = drive(txn, 1000.0)
    assert [(t, a.timer) for t, a in timed if isinstance(a, TransactionTimeout)] == [(60.0, "P")]
    assert txn.state is S.TERMINATED


def test_server_invite_guard_stops_at_the_final_answer() -> None:
    txn = ServerInviteTransaction(make_request("INVITE"), timers=T)
    txn.guard_unanswered(0.0, 60.0)
    txn.respond(200, now=1.0, to_tag="b1")
    txn.ack_received()
    timed = drive(txn, 1000.0)
    assert [a for _, a in timed if isinstance(a, TransactionTimeout)] == []
    assert [(t, type(a).__name__) for t, a in timed] == [(33.0, "TransactionTerminated")]


def test_compacted_non_invite_still_answers_retransmissions_with_the_same_bytes() -> None:
    request = make_request("BYE")
    txn = ServerNonInviteTransaction(request, timers=T)
    first = txn.respond(200, now=0.0, to_tag="b1")
    txn.compact()
    assert txn.request is None and txn.last_response is None and txn.final_status == 200
    resent = txn.receive_request(request, 1.0)
    assert [a.data for a in resent] == [first[0].data]
    assert [(t, type(a).__name__) for t, a in drive(txn, 100.0)] == [(32.0, "TransactionTerminated")]


def test_acked_2xx_is_not_sent_again_for_a_retransmitted_invite() -> None:
    request = make_request("INVITE")
    txn = ServerInviteTransaction(request, timers=T)
    txn.respond(200, now=0.0, to_tag="b1")
    txn.ack_received()
    assert txn.receive_request(request, 0.2) == [] and txn.final_status == 200
    assert sends(drive(txn, 100.0)) == []
