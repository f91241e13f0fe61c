"""The SIP channel: a sans-IO RFC 3261 core (``plugins.sip.sansio``) and its trio shell.

The shell's public names are loaded lazily, so importing the sans-IO core (``plugins.sip.sansio``)
never pulls in trio or the engine.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ListenAddress",
    "Peer",
    "SecurityGuard",
    "SecurityPolicy",
    "SipChannel",
    "SipSettings",
    "SipTransports",
    "check_dial_string",
]

_EXPORTS = {
    "ListenAddress": "._transport",
    "Peer": "._transport",
    "SipTransports": "._transport",
    "SecurityGuard": "._security",
    "SecurityPolicy": "._security",
    "SipChannel": "._channel",
    "SipSettings": "._settings",
    "check_dial_string": "._trunks",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'plugins.sip' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
