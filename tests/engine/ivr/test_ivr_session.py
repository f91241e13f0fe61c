"""A caller walks through the main flow: menus, digits, CRM, schedules, and every way to hang up."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.ivr import (
    CrmResult, EnterQueue, FlowEnded, FlowSession, Hangup, LookupCrm, Play, RequestCallback, StopPlayback,
    Voicemail, load_flows,
)

MADRID = dt.timezone(dt.timedelta(hours=1))  # November: CET
OPEN = dt.datetime(2026, 11, 24, 10, 0, tzinfo=MADRID).timestamp()      # a Tuesday morning
NIGHT = dt.datetime(2026, 11, 24, 21, 0, tzinfo=MADRID).timestamp()
CHRISTMAS = dt.datetime(2026, 12, 25, 10, 0, tzinfo=MADRID).timestamp()  # a Friday, but a holiday


@pytest.fixture
def session(main_flow_raw):
    flows = load_flows(main_flow_raw, queues={"sales"})
    return lambda caller="+34600111222": FlowSession(flows["main"], caller=caller, session_id="s1")


def of(commands, kind):
    return [c for c in commands if isinstance(c, kind)]


def through_welcome(s, now=OPEN):
    assert of(s.start(now), Play)[0].prompt == "welcome"
    return s.playback_done(now + 2)


def test_menu_choice_goes_to_the_queue(session):
    s = session()
    assert of(through_welcome(s), Play)[0].prompt == "main-menu"
    commands = s.digit("1", OPEN + 3)
    assert of(commands, StopPlayback)  # barge-in
    assert of(commands, EnterQueue)[0].queue == "sales"
    assert of(commands, FlowEnded)[-1].outcome == "queue"
    assert s.digit("2", OPEN + 4) == []  # after the end nothing happens


def test_digits_typed_during_the_welcome_are_kept_for_the_menu(session):
    s = session()
    s.start(OPEN)
    assert s.digit("1", OPEN + 1) == []    # the welcome prompt is not interruptible
    commands = s.playback_done(OPEN + 2)
    assert not of(commands, Play)          # no need to play the menu: the choice is known
    assert of(commands, EnterQueue)[0].queue == "sales"


def test_invalid_digits_and_silence_retry_then_fail(session):
    s = session()
    through_welcome(s)
    s.playback_done(OPEN + 4)
    commands = s.digit("7", OPEN + 5)
    assert [p.prompt for p in of(commands, Play)] == ["invalid-option", "main-menu"]
    s.playback_done(OPEN + 6)
    s.playback_done(OPEN + 7)
    assert s.next_timer() == OPEN + 12
    commands = s.handle_timer(OPEN + 12)  # no input
    assert [p.prompt for p in of(commands, Play)] == ["no-input", "main-menu"]
    s.playback_done(OPEN + 13)
    s.playback_done(OPEN + 14)
    commands = s.handle_timer(OPEN + 19)  # third strike: retries = 2
    assert of(commands, Play)[0].prompt == "goodbye"
    commands = s.playback_done(OPEN + 20)
    assert of(commands, Hangup) and of(commands, FlowEnded)[0].outcome == "hangup"


def test_a_prompt_that_never_ends_does_not_block_the_menu(session):
    s = session()
    through_welcome(s)
    when = s.next_timer()
    assert when is not None and when > OPEN
    s.handle_timer(when)              # the media layer never said the prompt ended
    assert s.next_timer() == when + 5  # the menu listens anyway


def test_collect_lookup_branch_to_vip(session):
    s = session()
    through_welcome(s)
    s.digit("2", OPEN + 3)
    for digit in "1234":
        s.digit(digit, OPEN + 4)
    commands = s.digit("#", OPEN + 5)
    lookup = of(commands, LookupCrm)[0]
    assert (lookup.key, lookup.value) == ("account", "1234")
    commands = s.crm_result(CrmResult(lookup.request_id, {"segment": "vip", "name": "Ana"}), OPEN + 6)
    queued = of(commands, EnterQueue)[0]
    assert queued.priority == 10
    assert queued.attributes["customer.name"] == "Ana"
    assert queued.attributes["account"] == "1234"


def test_collect_stops_at_max_and_branches_numerically(session):
    s = session()
    through_welcome(s)
    s.digit("2", OPEN + 3)
    commands = []
    for digit in "9000001":  # max is 6: the seventh digit is not part of the account
        commands += s.digit(digit, OPEN + 4)
    lookup = of(commands, LookupCrm)[0]
    assert lookup.value == "900000"
    commands = s.crm_result(CrmResult(lookup.request_id, {"segment": "basic"}), OPEN + 5)
    assert of(commands, EnterQueue)[0].priority == 10  # account >= 900000


def test_short_account_retries_then_gives_up(session):
    s = session()
    through_welcome(s)
    s.digit("2", OPEN + 3)
    s.digit("1", OPEN + 4)
    commands = s.digit("#", OPEN + 5)  # too short (min 4)
    assert [p.prompt for p in of(commands, Play)] == ["enter-account"]
    s.playback_done(OPEN + 6)
    commands = s.handle_timer(OPEN + 10)  # nothing typed: retries exhausted
    assert of(commands, Play)[0].prompt == "goodbye"


def test_crm_not_found_timeout_and_stale_answers(session):
    s = session()
    through_welcome(s)
    s.digit("2", OPEN + 3)
    commands = []
    for digit in "5555#":
        commands += s.digit(digit, OPEN + 4)
    lookup = of(commands, LookupCrm)[0]
    assert s.crm_result(CrmResult("someone-else", {"segment": "vip"}), OPEN + 5) == []
    commands = s.handle_timer(OPEN + 7)  # the CRM is too slow
    assert of(commands, EnterQueue)[0].priority == 0
    assert s.crm_result(CrmResult(lookup.request_id, {"segment": "vip"}), OPEN + 8) == []


def test_callback_request_uses_the_caller_number(session):
    s = session("+34911222333")
    through_welcome(s)
    s.digit("9", OPEN + 3)
    commands = s.playback_done(OPEN + 5)
    request = of(commands, RequestCallback)[0]
    assert (request.queue, request.number, request.request_id) == ("sales", "+34911222333", "s1:callback")
    assert of(commands, FlowEnded)[0].outcome == "callback"


@pytest.mark.parametrize(("now", "outcome", "command"), [(NIGHT, "voicemail", Voicemail),
                                                         (CHRISTMAS, None, Play)])
def test_schedule_closed_and_holiday(session, now, outcome, command):
    s = session()
    commands = s.start(now)
    assert of(commands, command)
    if outcome:
        assert of(commands, FlowEnded)[0].outcome == outcome
    else:
        assert of(commands, Play)[0].text == "We are closed for the holiday."


def run_script(s, script):
    """Feed a list of ("digit", d) / ("done",) / ("timer",) / ("crm", found) / ("hangup",) steps."""
    now = OPEN
    ended = []
    commands = s.start(now)
    for step in script:
        now += 1
        ended += of(commands, FlowEnded)
        if step[0] == "digit":
            commands = s.digit(step[1], now)
        elif step[0] == "done":
            commands = s.playback_done(now)
        elif step[0] == "timer":
            when = s.next_timer()
            commands = s.handle_timer(max(now, when)) if when is not None else []
            now = max(now, when or now)
        elif step[0] == "crm":
            request = s.state.get("request") or "none"
            commands = s.crm_result(CrmResult(request, {"segment": "vip"} if step[1] else None), now)
        else:
            commands = s.hangup(now)
    ended += of(commands, FlowEnded)
    return ended


steps = st.one_of(
    st.tuples(st.just("digit"), st.sampled_from(list("0123456789*#") + ["x", "", "12"])),
    st.tuples(st.just("done")), st.tuples(st.just("timer")), st.tuples(st.just("crm"), st.booleans()),
    st.tuples(st.just("hangup")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, max_size=40))
def test_any_caller_behaviour_ends_at_most_once_and_never_crashes(main_flow_raw, script):
    flows = load_flows(main_flow_raw, queues={"sales"})
    s = FlowSession(flows["main"], caller="+1", session_id="h")
    ended = run_script(s, script)
    assert len(ended) <= 1
    if ended:
        assert s.finished and ended[0].outcome == s.outcome
    # a caller who goes silent always reaches an end through the timers
    if not s.finished:
        for _ in range(50):
            when = s.next_timer()
            if when is None:
                s.playback_done(OPEN + 10_000)
            else:
                s.handle_timer(when)
            if s.finished:
                break
    s.hangup(OPEN + 20_000)
    assert s.finished
