"""The plugin module as the engine sees it: valid hooks, config errors with file and line, defaults."""

from __future__ import annotations

import pytest

import plugins.sip.plugin as sip_plugin
from engine import ConfigError
from engine.testing import check_plugin_module, load_test_config, make_manager
from plugins.sip._settings import SipSettings


def test_hook_implementations_match_the_hookspecs() -> None:
    assert check_plugin_module(sip_plugin) == []


def test_defaults_listen_on_loopback_5060_udp_and_tcp() -> None:
    assert SipSettings().listen == ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]


@pytest.mark.parametrize(
    ("toml", "path"),
    [
        ('[sip]\nlisten = ["sctp:127.0.0.1:5060"]\n', "sip.listen"),
        ('[sip]\nlisten = ["udp:127.0.0.1:99999"]\n', "sip.listen"),
        ('[[sip.users]]\nname = "10 01"\npassword = "x"\n', "sip.users[0].name"),
        ('[[sip.users]]\nname = "1001"\n', "sip.users[0].password"),
        ('[[sip.trunks]]\nname = "t"\nserver = "203.0.113.5"\n', "sip.trunks[0].server"),
        ('[[sip.trunks]]\nname = "t"\nserver = "sip:203.0.113.5"\nmatch = ["not-a-net"]\n', "sip.trunks[0].match"),
        ('[sip.timers]\nt1 = 0\n', "sip.timers.t1"),
        ('[sip]\nlistn = ["udp:127.0.0.1:5060"]\n', "sip.listn"),
    ],
)
def test_config_errors_name_the_key_and_line(tmp_path, toml: str, path: str) -> None:
    manager = make_manager([sip_plugin])
    with pytest.raises(ConfigError) as caught:
        load_test_config(toml, manager, tmp_path)
    problems = "\n".join(caught.value.problems)
    assert f": {path}" in problems, problems
    assert "centralita.toml:" in problems
