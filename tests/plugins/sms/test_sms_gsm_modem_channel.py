"""The SMS channel through the GSM modem capability: the real driver against the emulated modem on a pty."""

from __future__ import annotations

from pathlib import Path

import trio

from engine.testing import open_test_engine
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
