"""The SMS channel through the GSM modem capability: the real driver against the emulated modem on a pty.

Long UCS-2 messages both ways, an opt-out ("STOP") that the dialer honours too, and a modem outage that
only delays a reply."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import trio

from engine import hookimpl
from engine.abc import DeviceHealth
from engine.testing import FakeVoiceChannel, open_test_engine
from hardware.emulators import GsmModemEmulator
from hardware.gsm_modem import plugin as gsm_plugin
from plugins.sms import plugin as sms_plugin

CONFIG = """
[[agents]]
id = "alice"
endpoint = "sip:1001"
channels = {{ sms = 3 }}

[[queues]]
name = "sms-support"
members = ["alice"]

[[routes]]
match = "gsm1"
queue = "sms-support"

[sms]
modem = "gsm1"
retry_first = 0.1
retry_max = 0.3

[[devices]]
name = "gsm1"
driver = "gsm-modem"
port = "{port}"
options = {{ command_timeout = 2.0, poll_interval = 1.0, sim_wait = 0.1 }}
"""


async def test_modem_sms_in_and_reply_out(nursery, tmp_path: Path) -> None:
    emulator = GsmModemEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)
    try:
        async with open_test_engine(CONFIG.format(port=emulator.link), plugins=[sms_plugin, gsm_plugin],
                                    data_dir=tmp_path) as engine:
            channel = engine.channels["sms"]
            with trio.fail_after(30):
                while channel.modem is None:
                    await trio.sleep(0.02)
            await emulator.deliver_sms("+34611222333", "Necesito ayuda con mi factura")
            with trio.fail_after(30):
                while not engine.interactions:
                    await trio.sleep(0.02)
            (interaction,) = engine.interactions.values()
            assert (interaction.kind.value, interaction.from_, interaction.to) == ("sms", "+34611222333", "gsm1")
            # Stored before the modem deleted it from the SIM.
            await emulator.wait_until(lambda e: not e.storage, timeout=30)
            await engine.interaction_action(interaction.id, "reply", {"text": "Le ayudamos ahora mismo"})
            await emulator.wait_until(lambda e: len(e.sent) == 1, timeout=30)
            assert (emulator.sent[0].recipient, emulator.sent[0].text) == ("+34611222333", "Le ayudamos ahora mismo")
    finally:
        emulator.pty.close()


async def _started(engine: Any) -> Any:
    channel = engine.channels["sms"]
    with trio.fail_after(30):
        while channel.modem is None:
            await trio.sleep(0.02)
    return channel


async def _interaction_of(engine: Any, number: str) -> Any:
    with trio.fail_after(30):
        while True:
            found = [i for i in engine.interactions.values() if i.kind.value == "sms" and i.from_ == number]
            if found:
                return found[0]
            await trio.sleep(0.02)


async def _status_of(engine: Any, body: str, wanted: str) -> None:
    with trio.fail_after(30):
        while await engine.store.fetchone("SELECT status FROM msg_messages WHERE body=?", (body,)) != {"status": wanted}:
            await trio.sleep(0.02)


async def test_long_ucs2_message_in_and_long_reply_out_are_concatenated(nursery, tmp_path: Path) -> None:
    emulator = GsmModemEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)
    # Lowercase Greek is not in the GSM 7-bit alphabet: UCS-2, 67 characters per part.
    question = "Καλημέρα, ο λογαριασμός του μήνα είναι λάθος και χρεώθηκα δύο φορές. " * 2  # 140 chars: 3 parts
    answer = "Λυπούμαστε πολύ 😀. Θα σας επιστρέψουμε τη διπλή χρέωση μέσα σε τρεις εργάσιμες ημέρες. " * 2
    try:
        async with open_test_engine(CONFIG.format(port=emulator.link), plugins=[sms_plugin, gsm_plugin],
                                    data_dir=tmp_path) as engine:
            await _started(engine)
            # The parts arrive last first: the channel still stores one message, in order.
            assert len(await emulator.deliver_sms("+34611222444", question, reverse=True)) == 3
            interaction = await _interaction_of(engine, "+34611222444")
            await emulator.wait_until(lambda e: not e.storage, timeout=30)  # all three parts taken off the SIM
            rows = await engine.store.fetchall("SELECT body FROM msg_messages WHERE direction='inbound'")
            assert [r["body"] for r in rows] == [question]

            await engine.interaction_action(interaction.id, "reply", {"text": answer})
            await _status_of(engine, answer, "sent")
            (sent,) = emulator.sent
            assert (sent.recipient, sent.text) == ("+34611222444", answer)
            parts = [submit for submit in emulator.submits if submit.recipient == "+34611222444"]
            assert len(parts) == len(sent.pdus) >= 3  # UCS-2 parts (GSM 7-bit would need two)
            assert {p.concat.reference for p in parts if p.concat} and all(p.concat for p in parts)
            assert [p.concat.sequence for p in parts] == list(range(1, len(parts) + 1))
    finally:
        emulator.pty.close()


class _FakeVoice:
    @hookimpl
    def centralita_register_channels(self, registry: Any) -> None:
        registry.add("fake", FakeVoiceChannel)


CAMPAIGN = """
[[agents]]
id = "carol"
endpoint = "fake:carol"

[[campaigns]]
name = "renewals"
mode = "progressive"
agents = ["carol"]
caller_id = "+34910000000"
ring_timeout = 15
[campaigns.schedule]
start = "00:00"
end = "23:59"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
timezone = "UTC"
"""


async def test_stop_over_the_modem_opts_out_refuses_the_reply_and_reaches_the_dialer(nursery, tmp_path: Path) -> None:
    emulator = GsmModemEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)
    config = CONFIG.format(port=emulator.link).replace(
        "retry_max = 0.3", 'retry_max = 0.3\nopt_out_reply = "No recibirá más mensajes."') + CAMPAIGN
    number = "+34611222555"
    try:
        async with open_test_engine(config, plugins=[sms_plugin, gsm_plugin, _FakeVoice()], data_dir=tmp_path) as engine:
            voice = engine.channels["fake"]
            voice.register("fake:carol")
            await _started(engine)
            await emulator.deliver_sms(number, "Quiero cambiar de tarifa")
            interaction = await _interaction_of(engine, number)
            await emulator.deliver_sms(number, "STOP")
            await emulator.wait_until(lambda e: len(e.sent) == 1, timeout=30)
            assert (emulator.sent[0].recipient, emulator.sent[0].text) == (number, "No recibirá más mensajes.")
            row = await engine.store.fetchone("SELECT channel FROM msg_do_not_contact WHERE address=?", (number,))
            assert row == {"channel": "sms"}

            # The agent's answer is stored, refused for good, and never reaches the modem.
            await engine.interaction_action(interaction.id, "reply", {"text": "Le llamo para la tarifa"})
            await _status_of(engine, "Le llamo para la tarifa", "failed")
            assert len(emulator.sent) == 1

            # The dialer has the number on its do-not-call list: a campaign lead with it is refused.
            await engine.store.write(
                "INSERT INTO dialer_leads(campaign, lead, numbers, fields, imported) VALUES (?,?,?,?,?)",
                ("renewals", "lead-1", json.dumps([number]), "{}", time.time()))
            with trio.fail_after(30):
                while True:
                    rows = await engine.store.fetchall(
                        "SELECT record FROM dialer_audit WHERE campaign='renewals' ORDER BY seq")
                    refused = [r for r in map(json.loads, (x["record"] for x in rows))
                               if r["kind"] == "refused" and r["number"] == number]
                    if refused:
                        break
                    await trio.sleep(0.05)
            assert refused[0]["detail"]["reason"] == "do-not-call (opt-out:sms)"
            assert number not in voice.dialed
    finally:
        emulator.pty.close()


async def test_a_modem_outage_delays_the_reply_which_goes_out_once_after_reconnecting(nursery, tmp_path: Path) -> None:
    emulator = GsmModemEmulator(link_dir=str(tmp_path))
    await nursery.start(emulator.run)
    try:
        async with open_test_engine(CONFIG.format(port=emulator.link), plugins=[sms_plugin, gsm_plugin],
                                    data_dir=tmp_path) as engine:
            channel = await _started(engine)
            await emulator.deliver_sms("+34611222666", "¿Me llamáis?")
            interaction = await _interaction_of(engine, "+34611222666")
            await emulator.wait_until(lambda e: not e.storage, timeout=30)

            emulator.unplug()
            with trio.fail_after(30):
                await channel.modem.wait_health(DeviceHealth.DISCONNECTED)
            await engine.interaction_action(interaction.id, "reply", {"text": "Sí, en cinco minutos"})
            with trio.fail_after(30):  # tried while the modem is away, kept for a retry
                while channel.outbox.retried < 2:
                    await trio.sleep(0.02)
            row = await engine.store.fetchone("SELECT status FROM msg_messages WHERE direction='outbound'")
            assert row == {"status": "queued"}
            assert emulator.sent == []

            emulator.replug()
            await _status_of(engine, "Sí, en cinco minutos", "sent")
            assert [(s.recipient, s.text) for s in emulator.sent] == [("+34611222666", "Sí, en cinco minutos")]
            assert await channel.messages.pending_count() == 0
            # Once more through the modem, to be sure the first reply is not sent again with the next one.
            await engine.interaction_action(interaction.id, "reply", {"text": "Ya estamos"})
            await emulator.wait_until(lambda e: len(e.sent) == 2, timeout=30)
            assert [s.text for s in emulator.sent] == ["Sí, en cinco minutos", "Ya estamos"]
    finally:
        emulator.pty.close()
