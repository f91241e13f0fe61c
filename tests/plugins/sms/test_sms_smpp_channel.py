"""The SMS channel through SMPP against the SMSC simulator, inside the real engine."""

from __future__ import annotations

from pathlib import Path

import trio

from engine import hookimpl
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


async def test_sms_in_becomes_interaction_and_reply_goes_out_with_receipt(nursery, tmp_path: Path) -> None:
    smsc = SmscSimulator()
    await nursery.start(smsc.run)
    async with open_test_engine(CONFIG.format(port=smsc.port), plugins=[sms_plugin], data_dir=tmp_path) as engine:
        with trio.fail_after(20):
            await smsc.wait_for(lambda: smsc.bound_count == 1)
        long_text = "Hola, el router no funciona. " * 8  # 232 GSM-7 characters: two parts joined back
        assert await smsc.deliver("+34600111222", "900100", long_text) == [Status.ROK, Status.ROK]
        (interaction,) = [i for i in engine.interactions.values() if i.kind.value == "sms"]
        assert (interaction.from_, interaction.to, interaction.queue) == ("+34600111222", "900100", "sms-support")
        rows = await engine.store.fetchall("SELECT body FROM msg_messages WHERE direction='inbound'")
        assert [r["body"] for r in rows] == [long_text]

        await engine.interaction_action(interaction.id, "reply", {"text": "¿Ha probado a reiniciarlo? Ελλάδα"})
        with trio.fail_after(20):
            await smsc.wait_for(lambda: len(smsc.submitted) == 1)
        (sent,) = smsc.submitted
        assert sent.text == "¿Ha probado a reiniciarlo? Ελλάδα"
        assert sent.data_coding == 0x08  # Greek lowercase is not in GSM 7-bit: UCS-2 chosen
        assert (sent.destination, sent.source) == ("+34600111222", "900100")

        async def delivered() -> bool:
            row = await engine.store.fetchone("SELECT status FROM msg_messages WHERE direction='outbound'")
            return row == {"status": "delivered"}

        await _until(delivered)
        # A follow-up joins the same conversation and interaction.
        assert await smsc.deliver("+34600111222", "900100", "Sí, ya lo hice") == [Status.ROK]
        assert len([i for i in engine.interactions.values() if i.kind.value == "sms"]) == 1
    # Stopping the engine unbinds politely instead of dropping the TCP connection.
    assert smsc.unbinds == 1


async def test_stop_opts_out_and_nothing_more_is_sent(nursery, tmp_path: Path) -> None:
    smsc = SmscSimulator()
    await nursery.start(smsc.run)
    async with open_test_engine(CONFIG.format(port=smsc.port), plugins=[sms_plugin], data_dir=tmp_path) as engine:
        with trio.fail_after(20):
            await smsc.wait_for(lambda: smsc.bound_count == 1)
        await smsc.deliver("+34600999888", "900100", "Quiero información")
        (interaction,) = engine.interactions.values()
        await smsc.deliver("+34600999888", "900100", " baja ")
        with trio.fail_after(20):
            await smsc.wait_for(lambda: len(smsc.submitted) == 1)
        assert smsc.submitted[0].text == "You will receive no more messages."
        row = await engine.store.fetchone("SELECT reason FROM msg_do_not_contact WHERE address='+34600999888'")
        assert row is not None
        await engine.interaction_action(interaction.id, "reply", {"text": "Le llamamos mañana"})

        async def refused() -> bool:
            row = await engine.store.fetchone("SELECT status FROM msg_messages WHERE body='Le llamamos mañana'")
            return row == {"status": "failed"}

        await _until(refused)
        assert len(smsc.submitted) == 1


async def test_silent_smsc_is_detected_and_the_link_comes_back(nursery, tmp_path: Path) -> None:
    smsc = SmscSimulator()
    await nursery.start(smsc.run)
    async with open_test_engine(CONFIG.format(port=smsc.port), plugins=[sms_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["sms"]
        with trio.fail_after(20):
            await smsc.wait_for(lambda: smsc.bound_count == 1)
        await smsc.deliver("+34600555444", "900100", "hola")
        (interaction,) = engine.interactions.values()
        smsc.silent = True  # stops answering enquire_link: the channel must notice and reconnect

        async def noticed() -> bool:
            return not channel.link.is_bound

        await _until(noticed)
        await engine.interaction_action(interaction.id, "reply", {"text": "queued while down"})
        smsc.silent = False
        with trio.fail_after(30):
            await smsc.wait_for(lambda: any(s.text == "queued while down" for s in smsc.submitted))
        assert channel.link.connects >= 2


async def test_garbage_from_the_smsc_is_nacked_and_the_link_survives(nursery, tmp_path: Path) -> None:
    smsc = SmscSimulator()
    await nursery.start(smsc.run)
    async with open_test_engine(CONFIG.format(port=smsc.port), plugins=[sms_plugin], data_dir=tmp_path) as engine:
        channel = engine.channels["sms"]
        with trio.fail_after(20):
            await smsc.wait_for(lambda: smsc.bound_count == 1)
        # An unknown command id with a sane length: generic_nack, the stream stays in sync.
        await smsc.send_raw(bytes.fromhex("00000010" "0000abcd" "00000000" "00000063"))
        with trio.fail_after(20):
            await smsc.wait_for(lambda: smsc.nacks_received == 1)
        assert await smsc.deliver("+34600000001", "900100", "still works") == [Status.ROK]
        assert channel.link.connects == 1
        # An impossible length: generic_nack, then the link is re-established.
        await smsc.send_raw(b"\xff\xff\xff\xff" + b"\0" * 12)

        async def reconnected() -> bool:
            return channel.link.connects == 2 and channel.link.is_bound

        await _until(reconnected)
        assert await smsc.deliver("+34600000001", "900100", "after reconnect") == [Status.ROK]
        bodies = [r["body"] for r in await engine.store.fetchall("SELECT body FROM msg_messages ORDER BY seq")]
        assert bodies == ["still works", "after reconnect"]


class _CrmPlugin:
    """A test plugin contributing an in-memory CRM that knows one customer."""

    def __init__(self) -> None:
        from engine import Contact
        from engine.testing import FakeCrm

        self.crm = FakeCrm({"+34600777888": Contact("c-42", "Rosa Díaz", phones=("+34600777888",), segments=("vip",))})

    @hookimpl
    def centralita_register_crm_backends(self, registry) -> None:
        registry.add("fake", lambda context: self.crm)


async def test_conversation_is_linked_to_the_crm_contact(nursery, tmp_path: Path) -> None:
    smsc = SmscSimulator()
    await nursery.start(smsc.run)
    async with open_test_engine(CONFIG.format(port=smsc.port), plugins=[sms_plugin, _CrmPlugin()], data_dir=tmp_path) as engine:
        with trio.fail_after(20):
            await smsc.wait_for(lambda: smsc.bound_count == 1)
        await smsc.deliver("+34600777888", "900100", "hola")
        await smsc.deliver("+34600000002", "900100", "hola")
        known, unknown = sorted(engine.interactions.values(), key=lambda i: i.from_ != "+34600777888")
        assert (known.caller_name, known.attributes["contact_id"], known.attributes["segments"]) == ("Rosa Díaz", "c-42", ["vip"])
        assert "contact_id" not in unknown.attributes


async def test_an_agent_who_does_not_answer_an_sms_loses_it_to_the_queue(nursery, tmp_path: Path) -> None:
    smsc = SmscSimulator()
    await nursery.start(smsc.run)
    config = CONFIG.format(port=smsc.port).replace(
        'members = ["alice"]', 'members = ["alice", "bob"]\nwrapup = 0'
    ).replace("[[queues]]", '[[agents]]\nid = "bob"\nendpoint = "sip:1002"\nchannels = { sms = 3 }\n\n[[queues]]', 1
    ) + "reoffer_after = 0.5\n"
    async with open_test_engine(config, plugins=[sms_plugin], data_dir=tmp_path) as engine:
        with trio.fail_after(20):
            await smsc.wait_for(lambda: smsc.bound_count == 1)
        await smsc.deliver("+34600123123", "900100", "¿Me atiende alguien?")
        (interaction,) = engine.interactions.values()

        async def offered() -> bool:
            return interaction.state.value == "offered"

        await _until(offered)
        first_agent = interaction.attributes["offers"][-1]["agent"]
        await engine.interaction_action(interaction.id, "accept", {"agent": first_agent})
        assert interaction.state.value == "active"

        async def reoffered() -> bool:
            return interaction.attributes.get("reoffered", 0) >= 1

        await _until(reoffered)  # the agent wrote nothing in reoffer_after: back to the queue
        assert interaction.state.value in ("queued", "offered")
        assert interaction.queue == "sms-support"
        # The customer's message is still there, once; nothing was sent on the agent's behalf.
        rows = await engine.store.fetchall("SELECT direction, body FROM msg_messages ORDER BY seq")
        assert [(r["direction"], r["body"]) for r in rows] == [("inbound", "¿Me atiende alguien?")]
        assert smsc.submitted == []
