"""A small but complete flow used by the IVR tests (TOML as a user would write it)."""

from __future__ import annotations

import tomllib

import pytest

MAIN_FLOW = """
[[flows]]
name = "main"
start = "hours"

[flows.nodes.hours]
type = "schedule"
hours = { tz = "Europe/Madrid", "mon-fri" = "09:00-18:00", holidays = ["2026-12-25"] }
open = "welcome"
closed = "closed"
holiday = "holiday"

[flows.nodes.welcome]
type = "play"
prompt = "welcome"
next = "menu"

[flows.nodes.menu]
type = "menu"
prompt = "main-menu"
options = { "1" = "sales", "2" = "account", "9" = "callback" }
timeout = 5
retries = 2
invalid = "invalid-option"
no_input = "no-input"
fail = "goodbye"

[flows.nodes.account]
type = "collect"
prompt = "enter-account"
var = "account"
min = 4
max = 6
timeout = 4
retries = 1
next = "lookup"
fail = "goodbye"

[flows.nodes.lookup]
type = "crm"
key = "account"
var = "customer"
found = "is-vip"
not_found = "sales"
timeout = 3

[flows.nodes.is-vip]
type = "branch"
condition = "customer.segment == 'vip' or account >= 900000"
then = "vip"
else = "sales"

[flows.nodes.vip]
type = "queue"
queue = "sales"
priority = 10

[flows.nodes.sales]
type = "queue"
queue = "sales"

[flows.nodes.callback]
type = "callback"
queue = "sales"
text = "We will call you back on this number."

[flows.nodes.closed]
type = "voicemail"
box = "sales"
greeting = "closed-greeting"

[flows.nodes.holiday]
type = "hangup"
text = "We are closed for the holiday."

[flows.nodes.goodbye]
type = "hangup"
prompt = "goodbye"
"""


@pytest.fixture(scope="session")
def main_flow_raw() -> list[dict]:
    return tomllib.loads(MAIN_FLOW)["flows"]
