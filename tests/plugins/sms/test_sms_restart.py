"""An SMS conversation open across an engine restart (SMPP, against the SMSC simulator).

The engine stops with one customer's message unanswered and another customer's reply still in the outbox
(the SMSC is gone, so it could not be sent). Started again on the same data directory, both conversations
wait in their queue again, the queued reply goes out exactly once, and no received message is repeated.
"""

from __future__ import annotations

from pathlib import Path

import trio

from engine.testing import open_test_engine
from plugins.sms import plugin as sms_plugin
from plugins.sms._pdu import Status
from plugins.sms.simulator import SmscSimulator

CONFIG = """
[[agents]]
id = "alice"
endpoint = "sip:1001"
channels = {{ sms = 3 }}

[[queues]]
name = "sms-support"
members = ["alice"]

[[routes]]
match = "900100"
queue = "sms-support"

[sms]
address = "900100"
smpp = "smpp://centralita:secret@127.0.0.1:{port}"
enquire_interval = 0.5
response_timeout = 2.0
reconnect_backoff = 0.05
reconnect_backoff_max = 0.2
retry_first = 0.1
retry_max = 0.3
opt_out_reply = "You will receive no more messages."
"""


async def _until(predicate, timeout: float = 20.0) -> None:
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(0.02)


async def test_open_conversations_and_a_queued_reply_survive_a_restart(nursery, tmp_path: Path) -> None:
    first_smsc = SmscSimulator()
    smsc_scope = trio.CancelScope()

    async def run_first_smsc(task_status=trio.TASK_STATUS_IGNORED) -> None:
        with smsc_scope:
            await first_smsc.run(task_status=task_status)

    await nursery.start(run_first_smsc)
    async with open_test_engine(CONFIG.format(port=first_smsc.port), plugins=[sms_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["sms"]
        with trio.fail_after(20):
            await first_smsc.wait_for(lambda: first_smsc.bound_count == 1)
        assert await first_smsc.deliver("+34600000001", "900100", "Mi factura está mal") == [Status.ROK]
        assert await first_smsc.deliver("+34600000002", "900100", "¿Abren el sábado?") == [Status.ROK]
        by_customer = {i.from_: i for i in engine.interactions.values()}
        assert set(by_customer) == {"+34600000001", "+34600000002"}

        smsc_scope.cancel()  # the SMSC goes away: the link drops

        async def link_down() -> bool:
            return not channel.link.is_bound

        await _until(link_down)
        await engine.interaction_action(by_customer["+34600000002"].id, "reply", {"text": "Sí, de 10 a 14"})
        row = await engine.store.fetchone("SELECT status FROM msg_messages WHERE direction='outbound'")
        assert row == {"status": "queued"}
    assert first_smsc.submitted == []  # nothing reached the first SMSC

    second_smsc = SmscSimulator()
    await nursery.start(second_smsc.run)
    async with open_test_engine(CONFIG.format(port=second_smsc.port), plugins=[sms_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["sms"]

        async def delivered() -> bool:
            row = await engine.store.fetchone("SELECT status FROM msg_messages WHERE direction='outbound'")
            return row is not None and row["status"] in ("sent", "delivered")

        await _until(delivered)
        assert [(s.destination, s.text) for s in second_smsc.submitted] == [("+34600000002", "Sí, de 10 a 14")]

        # Both conversations wait in their queue again, one interaction each, marked as restored.
        async def offered_again() -> bool:
            return len([i for i in engine.interactions.values() if i.kind.value == "sms"]) == 2

        await _until(offered_again)
        restored = {i.from_: i for i in engine.interactions.values()}
        assert set(restored) == {"+34600000001", "+34600000002"}
        assert all(i.queue == "sms-support" and i.attributes.get("restored") for i in restored.values())

        # A new message of a customer joins their conversation; no received message is stored twice.
        assert await second_smsc.deliver("+34600000001", "900100", "Sigo esperando") == [Status.ROK]
        assert len(engine.interactions) == 2
        rows = await engine.store.fetchall(
            "SELECT c.customer, m.direction, m.body FROM msg_messages m JOIN msg_conversations c ON c.id = m.conversation "
            "ORDER BY m.seq")
        assert [(r["customer"], r["direction"], r["body"]) for r in rows] == [
            ("+34600000001", "inbound", "Mi factura está mal"),
            ("+34600000002", "inbound", "¿Abren el sábado?"),
            ("+34600000002", "outbound", "Sí, de 10 a 14"),
            ("+34600000001", "inbound", "Sigo esperando"),
        ]
        conversations = await engine.store.fetchall("SELECT customer FROM msg_conversations ORDER BY customer")
        assert [r["customer"] for r in conversations] == ["+34600000001", "+34600000002"]

        # The outbox is empty and nothing was sent again: one submission in all.
        assert await channel.messages.pending_count() == 0
        await engine.interaction_action(restored["+34600000001"].id, "reply", {"text": "Lo revisamos hoy"})
        with trio.fail_after(20):
            await second_smsc.wait_for(lambda: len(second_smsc.submitted) == 2)
        assert [s.text for s in second_smsc.submitted] == ["Sí, de 10 a 14", "Lo revisamos hoy"]
