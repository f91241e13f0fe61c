"""``[[devices]] options`` override a driver's timings with the field's own type, or are refused with
the device and option named (shared by the GSM and voice modem drivers)."""

from __future__ import annotations

import pytest

from engine import DeviceError
from engine.abc import DeviceSpec
from hardware.gsm_modem import GsmModem
from hardware.voice_modem import VoiceModem


def test_options_override_timings_keeping_their_types() -> None:
    modem = VoiceModem(DeviceSpec("line1", "voice-modem", "/dev/null", options={"keepalive": 5, "answer_after_rings": 3}))
    assert modem.timings.keepalive == 5.0 and isinstance(modem.timings.keepalive, float)
    assert modem.timings.answer_after_rings == 3
    gsm = GsmModem(DeviceSpec("gsm", "gsm-modem", "/dev/null", options={"retries": 1, "pin": "1234"}))
    assert gsm.timings.retries == 1


@pytest.mark.parametrize("value", ["5", True, None, [1]])
def test_a_wrongly_typed_option_names_the_device_and_the_option(value) -> None:
    with pytest.raises(DeviceError, match=r"device line1: option keepalive must be float"):
        VoiceModem(DeviceSpec("line1", "voice-modem", "/dev/null", options={"keepalive": value}))
    with pytest.raises(DeviceError, match=r"device gsm: option send_timeout must be float"):
        GsmModem(DeviceSpec("gsm", "gsm-modem", "/dev/null", options={"send_timeout": value}))
