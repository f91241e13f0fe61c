"""Registered phones calling outside numbers through the outbound trunk ([[sip.users]] ``dial``,
``caller_id``; ``[sip] outbound_prefix``).

The phone is a real baresip (saying 500 Hz) or SIPp answering the digest challenge (-au/-ap); the far
end is SIPp behind the trunk, its media the test's own UDP socket saying 900 Hz. Refused numbers get a
403 and a ``dial_refused`` SipSecurityEvent, and nothing is sent to the trunk."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "voice"))

from baresip_agent import baresip_agent, dominant_frequency
from sip_interop_helpers import describe, free_udp_port, run_sipp
from voice_helpers import ToneResponder, cdr_row, count_frames_at, dial, frame_tones, heard

from engine.testing import wait_until

pytestmark = pytest.mark.interop

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
PHONE_HZ, FAR_END_HZ = 500.0, 900.0
NUMBER = "600123456"

PHONE = """
[[sip.users]]
name = "2001"
password = "s3cret"
dial = ["_6XXXXXXXX"]
caller_id = "+34911000111"
"""


def trunk(port: int, dial: str = "_X.") -> str:
    # By default the trunk allows more than the phone may dial: the user's own list must refuse 700123456.
    return f'\n[[sip.trunks]]\nname = "carrier"\nserver = "sip:127.0.0.1:{port}"\noutbound = true\ndial = ["{dial}"]\n'


async def test_a_registered_phone_calls_an_outside_number_through_the_trunk(sip_engine, tmp_path):
    trunk_port = free_udp_port()
    far_end = ToneResponder(FAR_END_HZ, ssrc=0x4321)
    await far_end.sock.bind(("127.0.0.1", 0))
    results: dict = {}
    async with sip_engine(sip=PHONE + trunk(trunk_port)) as (engine, channel):
        events: list = []
        engine.bus.add_listener(events.append)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(far_end.run)

            async def party() -> None:
                # Early media, then answers, talks for 4 s and hangs up (BYE from the far end).
                results["sipp"] = await run_sipp(["-sf", str(SCENARIOS / "far_end_early_media.xml"), "-i", "127.0.0.1",
                                                  "-p", str(trunk_port), "-m", "1", "-d", "4000",
                                                  "-set", "rtp_port", str(far_end.sock.getsockname()[1])])

            nursery.start_soon(party)
            async with baresip_agent(channel, tmp_path, user="2001", frequency=PHONE_HZ) as phone:
                await dial(phone, channel, NUMBER)
                with trio.fail_after(60):
                    while "sipp" not in results:
                        await trio.sleep(0.05)
                assert results["sipp"].returncode == 0, describe(results["sipp"])  # caller ID +34911000111 shown
                await wait_until(lambda: not channel.calls.calls, timeout=20)  # the far end's BYE ended the phone's leg
            nursery.cancel_scope.cancel()
        hangups = {e.interaction: e.fields["Cause"] for e in events if e.event == "Hangup"}
        assert len(hangups) == 2, hangups
        rows = [await cdr_row(engine, interaction) for interaction in hangups]
        # The phone's call record: the user called the number, and it was answered.
        (row,) = [r for r in rows if r["src"] == "2001"]
        assert row["dst"] == NUMBER and row["disposition"] == "ANSWERED", rows
        # The trunk leg's own record presents the user's caller ID.
        (trunk_row,) = [r for r in rows if r["src"] == "+34911000111"]
        assert trunk_row["dst"] == NUMBER and trunk_row["disposition"] == "ANSWERED", rows
        assert channel.calls.phone_out.statistics() == {"placed": 1, "early_media": 1, "answered": 1, "refused": 0}
        await wait_until(lambda: engine.media.statistics()["endpoints"] == 0, timeout=10)

    said_by_phone = np.concatenate(far_end.heard)
    assert abs(dominant_frequency(said_by_phone, 8000) - PHONE_HZ) < 15
    assert count_frames_at(frame_tones(heard(phone)), FAR_END_HZ) >= 50  # a second and more of the far end


async def _refused(sip_engine, number: str, trunk_dial: str = "_X.") -> tuple[list, object]:
    trunk_port = free_udp_port()  # nothing listens there: nothing may be dialled
    async with sip_engine(sip=PHONE + trunk(trunk_port, trunk_dial)) as (engine, channel):
        events: list = []
        engine.bus.add_listener(events.append)
        port = channel.bound[0].port
        result = await run_sipp(["-sf", str(SCENARIOS / "phone_dials_refused.xml"), "-s", number, "-au", "2001",
                                 "-ap", "s3cret",
                                 "-auth_uri", f"{number}@127.0.0.1:{port}", "-i", "127.0.0.1", "-p", "0", "-m", "1", f"127.0.0.1:{port}"])
        assert result.returncode == 0, describe(result)  # 403 to the phone
        await wait_until(lambda: [e for e in events if e.event == "SipSecurityEvent"], timeout=10)
        assert channel.outbound.statistics()["dialed"] == 0  # never reached the trunk
        assert not [e for e in events if e.event == "Hangup"]  # no call was made at all
        return [e for e in events if e.event == "SipSecurityEvent"], channel


async def test_a_number_outside_the_users_dial_list_is_refused_with_403(sip_engine):
    (event,), channel = await _refused(sip_engine, "700123456")  # the trunk allows it, the user's list does not
    assert event.fields["Kind"] == "dial_refused" and event.fields["Username"] == "2001"
    assert "dial list" in event.fields["Detail"]
    assert channel.calls.phone_out.statistics()["refused"] == 1


async def test_a_number_the_trunks_allowlist_refuses_is_refused_with_403(sip_engine):
    (event,), _ = await _refused(sip_engine, NUMBER, trunk_dial="_9XXXXXXXX")  # the user may, the trunk may not
    assert event.fields["Kind"] == "dial_refused" and "allowlist" in event.fields["Detail"]


async def test_a_number_with_bad_syntax_is_refused_with_403(sip_engine):
    (event,), _ = await _refused(sip_engine, "6001-23456")  # passes the destination check, not check_dial
    assert event.fields["Kind"] == "dial_refused" and "refused dial string" in event.fields["Detail"]


async def test_the_phone_hanging_up_ends_the_trunk_leg(sip_engine, tmp_path):
    """BYE from the phone: the far end (SIPp, waiting for the engine's BYE) is hung up too."""
    trunk_port = free_udp_port()
    far_end = ToneResponder(FAR_END_HZ, ssrc=0x4321)
    await far_end.sock.bind(("127.0.0.1", 0))
    results: dict = {}
    # callee_media_waits.xml wants to be shown +34910000000
    shown = PHONE.replace("+34911000111", "+34910000000")
    async with sip_engine(sip=shown + trunk(trunk_port)) as (engine, channel):
        events: list = []
        engine.bus.add_listener(events.append)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(far_end.run)

            async def party() -> None:
                results["sipp"] = await run_sipp(["-sf", str(SCENARIOS / "callee_media_waits.xml"), "-i", "127.0.0.1",
                                                  "-p", str(trunk_port), "-m", "1",
                                                  "-set", "rtp_port", str(far_end.sock.getsockname()[1])])

            nursery.start_soon(party)
            async with baresip_agent(channel, tmp_path, user="2001", frequency=PHONE_HZ) as phone:
                await dial(phone, channel, NUMBER)
                await wait_until(lambda: len(far_end.heard) >= 50, timeout=30)  # the two are talking
                await phone.command("hangup")
                with trio.fail_after(30):
                    while "sipp" not in results:
                        await trio.sleep(0.05)
                assert results["sipp"].returncode == 0, describe(results["sipp"])  # it got our BYE
                await wait_until(lambda: not channel.calls.calls, timeout=20)
            nursery.cancel_scope.cancel()
        causes = {e.fields["Cause"]: e.interaction for e in events if e.event == "Hangup"}
        assert set(causes) == {"caller", "transfer-partner"}, causes
        row = await cdr_row(engine, causes["caller"])
        assert (row["src"], row["dst"], row["disposition"]) == ("2001", NUMBER, "ANSWERED"), row


async def test_cancel_from_the_phone_cancels_the_ringing_trunk_leg(sip_engine, tmp_path):
    """With ``outbound_prefix = "0"`` the phone dials 0600123456; the trunk is asked for 600123456,
    which rings; the phone gives up (CANCEL) and the far end gets a CANCEL long before the 10 s ring
    timeout would have sent one."""
    trunk_port = free_udp_port()
    results: dict = {}
    async with sip_engine(sip='outbound_prefix = "0"\n' + PHONE + trunk(trunk_port)) as (engine, channel):
        events: list = []
        engine.bus.add_listener(events.append)
        async with trio.open_nursery() as nursery:

            async def party() -> None:
                results["sipp"] = await run_sipp(["-sf", str(SCENARIOS / "callee_never_answers.xml"), "-i", "127.0.0.1",
                                                  "-p", str(trunk_port), "-m", "1"])

            nursery.start_soon(party)
            async with baresip_agent(channel, tmp_path, user="2001") as phone:
                await dial(phone, channel, "0" + NUMBER)
                await wait_until(lambda: channel.outbound.statistics()["dialed"] == 1, timeout=20)
                await phone.command("hangup")
                with trio.fail_after(30):
                    while "sipp" not in results:
                        await trio.sleep(0.05)
                assert results["sipp"].returncode == 0, describe(results["sipp"])  # CANCEL, 487, ACK
                await wait_until(lambda: len([e for e in events if e.event == "Hangup"]) == 2, timeout=20)
        # Both ended by the phone's CANCEL (a ring timeout would have said "no-answer").
        assert [e.fields["Cause"] for e in events if e.event == "Hangup"] == ["caller-cancel"] * 2
        rows = [await cdr_row(engine, e.interaction) for e in events if e.event == "Hangup"]
        assert sorted((r["src"], r["dst"], r["disposition"]) for r in rows) == [
            ("+34911000111", NUMBER, "NO ANSWER"), ("2001", NUMBER, "NO ANSWER")], rows
        await wait_until(lambda: not channel.calls.calls and engine.media.statistics()["endpoints"] == 0, timeout=10)


async def test_a_busy_far_end_gives_the_phone_busy(sip_engine, tmp_path):
    """The far end answers 486: the phone is refused (486) and its call record says BUSY, as does the trunk
    leg's; no call or RTP endpoint is left."""
    trunk_port = free_udp_port()
    results: dict = {}
    async with sip_engine(sip=PHONE + trunk(trunk_port)) as (engine, channel):
        events: list = []
        engine.bus.add_listener(events.append)
        async with trio.open_nursery() as nursery:

            async def party() -> None:
                results["sipp"] = await run_sipp(["-sf", str(SCENARIOS / "agent_busy.xml"), "-i", "127.0.0.1",
                                                  "-p", str(trunk_port), "-m", "1"])

            nursery.start_soon(party)
            async with baresip_agent(channel, tmp_path, user="2001") as phone:
                await dial(phone, channel, NUMBER)
                await wait_until(lambda: len([e for e in events if e.event == "Hangup"]) == 2, timeout=30)
        assert results["sipp"].returncode == 0, describe(results["sipp"])
        rows = [await cdr_row(engine, e.interaction) for e in events if e.event == "Hangup"]
        assert sorted((r["src"], r["dst"], r["disposition"]) for r in rows) == [
            ("+34911000111", NUMBER, "BUSY"), ("2001", NUMBER, "BUSY")], rows
        await wait_until(lambda: not channel.calls.calls and engine.media.statistics()["endpoints"] == 0, timeout=10)
