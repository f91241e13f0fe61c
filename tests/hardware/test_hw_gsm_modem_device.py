"""The GSM-modem driver against the emulated modem: SIM, SMS in and out, reports, URCs, faults."""

from __future__ import annotations

import pytest
import trio

from engine.abc import Capability, DeviceHealth
from hardware.emulators import GsmModemEmulator
from hardware.gsm_modem import DeliveryReport, InboundSms, InvalidNumber, SmsSendError
from hardware.gsm_modem._pdu import Submit, decode_pdu
from hardware.testing import next_event


class Inbox:
    """A message handler that 'stores' messages (or fails to, on demand)."""

    def __init__(self) -> None:
        self.messages: list[InboundSms] = []
        self.fail = False
        self._changed = trio.Event()

    async def __call__(self, sms: InboundSms) -> None:
        await trio.lowlevel.checkpoint()
        if self.fail:
            raise OSError("disk full")
        self.messages.append(sms)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        with trio.fail_after(10):
            while len(self.messages) < count:
                await self._changed.wait()


async def test_pin_and_a_sim_that_is_not_ready_at_boot(nursery, tmp_path, start_gsm_modem) -> None:
    emulator = GsmModemEmulator(link_dir=str(tmp_path), pin="4321", sim_not_ready_polls=3)
    await nursery.start(emulator.run)
    modem = await start_gsm_modem(emulator, handler=Inbox(), pin="4321")
    assert emulator.sim_unlocked and modem.sim_state == "READY"
    assert modem.describe()["registration"] == "registered (home)" and modem.signal == 20
    assert Capability.SMS in modem.capabilities


async def test_a_wrong_pin_is_tried_once_and_reported(nursery, tmp_path, start_gsm_modem) -> None:
    emulator = GsmModemEmulator(link_dir=str(tmp_path), pin="4321")
    await nursery.start(emulator.run)
    modem = await start_gsm_modem(emulator, handler=Inbox(), pin="1111", wait=DeviceHealth.UNHEALTHY)
    assert "PIN" in modem.health_reason
    # It keeps reconnecting with backoff...
    await emulator.wait_until(lambda e: e.commands.count("AT+CPIN?") >= 4)
    assert sum(1 for c in emulator.commands if c.startswith("AT+CPIN=")) == 1  # ...but never burns PIN tries


async def test_sms_in_is_deleted_only_after_it_is_stored(nursery, gsm_emulator, start_gsm_modem) -> None:
    inbox = Inbox()
    await start_gsm_modem(gsm_emulator, handler=inbox)
    text = "¿Me llamais? Tengo una incidencia con la factura no. 42 € " * 4  # 2 parts, GSM 7-bit + extension
    indexes = await gsm_emulator.deliver_sms("+34611000222", text, reverse=True)
    assert len(indexes) == 2
    await inbox.wait_for(1)
    (sms,) = inbox.messages
    assert (sms.sender, sms.text, sms.incomplete) == ("+34611000222", text, False)
    await gsm_emulator.wait_until(lambda e: not e.storage)
    assert sorted(gsm_emulator.deleted) == sorted(indexes)


async def test_a_failed_store_keeps_the_message_on_the_sim_and_it_comes_back(
    nursery, gsm_emulator, start_gsm_modem
) -> None:
    inbox = Inbox()
    inbox.fail = True
    modem = await start_gsm_modem(gsm_emulator, handler=inbox)
    await gsm_emulator.deliver_sms("+34611000333", "no me pierdas")
    await gsm_emulator.wait_until(lambda e: any(c == "AT+CMGR=1" for c in e.commands))
    await modem.send_sms("+34600000000", "after the failed store")  # serialised after the fetch
    assert modem.counters["handler_failures"] >= 1
    assert gsm_emulator.storage and not gsm_emulator.deleted
    inbox.fail = False
    gsm_emulator.unplug()  # a restart of the connection sweeps the SIM again
    gsm_emulator.replug()
    await inbox.wait_for(1)
    assert inbox.messages[0].text == "no me pierdas"
    await gsm_emulator.wait_until(lambda e: not e.storage)


async def test_messages_stored_while_offline_are_swept_at_start(
    nursery, gsm_emulator, start_gsm_modem
) -> None:
    await gsm_emulator.deliver_sms("+34600000001", "first", notify=False)
    await gsm_emulator.deliver_sms("+34600000002", "second", notify=False)
    inbox = Inbox()
    await start_gsm_modem(gsm_emulator, handler=inbox)
    await inbox.wait_for(2)
    assert sorted(m.text for m in inbox.messages) == ["first", "second"]
    await gsm_emulator.wait_until(lambda e: not e.storage)


async def test_reply_goes_out_as_a_pdu_the_emulator_decodes_to_the_same_text(
    nursery, gsm_emulator, start_gsm_modem
) -> None:
    modem = await start_gsm_modem(gsm_emulator, handler=Inbox())
    gsm_emulator.auto_status_reports = True
    text = "Gracias, Ana. Su incidencia 😀 está resuelta. " * 3  # UCS-2, 3 parts
    refs = await modem.send_sms("+34611000444", text)
    (sent,) = gsm_emulator.sent
    assert (sent.recipient, sent.text) == ("+34611000444", text)
    assert refs == ",".join(str(r) for r in sent.references) and len(sent.references) == 3
    assert all(isinstance(decode_pdu(p[2:], with_smsc=False, outgoing=True), Submit) for p in sent.pdus)
    report = await next_event(modem, DeliveryReport)
    assert (
        report.delivered and report.recipient == "+34611000444" and str(report.reference) in refs.split(",")
    )


async def test_invalid_number_never_reaches_the_modem(nursery, gsm_emulator, start_gsm_modem) -> None:
    modem = await start_gsm_modem(gsm_emulator, handler=Inbox())
    before = list(gsm_emulator.commands)
    with pytest.raises(InvalidNumber):
        await modem.send_sms('+34600";ATD112;', "hi")
    assert gsm_emulator.commands == before


async def test_urcs_between_echo_and_ok_are_handled_and_answers_stay_correct(
    nursery, gsm_emulator, start_gsm_modem
) -> None:
    inbox = Inbox()
    modem = await start_gsm_modem(gsm_emulator, handler=inbox)
    index = gsm_emulator.store_raw_pdu(
        "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"
    )
    gsm_emulator.echo = True
    gsm_emulator.inject_urc_during("AT+CMGS", f'+CMTI: "SM",{index}')
    gsm_emulator.inject_urc_during("AT+CMGR", "RING")
    refs = await modem.send_sms("+34611000555", "hola")
    assert refs == "1"
    await inbox.wait_for(1)
    assert inbox.messages[0].text == "hellohello"
    assert gsm_emulator.sent[0].text == "hola"


async def test_routed_cmt_message_is_delivered_once(nursery, gsm_emulator, start_gsm_modem) -> None:
    inbox = Inbox()
    await start_gsm_modem(gsm_emulator, handler=inbox)
    await gsm_emulator.deliver_sms("+34600000009", "directo", routed=True)
    await inbox.wait_for(1)
    assert inbox.messages[0].text == "directo"


async def test_an_invalid_pdu_on_the_sim_is_handed_over_raw_not_lost(
    nursery, gsm_emulator, start_gsm_modem
) -> None:
    gsm_emulator.store_raw_pdu("0004FFFFFFFF")
    inbox = Inbox()
    modem = await start_gsm_modem(gsm_emulator, handler=inbox)
    await inbox.wait_for(1)
    assert inbox.messages[0].error and inbox.messages[0].raw_pdus == ("0004FFFFFFFF",)
    assert modem.counters["invalid_pdus"] == 1
    await gsm_emulator.wait_until(lambda e: not e.storage)


async def test_cme_error_forever_is_retried_a_bounded_number_of_times_then_unhealthy(
    nursery, gsm_emulator, start_gsm_modem
) -> None:
    modem = await start_gsm_modem(gsm_emulator, handler=Inbox())
    gsm_emulator.fail("AT+CMGS", 515)
    gsm_emulator.fail("AT+CMGD", 515)
    gsm_emulator.fail("AT+CMGR", 515)
    for _ in range(4):
        with pytest.raises(SmsSendError):
            await modem.send_sms("+34600000000", "x")
    with trio.fail_after(10):
        await modem.wait_health(DeviceHealth.UNHEALTHY)
    await gsm_emulator.deliver_sms("+34600000001", "y")
    await gsm_emulator.wait_until(lambda e: sum(1 for c in e.commands if c.startswith("AT+CMGR=")) >= 3)
    with pytest.raises(SmsSendError):  # serialised behind the fetcher's last attempt
        await modem.send_sms("+34600000000", "x")
    attempts = sum(1 for c in gsm_emulator.commands if c.startswith("AT+CMGR="))
    assert attempts == 1 + modem.timings.retries  # bounded, not forever
    assert "failed commands in a row" in modem.health_reason
    gsm_emulator.clear_failures()
    await modem.send_sms("+34600000000", "vuelve")
    assert modem.health() is DeviceHealth.OK


async def test_not_registered_refuses_to_send_and_registration_urc_recovers(
    nursery, gsm_emulator, start_gsm_modem
) -> None:
    gsm_emulator.registration = 3
    modem = await start_gsm_modem(gsm_emulator, handler=Inbox(), wait=DeviceHealth.DEGRADED)
    with pytest.raises(SmsSendError, match="not registered"):
        await modem.send_sms("+34600000000", "x")
    await gsm_emulator.set_registration(5)
    with trio.fail_after(10):
        await modem.wait_health(DeviceHealth.OK)
    assert await modem.send_sms("+34600000000", "roaming ok")


async def test_unplug_mid_command_then_reconnect(nursery, gsm_emulator, start_gsm_modem) -> None:
    modem = await start_gsm_modem(gsm_emulator, handler=Inbox())
    gsm_emulator.stop_answering()
    async with trio.open_nursery() as inner:
        failures: list[Exception] = []

        async def send() -> None:
            try:
                await modem.send_sms("+34600000000", "x")
            except SmsSendError as exc:
                failures.append(exc)

        inner.start_soon(send)
        before = gsm_emulator.pty.bytes_from_host
        await gsm_emulator.wait_until(lambda e: e.pty.bytes_from_host > before)  # the command is on the wire
        gsm_emulator.unplug()
    assert failures
    with trio.fail_after(10):
        await modem.wait_health(DeviceHealth.DISCONNECTED)
    gsm_emulator.resume_answering()
    gsm_emulator.replug()
    with trio.fail_after(10):
        await modem.wait_health(DeviceHealth.OK)
    assert await modem.send_sms("+34600000000", "de vuelta")


async def test_line_noise_does_not_break_the_next_command(nursery, gsm_emulator, start_gsm_modem) -> None:
    modem = await start_gsm_modem(gsm_emulator, handler=Inbox())
    await gsm_emulator.send_noise(3000)
    await gsm_emulator.send_urc("")
    assert await modem.send_sms("+34600000000", "limpio")
    assert gsm_emulator.sent[-1].text == "limpio"


async def test_an_incoming_call_ringing_during_the_sms_prompt_does_not_corrupt_it(
    nursery, gsm_emulator, start_gsm_modem
) -> None:
    from hardware.gsm_modem import IncomingVoiceCall

    modem = await start_gsm_modem(gsm_emulator, handler=Inbox())
    gsm_emulator.echo = True
    gsm_emulator.inject_urc_during("AT+CMGS", 'RING\r\n\r\n+CLIP: "+34911000111",145,,,,0')
    assert await modem.send_sms("+34600000000", "entre timbres")
    assert gsm_emulator.sent[-1].text == "entre timbres" and not gsm_emulator.invalid_submits
    call = await next_event(modem, IncomingVoiceCall)
    assert call.number == "+34911000111"
