"""Conversations, dedup and the outbox on the real SQLite store."""

from __future__ import annotations

from pathlib import Path

import trio

from engine.messaging import MIGRATIONS, DeliveryError, MessageStore, OutboundMessage, Outbox, RetryPolicy
from engine.store import open_store


async def test_inbound_is_recorded_once_and_threads_by_alias(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite", MIGRATIONS) as store:
        messages = MessageStore(store, "email")
        first = await messages.record_inbound(customer="c@x", address="s@y", body="hi", external_id="<1@x>",
                                              subject="Hi", aliases=["<1@x>"])
        assert first.new_conversation and not first.duplicate
        again = await messages.record_inbound(customer="c@x", address="s@y", body="hi", external_id="<1@x>")
        assert again.duplicate and again.conversation == first.conversation and again.message == first.message
        assert await messages.find_by_alias(["<unknown@x>", "<1@x>"]) == first.conversation
        follow = await messages.record_inbound(customer="c@x", address="s@y", body="more", external_id="<2@x>",
                                               conversation=first.conversation)
        assert not follow.new_conversation
        assert [m["body"] for m in await messages.history(first.conversation)] == ["hi", "more"]
        # Another channel's identical external id is a different message.
        sms = await MessageStore(store, "sms").record_inbound(customer="+34600", address="+34900", body="x", external_id="<1@x>")
        assert not sms.duplicate


async def test_outbound_survives_a_reopen_of_the_store(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    async with open_store(path, MIGRATIONS) as store:
        messages = MessageStore(store, "sms")
        conv = (await messages.record_inbound(customer="+34600", address="+34900", body="x", external_id="m1")).conversation
        queued = await messages.queue_outbound(conv, "reply")
    async with open_store(path, MIGRATIONS) as store:
        messages = MessageStore(store, "sms")
        (due,) = await messages.due(now=1e12)
        assert (due.id, due.body, due.customer) == (queued, "reply", "+34600")


async def test_outbox_retries_transient_failures_in_order_and_gives_up_on_permanent(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite", MIGRATIONS) as store:
        messages = MessageStore(store, "chat")
        conv_a = (await messages.record_inbound(customer="a", address="web", body="x", external_id="a1")).conversation
        conv_b = (await messages.record_inbound(customer="b", address="web", body="x", external_id="b1")).conversation
        a1 = await messages.queue_outbound(conv_a, "a-first")
        a2 = await messages.queue_outbound(conv_a, "a-second")
        b1 = await messages.queue_outbound(conv_b, "b-bad")
        link_up = False
        delivered: list[str] = []

        async def deliver(message: OutboundMessage) -> str:
            if message.body == "b-bad":
                raise DeliveryError("number does not exist", permanent=True)
            if not link_up:
                raise DeliveryError("link down")
            delivered.append(message.body)
            return f"ext-{message.id}"

        outbox = Outbox(messages, deliver, policy=RetryPolicy(first=0.05, cap=0.1, jitter=0))
        async with trio.open_nursery() as nursery:
            await nursery.start(outbox.run)
            with trio.fail_after(10):
                while outbox.retried < 3:
                    await trio.sleep(0.01)
            assert delivered == []  # the second message of conversation a waits behind the first
            link_up = True
            outbox.wake_nowait()
            with trio.fail_after(10):
                while await messages.pending_count():
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert delivered == ["a-first", "a-second"]
        statuses = {m: (await messages.message(m))["status"] for m in (a1, a2, b1)}
        assert statuses == {a1: "sent", a2: "sent", b1: "failed"}
        assert (await messages.message(a1))["external_id"] == f"ext-{a1}"
        assert await messages.set_status_by_external(f"ext-{a1}", "delivered")
        assert (await messages.message(a1))["status"] == "delivered"


async def test_opt_out_and_marks(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite", MIGRATIONS) as store:
        messages = MessageStore(store, "sms")
        assert not await messages.opted_out("+34600")
        await messages.opt_out("+34600", "STOP")
        await messages.opt_out("+34600", "STOP")
        assert await messages.opted_out("+34600")
        assert await messages.mark("uid") is None
        await messages.set_mark("uid", "7")
        await messages.set_mark("uid", "8")
        assert await messages.mark("uid") == "8"


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(first=5, factor=2, cap=60, jitter=0)
    assert [policy.delay(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


async def test_first_and_next_response_times_are_recorded(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite", MIGRATIONS) as store:
        messages = MessageStore(store, "sms")
        conv = (await messages.record_inbound(customer="+34600", address="900", body="hola", external_id="m1")).conversation
        await messages.queue_outbound(conv, "automatic ack", meta={"auto": True})  # not a human answer
        first = await messages.queue_outbound(conv, "agent answer")
        no_question = await messages.queue_outbound(conv, "and one more thing")
        await messages.record_inbound(customer="+34600", address="900", body="gracias", external_id="m2", conversation=conv)
        second = await messages.queue_outbound(conv, "de nada")
        meta = {m: (await messages.message(m))["meta"] for m in (first, no_question, second)}
        assert meta[first]["first_response"] is True and meta[first]["response_seconds"] >= 0
        assert "response_seconds" not in meta[no_question]  # nothing was waiting for an answer
        assert meta[second]["first_response"] is False
        assert [r["first"] for r in await messages.response_times()] == [True, False]
