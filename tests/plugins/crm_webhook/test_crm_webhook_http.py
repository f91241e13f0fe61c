"""The webhook CRM against a real HTTP server: lookups within the budget, signed pushes never lost."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import pytest
import trio

import plugins.crm_webhook.plugin as webhook_plugin
from engine import Contact, Direction, Interaction, InteractionKind, InteractionState, hookimpl
from engine.testing import FakeVoiceChannel, check_plugin_module, open_test_engine, wait_until
from plugins.crm_webhook import SignatureError, WebhookCrm, sign, verify


class Channels:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)


def config(server: Any, **overrides: Any) -> str:
    settings = {"lookup_url": f"{server.url}/lookup", "push_url": f"{server.url}/push", "secret": server.secret,
                "timeout": 5.0, "backoff": 0.02, "backoff_max": 0.1, "cache_ttl": 60, **overrides}
    lines = [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in settings.items()]
    section = "[crm_webhook]\n" + "\n".join(lines).replace("'", '"')
    return section + """

[[queues]]
name = "support"

[[routes]]
match = "100"
queue = "support"
"""


async def end_a_call(engine: Any, caller: str) -> str:
    voice = engine.channels["fake"]
    call = voice.call(caller, "100")
    await wait_until(lambda: call.state is InteractionState.QUEUED)
    await voice.caller_hangs_up(call)
    return call.id


def crm_of(engine: Any) -> WebhookCrm:
    crm = engine.crm["webhook"]
    assert isinstance(crm, WebhookCrm)
    return crm


def test_plugin_hooks_are_valid() -> None:
    assert check_plugin_module(webhook_plugin) == []


async def test_lookup_maps_the_answer_and_is_signed(crm_server: Any, tmp_path: Path) -> None:
    crm_server.contacts["+34911000001"] = {"contact": {"id": 7, "name": "Ana", "phones": ["+34911000001"],
                                                       "tags": ["vip"], "fields": {"plan": "gold"}}}
    crm_server.contacts["ana@example.com"] = {"id": "7", "name": "Ana"}
    async with open_test_engine(config(crm_server), plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        crm = crm_of(engine)
        contact = await crm.lookup(phone=" +34911000001 ")
        assert contact == Contact(id="7", name="Ana", phones=("+34911000001",), segments=("vip",), fields={"plan": "gold"})
        assert (await crm.lookup(email="Ana@Example.com")) == Contact(id="7", name="Ana")
        assert await crm.lookup(phone="+34600000000") is None  # 404: unknown customer
        assert await crm.lookup(phone="+34911000001") == contact  # cached: the CRM is not asked again
        lookups = [r for r in crm_server.requests if r.method == "GET"]
        assert [r.query for r in lookups] == [{"phone": "+34911000001"}, {"email": "ana@example.com"},
                                              {"phone": "+34600000000"}]
        first = lookups[0]
        verify(crm_server.secret, first.headers, first.target.split("?", 1)[1].encode(), now=time.time())
        stats = crm.statistics()
        assert stats["lookups"] == 4 and stats["cache_hits"] == 1 and stats["lookup_errors"] == 0


async def test_a_slow_crm_is_cut_off_and_the_cache_answers(crm_server: Any, tmp_path: Path) -> None:
    crm_server.contacts["+34911000001"] = {"id": "7", "name": "Ana"}
    text = config(crm_server, timeout=0.3, cache_ttl=0, cache_stale_ttl=3600)
    async with open_test_engine(text, plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        crm = crm_of(engine)
        await crm.lookup(phone="+34911000001")  # answered in time, or late in the background on a busy box
        await wait_until(lambda: crm.statistics()["cache_entries"] == 1)
        crm_server.lookup_delay = 3600  # the CRM now hangs; only the budget can end the lookup
        timeouts_before = crm.statistics()["lookup_timeouts"]
        with trio.fail_after(20):
            assert await crm.lookup(phone="+34911000001") == Contact(id="7", name="Ana")  # the cached answer
            assert await crm.lookup(phone="+34600000000") is None  # never seen: nothing to fall back on
        stats = crm.statistics()
        assert stats["lookup_timeouts"] - timeouts_before == 2 and stats["stale_served"] == 1


async def test_a_late_answer_fills_the_cache_for_the_next_caller(crm_server: Any, tmp_path: Path) -> None:
    crm_server.contacts["+34911000001"] = {"id": "7", "name": "Ana"}
    crm_server.lookup_delay = 1.0  # longer than the budget, so the first caller cannot have the answer
    text = config(crm_server, timeout=0.2)
    async with open_test_engine(text, plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        crm = crm_of(engine)
        assert await crm.lookup(phone="+34911000001") is None
        await wait_until(lambda: crm.statistics()["background_refreshes"] == 1)
        assert await crm.lookup(phone="+34911000001") == Contact(id="7", name="Ana")
        assert crm.statistics()["cache_hits"] == 1


@pytest.mark.parametrize(("answer", "counter"), [
    (b"{" + b'"a": "' + b"x" * (4 * 1024 * 1024) + b'"}', "refused_answers"),
    (b"this is not json", "refused_answers"),
    (b'{"id": {"$ne": 1}, "name": "x"}', "refused_answers"),
    (b'{"id": "1", "phones": "' + b"9" * 300 + b'"}', "refused_answers"),
])
async def test_hostile_answers_are_refused_cleanly(crm_server: Any, tmp_path: Path, answer: bytes, counter: str) -> None:
    crm_server.lookup_raw = answer
    async with open_test_engine(config(crm_server), plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        crm = crm_of(engine)
        assert await crm.lookup(phone="+34911000001") is None
        assert crm.statistics()[counter] == 1
        crm_server.lookup_raw = b'{"id": "1", "name": "Recovered"}'  # nothing of the refused answer was cached
        assert await crm.lookup(phone="+34911000001") == Contact(id="1", name="Recovered")


async def test_a_compressed_bomb_is_refused_while_reading(crm_server: Any, tmp_path: Path) -> None:
    crm_server.lookup_raw = gzip.compress(b'{"id": "1", "name": "' + b"A" * (20 * 1024 * 1024) + b'"}')
    crm_server.lookup_headers = "Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
    assert len(crm_server.lookup_raw) < 64 * 1024  # small on the wire, 20 MiB once inflated
    async with open_test_engine(config(crm_server), plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        crm = crm_of(engine)
        assert await crm.lookup(phone="+34911000001") is None
        assert crm.statistics()["refused_answers"] == 1


async def test_without_the_section_nothing_is_built(tmp_path: Path) -> None:
    async with open_test_engine("", plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        assert "webhook" not in engine.crm


async def test_a_push_url_that_is_not_http_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="http"):
        async with open_test_engine('[crm_webhook]\npush_url = "file:///etc/passwd"\nsecret = "x"\n',
                                    plugins=[webhook_plugin], data_dir=tmp_path):
            pass


async def test_a_failing_or_absent_crm_is_counted_not_raised(crm_server: Any, tmp_path: Path) -> None:
    async with open_test_engine(config(crm_server, lookup_url=f"{crm_server.url}/broken"),
                                plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        crm = crm_of(engine)
        assert await crm.lookup(email="x@example.com") is None  # HTTP 500
        assert crm.statistics()["lookup_errors"] == 1
    crm_server.stop()
    async with open_test_engine(config(crm_server), plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        crm = crm_of(engine)
        assert await crm.lookup(phone="+34911000001") is None  # connection refused
        assert crm.statistics()["lookup_errors"] == 1


async def test_records_are_pushed_signed_once(crm_server: Any, tmp_path: Path) -> None:
    key_file = tmp_path / "crm.key"
    key_file.write_text(crm_server.secret + "\n")
    text = config(crm_server, secret_file=key_file.as_posix()).replace(f'secret = "{crm_server.secret}"\n', "")
    assert crm_server.secret not in text  # the key is read from the file
    async with open_test_engine(text, plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        call_id = await end_a_call(engine, "+34911000001")
        await wait_until(lambda: len(crm_server.accepted()) == 1)
        [push] = crm_server.pushes
        assert crm_server.bad_signatures == 0
        body = crm_server.accepted()[0]
        assert body["event"] == "interaction.ended" and body["interaction"]["id"] == call_id
        assert body["interaction"]["from"] == "+34911000001" and body["id"] == push.headers["x-centralita-delivery"]
        # the signature covers the exact body and the timestamp
        with pytest.raises(SignatureError):
            verify(crm_server.secret, push.headers, push.body.replace(b"+349", b"+348"), now=time.time())
        with pytest.raises(SignatureError):
            verify("a guessed secret", push.headers, push.body, now=time.time())
        await wait_until(lambda: crm_of(engine).statistics()["outbox_pending"] == 0)
        assert crm_of(engine).statistics()["delivered"] == 1
        crm = crm_of(engine)
    assert crm.stopped  # a stopped engine's CRM takes no more records from other engines in this process


async def test_an_outage_delays_records_but_loses_none_across_restarts(crm_server: Any, tmp_path: Path) -> None:
    crm_server.push_status = 500
    async with open_test_engine(config(crm_server), plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        first = await end_a_call(engine, "+34911000001")
        second = await end_a_call(engine, "+34911000002")
        await wait_until(lambda: crm_of(engine).statistics()["records_queued"] == 2
                         and crm_of(engine).statistics()["delivery_failures"] >= 2)
        assert crm_server.accepted() == []
    crm_server.stop()  # now the CRM is down altogether while the engine starts again
    async with open_test_engine(config(crm_server), plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        crm = crm_of(engine)
        assert crm.statistics()["outbox_pending"] == 2
        await wait_until(lambda: crm.statistics()["delivery_failures"] >= 2)
        crm_server.push_status = 200
        await crm_server.start_again()
        await wait_until(lambda: crm.statistics()["outbox_pending"] == 0)
        assert [b["interaction"]["id"] for b in crm_server.accepted()] == [first, second]
    async with open_test_engine(config(crm_server), plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        crm = crm_of(engine)
        later = Interaction(InteractionKind.CHAT, Direction.INBOUND, from_="web:1", to="support", channel="chat")
        await crm.record_interaction(later, "resolved")
        await wait_until(lambda: len(crm_server.accepted()) == 3)
        # delivered in order, so had anything old been sent again it would have come before this one
        accepted = crm_server.accepted()
        assert [b["interaction"]["id"] for b in accepted] == [first, second, later.id]
        assert accepted[2]["event"] == "interaction.disposition" and accepted[2]["disposition"] == "resolved"
        assert len({b["id"] for b in accepted}) == 3


async def test_a_crm_that_never_answers_a_push_only_delays_it(crm_server: Any, tmp_path: Path) -> None:
    crm_server.push_delay = 3600
    async with open_test_engine(config(crm_server, push_timeout=0.3), plugins=[webhook_plugin, Channels()],
                                data_dir=tmp_path) as engine:
        crm = crm_of(engine)
        call_id = await end_a_call(engine, "+34911000001")
        await wait_until(lambda: crm.statistics()["delivery_failures"] >= 2)
        crm_server.push_delay = 0
        await wait_until(lambda: len(crm_server.accepted()) >= 1)
        await wait_until(lambda: crm.statistics()["outbox_pending"] == 0)
        # the CRM saw every attempt (each hanging one was abandoned by us); the record arrived and
        # every arrival carried the same delivery id, so the CRM can keep just one
        assert {b["interaction"]["id"] for b in crm_server.accepted()} == {call_id}
        assert len({r.headers["x-centralita-delivery"] for r in crm_server.pushes}) == 1


async def test_a_wall_clock_set_back_does_not_stall_the_outbox(crm_server: Any, tmp_path: Path) -> None:
    crm_server.push_status = 500
    async with open_test_engine(config(crm_server), plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        crm = crm_of(engine)
        call_id = await end_a_call(engine, "+34911000001")
        await wait_until(lambda: crm.statistics()["delivery_failures"] >= 1)
        # as if the record had been scheduled before the appliance's clock was corrected backwards by years
        await crm.store.write("UPDATE crm_webhook_outbox SET next_attempt = next_attempt + 1e9")
        crm_server.push_status = 200
        await wait_until(lambda: len(crm_server.accepted()) == 1)
        assert crm_server.accepted()[0]["interaction"]["id"] == call_id


async def test_refused_records_become_dead_letters_and_can_be_sent_again(crm_server: Any, tmp_path: Path) -> None:
    crm_server.push_status = 400
    async with open_test_engine(config(crm_server, max_attempts=3), plugins=[webhook_plugin, Channels()],
                                data_dir=tmp_path) as engine:
        crm = crm_of(engine)
        call_id = await end_a_call(engine, "+34911000001")
        await wait_until(lambda: crm.statistics()["outbox_dead"] == 1)
        assert len(crm_server.pushes) == 1  # a 400 is final: not retried
        [dead] = await crm.dead_letters()
        assert dead["last_error"] == "HTTP 400" and call_id in dead["body"]
        crm_server.push_status = 503
        assert await crm.redeliver_dead() == 1
        await wait_until(lambda: crm.statistics()["outbox_dead"] == 1 and len(crm_server.pushes) == 4)
        assert crm.statistics()["dead_lettered"] == 2  # three 503s used up max_attempts = 3
        crm_server.push_status = 200
        await crm.redeliver_dead()
        await wait_until(lambda: len(crm_server.accepted()) == 1)
        assert crm_server.accepted()[0]["interaction"]["id"] == call_id


def test_pushing_unsigned_is_refused_at_configuration() -> None:
    from plugins.crm_webhook import WebhookCrmConfigError, WebhookCrmSettings

    with pytest.raises(WebhookCrmConfigError, match="secret"):
        WebhookCrm(None, WebhookCrmSettings(push_url="http://127.0.0.1:1/push"))
    with pytest.raises(WebhookCrmConfigError, match="cannot read secret_file"):
        WebhookCrm(None, WebhookCrmSettings(push_url="http://127.0.0.1:1/push", secret_file="/nonexistent/key"))
    assert sign("k", 1, b"") != sign("k", 2, b"")


def test_the_command_line_reports_and_requeues_dead_letters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from plugins.crm_webhook import _cli

    async def a_record_dies() -> None:
        # nothing listens on this port: the single allowed attempt fails, the record becomes a dead letter
        with trio.socket.socket() as probe:
            await probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        text = (f'[crm_webhook]\npush_url = "http://127.0.0.1:{closed_port}/push"\nsecret = "k"\nmax_attempts = 1\n')
        async with open_test_engine(text, plugins=[webhook_plugin], data_dir=tmp_path) as engine:
            crm = crm_of(engine)
            later = Interaction(InteractionKind.SMS, Direction.INBOUND, from_="+34600000001", to="1", channel="sms")
            await crm.record_interaction(later)
            await wait_until(lambda: crm.statistics()["outbox_dead"] == 1)

    trio.run(a_record_dies)
    parser = argparse.ArgumentParser()
    _cli.configure(parser)
    assert _cli.run(parser.parse_args(["--data-dir", str(tmp_path)])) == 0
    out = capsys.readouterr().out
    assert "pending: 0  dead: 1" in out and "ConnectError" in out
    assert _cli.run(parser.parse_args(["--data-dir", str(tmp_path), "--redeliver-dead", "--json"])) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["requeued"] == 1 and report["pending"] == 1 and report["dead"] == 0
    assert _cli.run(parser.parse_args([])) == 2  # neither --config nor --data-dir: said so, not a traceback


IVR_FLOW = """
[[queues]]
name = "gold"

[[routes]]
match = "200"
flow = "main"

[[flows]]
name = "main"
start = "lookup"

[flows.nodes.lookup]
type = "crm"
key = "caller"
var = "customer"
found = "is-gold"
not_found = "support"

[flows.nodes.is-gold]
type = "branch"
condition = "customer.tier == 'gold'"
then = "gold"
else = "support"

[flows.nodes.gold]
type = "queue"
queue = "gold"

[flows.nodes.support]
type = "queue"
queue = "support"
"""


async def test_an_ivr_flow_routes_on_the_crms_answer_and_never_waits_past_the_budget(
        crm_server: Any, tmp_path: Path) -> None:
    crm_server.contacts["+34911000001"] = {"id": "7", "name": "Ana", "fields": {"tier": "gold"}}
    crm_server.contacts["+34911000002"] = {"id": "8", "name": "Ben", "fields": {"tier": "bronze"}}
    text = config(crm_server, timeout=0.5) + IVR_FLOW
    async with open_test_engine(text, plugins=[webhook_plugin, Channels()], data_dir=tmp_path) as engine:
        voice = engine.channels["fake"]
        # warm the cache, so the routing below does not depend on how fast this busy box answers
        for number in ("+34911000001", "+34911000002"):
            await crm_of(engine).lookup(phone=number)
        await wait_until(lambda: crm_of(engine).statistics()["cache_entries"] == 2)
        gold, bronze = voice.call("+34911000001", "200"), voice.call("+34911000002", "200")
        await wait_until(lambda: gold.queue == "gold" and bronze.queue == "support")
        crm_server.lookup_delay = 3600  # the CRM hangs: an unknown caller still reaches a queue
        stranger = voice.call("+34600000009", "200")
        await wait_until(lambda: stranger.queue == "support")
        assert crm_of(engine).statistics()["lookup_timeouts"] >= 1
