"""The SIP shell's public names, and the promise that the sans-IO core stays free of trio."""

from __future__ import annotations

import subprocess
import sys

import plugins.sip as sip


def test_public_names_are_pinned() -> None:
    assert sorted(sip.__all__) == [
        "ListenAddress",
        "Peer",
        "SecurityGuard",
        "SecurityPolicy",
        "SipChannel",
        "SipSettings",
        "SipTransports",
        "check_dial_string",
    ]
    for name in sip.__all__:
        assert getattr(sip, name) is not None


def test_importing_the_sansio_core_does_not_import_trio() -> None:
    code = "import sys, plugins.sip.sansio; print('trio' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=sip.__path__[0] + "/../..")
    assert result.stdout.strip() == "False"
