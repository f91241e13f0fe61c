"""Pinned public exports of the hardware packages, and the layering rule (hardware never imports plugins)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

HARDWARE = Path(__file__).resolve().parents[2] / "hardware"

EXPORTS = {
    "hardware": [
        "DeviceUnresponsive",
        "HealthChanged",
        "ReconnectPolicy",
        "SerialDevice",
        "SerialDisconnected",
        "SerialSettings",
        "SerialStream",
        "open_serial_stream",
    ],
    "hardware.voice_modem": [
        "PROFILES",
        "CallEnded",
        "CallerId",
        "CallerIdError",
        "DleDecoder",
        "DleEvent",
        "DtmfReceived",
        "IncomingCall",
        "InvalidDialString",
        "LineCapabilities",
        "ModemProfile",
        "RingingStopped",
        "VoiceCall",
        "VoiceModem",
        "VoiceModemTimings",
        "check_dial_string",
        "decode_burst",
        "shield",
    ],
    "hardware.gsm_modem": [
        "Deliver",
        "DeliveryReport",
        "GsmModem",
        "GsmTimings",
        "InboundSms",
        "IncomingVoiceCall",
        "InvalidNumber",
        "PduError",
        "RegistrationChanged",
        "SmsSendError",
        "StatusReport",
        "Submit",
        "decode_pdu",
        "encode_submit",
    ],
    "hardware.dtmf_board": ["FRAMINGS", "PROFILES", "BoardDigit", "BoardDtmf", "DtmfBoard", "FrameParser"],
    "hardware.headset": ["AudioBackend", "Headset", "audio_backend"],
    "hardware.emulators": ["DtmfBoardEmulator", "GsmModemEmulator", "SentSms", "VoiceModemEmulator"],
}


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_public_exports_are_pinned_and_all_exist(module: str) -> None:
    imported = importlib.import_module(module)
    assert sorted(imported.__all__) == sorted(EXPORTS[module])
    for name in imported.__all__:
        assert hasattr(imported, name), f"{module}.{name}"


def test_hardware_never_imports_plugins_and_only_headset_touches_sounddevice() -> None:
    for path in HARDWARE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith("plugins"), f"{path} imports {name}"
                if name.startswith("sounddevice"):
                    assert path.name == "_audio.py", f"{path} imports sounddevice"


SANS_IO = [
    "_at.py",
    "voice_modem/_dle.py",
    "voice_modem/_callerid.py",
    "voice_modem/_profiles.py",
    "voice_modem/_ringing.py",
    "gsm_modem/_pdu.py",
    "gsm_modem/_gsm7.py",
    "dtmf_board/_frames.py",
]


@pytest.mark.parametrize("module", SANS_IO)
def test_protocol_cores_are_sans_io(module: str) -> None:
    tree = ast.parse((HARDWARE / module).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
    }
    assert not imported & {"trio", "serial", "sounddevice", "socket", "os", "select"}, imported
