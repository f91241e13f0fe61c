"""The ``read`` status on the real SQLite store: what is marked, what is never marked, and that nothing
later overwrites it."""

from __future__ import annotations

from pathlib import Path

from engine.messaging import MIGRATIONS, MessageStore
from engine.store import open_store


async def _statuses(messages: MessageStore, conversation: str) -> list[tuple[str, str, str]]:
    return [(m["direction"], m["body"], m["status"]) for m in await messages.history(conversation)]


async def test_read_marks_up_to_a_message_of_its_own_conversation_and_is_never_downgraded(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite", MIGRATIONS) as store:
        messages = MessageStore(store, "chat")
        conv = (await messages.record_inbound(customer="a", address="web", body="q1", external_id="a1")).conversation
        other = (await messages.record_inbound(customer="b", address="web", body="x", external_id="b1")).conversation
        r1 = await messages.queue_outbound(conv, "r1")
        r2 = await messages.queue_outbound(conv, "r2")
        r3 = await messages.queue_outbound(conv, "r3")
        await messages.delivered(r1, "e1")
        await messages.delivered(r2, "e2")
        await messages.failed(r3, "gone")
        foreign = await messages.queue_outbound(other, "for b")

        # Another conversation's message, an inbound id, an unknown id: nothing changes.
        assert await messages.mark_read(conv, "outbound", up_to=foreign) == 0
        (inbound,) = [m["id"] for m in await messages.history(conv) if m["direction"] == "inbound"]
        assert await messages.mark_read(conv, "outbound", up_to=inbound) == 0
        assert await messages.mark_read(conv, "outbound", up_to="nonexistent") == 0
        assert await _statuses(messages, conv) == [
            ("inbound", "q1", "received"), ("outbound", "r1", "sent"), ("outbound", "r2", "sent"), ("outbound", "r3", "failed")]

        assert await messages.mark_read(conv, "outbound", up_to=r1) == 1
        assert await messages.mark_read(conv, "outbound", up_to=r1) == 0  # a repeat changes nothing
        assert await messages.mark_read(conv, "outbound") == 1  # r2; the failed one stays failed
        assert await _statuses(messages, conv) == [
            ("inbound", "q1", "received"), ("outbound", "r1", "read"), ("outbound", "r2", "read"), ("outbound", "r3", "failed")]
        assert await messages.mark_read(conv, "inbound") == 1
        assert (await _statuses(messages, conv))[0] == ("inbound", "q1", "read")

        # Seen before the outbox recorded it as sent (the visitor is faster than the store): stays read.
        assert await messages.mark_read(other, "outbound", up_to=foreign) == 1
        await messages.delivered(foreign, "e4")
        assert await messages.set_status_by_external("e2", "delivered")
        assert [s for _, _, s in await _statuses(messages, other)] == ["received", "read"]
        assert [s for _, b, s in await _statuses(messages, conv) if b == "r2"] == ["read"]
        assert await messages.pending_count() == 0
