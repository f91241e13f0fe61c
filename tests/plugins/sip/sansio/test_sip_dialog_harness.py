"""Dialogs and whole calls between two in-memory user agents on an explicit clock."""

from __future__ import annotations

from sip_sansio_helpers import make_request

from plugins.sip.sansio import (
    Dialog,
    DialogState,
    LoopbackNetwork,
    TimerConfig,
    make_response,
    parse_message,
)

FAST = TimerConfig(t1=0.5, t2=4.0, t4=5.0, timer_d=32.0)


def pair(**callee_options):
    net = LoopbackNetwork(timers=FAST)
    alice = net.agent("127.0.0.1:5061", "alice")
    bob = net.agent("127.0.0.1:5062", "bob", **callee_options)
    return net, alice, bob


def methods_on_wire(net, source=None) -> list[str]:
    out = []
    for _, src, _, data in net.delivered:
        if source is not None and src != source:
            continue
        m = parse_message(data)
        out.append(getattr(m, "method", None) or str(m.status))
    return out


def test_basic_call_invite_200_ack_bye() -> None:
    net, alice, bob = pair()
    call = alice.call(bob)
    net.run(until=1.0)
    assert call.established and call.final_status == 200
    (bob_call,) = bob.calls.values()
    assert bob_call.established
    assert call.media.codec.name == "PCMU" and bob_call.media.codec.name == "PCMU"
    assert call.media.remote_port == bob.media[call.call_id].port
    assert methods_on_wire(net, alice.address) == ["INVITE", "ACK"]
    assert methods_on_wire(net, bob.address) == ["180", "200"]
    alice.hangup(call)
    net.run()
    assert bob_call.ended_by == "them" and bob_call.dialog.state is DialogState.TERMINATED
    assert call.statuses[-1] == 200
    assert len(alice.layer) == 0 and len(bob.layer) == 0  # every transaction ended on its own


def test_call_survives_lost_invite_and_lost_200() -> None:
    net, alice, bob = pair()
    lost = {"INVITE": 1, "200": 1}

    def drop(src, dst, data):
        first = data.split(b"\r\n", 1)[0]
        key = "INVITE" if first.startswith(b"INVITE") else "200" if b" 200 " in first else None
        if key and lost[key]:
            lost[key] -= 1
            return True
        return False

    net.drop = drop
    call = alice.call(bob)
    net.run(until=10.0)
    assert net.dropped == 2 and call.established
    (bob_call,) = bob.calls.values()
    assert bob_call.established
    # The INVITE was retransmitted by Timer A, the 200 by the UAS core until the ACK came.
    assert methods_on_wire(net, alice.address).count("INVITE") == 1
    assert methods_on_wire(net, bob.address).count("200") == 1


def test_busy_callee() -> None:
    net, alice, bob = pair(answer=486)
    call = alice.call(bob)
    net.run()
    assert call.final_status == 486 and not call.established
    assert "ACK" in methods_on_wire(net, alice.address)
    assert len(alice.layer) == 0 and len(bob.layer) == 0


def test_cancel_while_ringing() -> None:
    net, alice, bob = pair(answer=None)
    call = alice.call(bob)
    net.run(until=1.0)
    assert 180 in call.statuses
    alice.cancel(call, bob.address)
    net.run()
    assert call.final_status == 487
    (bob_call,) = bob.calls.values()
    assert bob_call.ended_by == "cancel"
    assert methods_on_wire(net, alice.address) == ["INVITE", "CANCEL", "ACK"]


def test_no_answer_times_out_with_408_when_callee_is_gone() -> None:
    net, alice, _ = pair()
    del net.agents["127.0.0.1:5062"]
    call = alice.call(type("Ghost", (), {"user": "bob", "address": "127.0.0.1:5999"})())
    net.run()
    assert call.final_status == 408 and [t.timer for t in alice.timeouts] == ["B"]
    assert net.now == FAST.timeout_64t1 + 0.0


def test_hold_and_resume_with_reinvite() -> None:
    net, alice, bob = pair()
    call = alice.call(bob)
    net.run(until=1.0)
    (bob_call,) = bob.calls.values()
    alice.hold(call)
    net.run(until=2.0)
    assert bob_call.media.remote_hold and bob_call.media.direction == "recvonly"
    assert call.media.direction == "sendonly"
    alice.hold(call, resume=True)
    net.run(until=3.0)
    assert not bob_call.media.remote_hold and call.media.direction == "sendrecv"
    assert call.dialog.local_cseq == 3 and bob_call.dialog.remote_cseq == 3


def test_info_dtmf_reaches_the_callee() -> None:
    net, alice, bob = pair()
    call = alice.call(bob)
    net.run(until=1.0)
    for digit in "12#":
        alice.send_dtmf_info(call, digit)
    net.run(until=2.0)
    (bob_call,) = bob.calls.values()
    assert bob_call.dtmf == ["1", "2", "#"]


def test_callee_hangs_up() -> None:
    net, alice, bob = pair()
    call = alice.call(bob)
    net.run(until=1.0)
    (bob_call,) = bob.calls.values()
    bob.hangup(bob_call)
    net.run()
    assert call.ended_by == "them" and call.dialog.state is DialogState.TERMINATED


def test_uac_dialog_route_set_and_strict_router() -> None:
    invite = make_request("INVITE")
    ok = make_response(invite, 200, to_tag="b1", headers=[
        ("Record-Route", "<sip:p2.example.com;lr>"), ("Record-Route", "<sip:p1.example.com;lr>"),
        ("Contact", "<sip:bob@192.0.2.20:5070>")])
    dialog = Dialog.from_uac(invite, ok)
    bye = dialog.create_bye(via="UDP 192.0.2.10:5060")
    assert str(bye.uri) == "sip:bob@192.0.2.20:5070"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.cseq == (2, "BYE") and bye.to.tag == "b1" and bye.from_.tag == "a1"
    ack = dialog.create_ack(via="UDP 192.0.2.10:5060")
    assert ack.cseq == (1, "ACK") and ack.via[0].branch != invite.via[0].branch
    strict = make_response(invite, 200, to_tag="b1", headers=[
        ("Record-Route", "<sip:strict.example.com>"), ("Contact", "<sip:bob@192.0.2.20:5070>")])
    info = Dialog.from_uac(invite, strict).create_request("INFO", via="UDP 192.0.2.10:5060")
    assert str(info.uri) == "sip:strict.example.com"
    assert info.headers.get_all("Route") == ["<sip:bob@192.0.2.20:5070>"]


def test_uas_dialog_rejects_out_of_order_cseq() -> None:
    invite = make_request("INVITE", cseq=10)
    dialog = Dialog.from_uas(invite, "b1")
    assert dialog.receive_request(make_request("INFO", cseq=11)) is None
    assert dialog.receive_request(make_request("INFO", cseq=11)) == 500
    refer = dialog.create_refer("<sip:carol@example.com>", via="UDP 192.0.2.99:5060")
    assert refer.headers.get("Refer-To") == "<sip:carol@example.com>" and refer.cseq == (1, "REFER")
    assert str(refer.uri) == "sip:alice@192.0.2.10:5060" and refer.to.tag == "a1"


# -- random loss: every call ends cleanly and every transaction terminates ------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), max_size=40), st.sampled_from([200, 486, None]))
def test_calls_under_random_loss_always_settle(losses: list[bool], answer) -> None:
    net, alice, bob = pair(answer=answer)
    pattern = iter(losses)
    net.drop = lambda src, dst, data: next(pattern, False)
    call = alice.call(bob)
    net.run(until=5.0)
    if answer is None and call.final_status is None:
        alice.cancel(call, bob.address)
    net.run(until=40.0)
    if call.established:
        alice.hangup(call)
    net.run()  # until no datagram and no timer is left
    assert call.final_status in (200, 408, 480, 486, 487)
    assert len(alice.layer) == 0 and len(bob.layer) == 0
    assert alice.layer.next_timer() is None and bob.layer.next_timer() is None
    assert not alice.parse_errors and not bob.parse_errors


def test_new_request_has_every_mandatory_field_and_parses() -> None:
    from plugins.sip.sansio import new_request

    request = new_request("REGISTER", "sip:registrar.example.com", from_="<sip:1001@example.com>",
                          to="<sip:1001@example.com>", via="udp 192.0.2.5:5070", contact="<sip:1001@192.0.2.5:5070>",
                          headers=[("Expires", "300")])
    wire = parse_message(request.to_bytes())
    assert wire.method == "REGISTER" and wire.cseq == (1, "REGISTER") and wire.expires == 300
    assert wire.from_.tag and wire.via[0].branch.startswith("z9hG4bK") and wire.via[0].rport is True
    assert wire.via[0].sent_by == "192.0.2.5:5070" and wire.max_forwards == 70 and wire.call_id


def test_refer_progress_notify() -> None:
    invite = make_request("INVITE", cseq=3)
    dialog = Dialog.from_uas(invite, "b1", local_contact="<sip:us@192.0.2.99>")
    trying = parse_message(dialog.create_refer_notify(100, via="UDP 192.0.2.99:5060").to_bytes())
    assert trying.method == "NOTIFY" and trying.body == b"SIP/2.0 100 Trying\r\n"
    assert trying.headers.get("Event") == "refer" and trying.headers.get("Subscription-State").startswith("active")
    done = parse_message(dialog.create_refer_notify(200, via="UDP 192.0.2.99:5060").to_bytes())
    assert done.headers.get("Subscription-State") == "terminated;reason=noresource"
    assert done.cseq[0] == trying.cseq[0] + 1 and done.media_type == "message/sipfrag"
