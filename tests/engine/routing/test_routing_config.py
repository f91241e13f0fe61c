"""Bad input in [[queues]], [[agents]], [[routes]] and [[flows]] is reported with its key path."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.routing import RoutingConfigError, build_queues, validate_routing_config

KEYS = ["name", "id", "strategy", "members", "target", "relax", "after", "lower_by", "add_members", "timeout",
        "wrapup", "skills", "channels", "es", "voice", "chat", "match", "queue", "flow", "agent", "overflow",
        "hours", "tz", "mon", "holidays", "start", "nodes", "type", "options", "next", "1", "weights",
        "max_wait", "priority", "auto_login", "condition", "then", "else", "prompt"]

GOOD = """
[[agents]]
id = "alice"
skills = { es = 80, billing = 50 }
channels = { voice = 1, chat = 3 }

[[agents]]
id = "bob"
skills = { es = 40 }

[[queues]]
name = "support"
strategy = "skills"
members = ["alice", "bob"]
target = "es >= 60 and billing >= 30"
relax = [{ after = 30, lower_by = 20 }, { after = 60, add_members = ["bob"] }]
timeout = 15
wrapup = 10
max_wait = 300
overflow = { voicemail = "support" }

[[routes]]
match = "100"
queue = "support"

[[routes]]
match = "200"
flow = "main"

[[flows]]
name = "main"
start = "menu"
[flows.nodes.menu]
type = "menu"
prompt = "welcome"
options = { "1" = "support" }
[flows.nodes.support]
type = "queue"
queue = "support"
"""


def problems_of(text: str, **kwargs) -> dict[str, str]:
    return dict(validate_routing_config(tomllib.loads(text), **kwargs))


def test_a_good_config_has_no_problems():
    assert validate_routing_config(tomllib.loads(GOOD)) == []


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ('strategy = "skills"', 'strategy = "longest_idle"', "queues[0].strategy", ["did you mean 'longest-idle'"]),
        ('target = "es >= 60 and billing >= 30"', 'target = "es >= 60 and (billing >= 30"', "queues[0].target",
         ["'support'", "missing ')'", "column 28"]),
        ('target = "es >= 60 and billing >= 30"', 'target = "es >= 60 and biling >= 30"', "queues[0].target",
         ["unknown name 'biling'", "column 14"]),
        ('members = ["alice", "bob"]', 'members = ["alice", "carol"]', "queues[0].members[1]", ["'carol'"]),
        ("timeout = 15", "timeout = -1", "queues[0].timeout", ["-1"]),
        ("wrapup = 10", 'wrapup = "ten"', "queues[0].wrapup", ["expected a number"]),
        ('overflow = { voicemail = "support" }', 'overflow = { queue = "nowhere" }', "queues[0].overflow", ["nowhere"]),
        ('add_members = ["bob"]', 'add_members = ["zoe"]', "queues[0].relax[1].add_members[0]", ["'zoe'"]),
        ("after = 60", "after = 10", "queues[0].relax[1].after", ["increasing"]),
        ("es = 80, billing = 50", "es = 180, billing = 50", "agents[0].skills.es", ["0 to 100"]),
        ("channels = { voice = 1, chat = 3 }", "channels = { voice = 1, chatt = 3 }", "agents[0].channels.chatt",
         ["did you mean 'chat'"]),
        ('queue = "support"\n\n[[routes]]', 'queue = "suport"\n\n[[routes]]', "routes[0].queue", ["'suport'"]),
        ('flow = "main"', 'flow = "mian"', "routes[1].flow", ["'mian'"]),
        ('options = { "1" = "support" }', 'options = { "1" = "suport" }', "flows[0].nodes.menu.options.1",
         ["flow 'main', node 'menu'", "did you mean 'support'"]),
        ('type = "queue"\nqueue = "support"', 'type = "queue"\nqueue = "sales"', "flows[0].nodes.support.queue",
         ["'sales'"]),
    ],
)
def test_each_mistake_is_named_by_its_key(old, new, key, words):
    assert old in GOOD
    found = problems_of(GOOD.replace(old, new, 1))
    assert key in found, found
    for word in words:
        assert word in found[key]


def test_missing_prompts_are_reported_through_the_callable():
    found = problems_of(GOOD, prompt_exists=lambda name: name != "welcome")
    assert "prompt 'welcome' not found" in found["flows[0].nodes.menu.prompt"]


def test_build_queues_raises_naming_the_key():
    raw = tomllib.loads(GOOD.replace('strategy = "skills"', 'strategy = "fastest"'))
    with pytest.raises(RoutingConfigError) as info:
        build_queues(raw)
    assert info.value.key == "queues[0].strategy"
    assert "fastest" in str(info.value)


def test_wrong_types_everywhere_do_not_crash():
    raw = {"queues": [3, {"name": 5, "members": "alice", "relax": "soon", "hours": {"tz": "Mars/Base"}}],
           "agents": ["x", {"id": ""}], "routes": [{"queue": 1, "flow": 2}], "flows": {"name": "main"}}
    found = validate_routing_config(raw)
    keys = {key for key, _ in found}
    assert {"queues[0]", "queues[1].name", "queues[1].members", "queues[1].relax", "queues[1].hours.tz",
            "agents[0]", "agents[1].id", "routes[0]", "flows"} <= keys


_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 200), st.floats(allow_nan=True),
                  st.text(alphabet="abes01=> ()'-:", max_size=12))
_value = st.recursive(_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
                      max_leaves=12)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["queues", "agents", "routes", "flows"]),
                       st.lists(st.dictionaries(st.sampled_from(KEYS), _value, max_size=6), max_size=3)))
def test_any_config_shape_gives_problems_never_an_exception(raw):
    for key, message in validate_routing_config(raw):
        assert isinstance(key, str) and isinstance(message, str)
