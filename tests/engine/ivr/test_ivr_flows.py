"""Flow validation names the flow and the node; plugins add node types; runaway flows are bounded."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.ivr import (
    EnterQueue, FlowEnded, FlowError, FlowSession, Hangup, NodeType, Play, load_flows, validate_flows,
)


def broken(raw, node, **changes):
    flows = copy.deepcopy(raw)
    flows[0]["nodes"][node].update(changes)
    return flows


def test_the_example_flow_is_valid(main_flow_raw):
    assert validate_flows(main_flow_raw, queues={"sales"}, prompt_exists=lambda p: True) == []


@pytest.mark.parametrize(
    ("node", "changes", "key", "words"),
    [
        ("menu", {"type": "menu2"}, "flows[0].nodes.menu.type", ["unknown node type 'menu2'", "did you mean 'menu'"]),
        ("menu", {"options": {"1": "sale"}}, "flows[0].nodes.menu.options.1",
         ["flow 'main', node 'menu'", "no node named 'sale'", "did you mean 'sales'"]),
        ("menu", {"options": {"11": "sales"}}, "flows[0].nodes.menu.options.11", ["single key"]),
        ("menu", {"timeout": -3}, "flows[0].nodes.menu.timeout", ["> 0"]),
        ("account", {"min": 8, "max": 4}, "flows[0].nodes.account.max", ["min <= max"]),
        ("welcome", {"next": 5}, "flows[0].nodes.welcome.next", ["expected a node name"]),
        ("is-vip", {"condition": "customer.segment == "}, "flows[0].nodes.is-vip.condition", ["column"]),
        ("hours", {"hours": {"tz": "Europe/Madird"}}, "flows[0].nodes.hours.hours.tz", ["time zone"]),
        ("hours", {"hours": {"mon-fry": "09:00-18:00"}}, "flows[0].nodes.hours.hours.mon-fry", ["day"]),
        ("hours", {"hours": {"mon": "18:00-09:00"}}, "flows[0].nodes.hours.hours.mon", ["start < end"]),
        ("sales", {"queue": "salse"}, "flows[0].nodes.sales.queue", ["no queue named 'salse'"]),
        ("lookup", {"found": "nowhere"}, "flows[0].nodes.lookup.found", ["'nowhere'"]),
        ("welcome", {"prompt": None, "text": None}, "flows[0].nodes.welcome.prompt", ["required"]),
    ],
)
def test_each_mistake_names_flow_node_and_key(main_flow_raw, node, changes, key, words):
    raw = broken(main_flow_raw, node, **changes)
    for name, value in changes.items():
        if value is None:
            del raw[0]["nodes"][node][name]
    problems = dict(validate_flows(raw, queues={"sales"}))
    assert key in problems, problems
    for word in words:
        assert word in problems[key]
    with pytest.raises(FlowError) as info:
        load_flows(raw, queues={"sales"})
    assert key in str(info.value)


def test_missing_prompts_unreachable_nodes_and_loops_without_exit():
    raw = [{
        "name": "loopy", "start": "a",
        "nodes": {
            "a": {"type": "play", "prompt": "hello", "next": "b"},
            "b": {"type": "set", "vars": {"x": 1}, "next": "c"},
            "c": {"type": "branch", "condition": "x >= 1", "then": "a", "else": "b"},
            "orphan": {"type": "hangup"},
        },
    }]
    problems = dict(validate_flows(raw, prompt_exists=lambda p: p != "hello"))
    assert "prompt 'hello' not found" in problems["flows[0].nodes.a.prompt"]
    assert "unreachable" in problems["flows[0].nodes.orphan"]
    loop = problems["flows[0].nodes.a"]
    assert "loop with no exit" in loop and "flow 'loopy'" in loop
    # a loop with a way out is fine
    raw[0]["nodes"]["c"]["else"] = "orphan"
    problems = dict(validate_flows(raw, prompt_exists=lambda p: True))
    assert problems == {}


def test_structural_mistakes_do_not_crash():
    assert validate_flows({"name": "x"}) == [("flows", "expected an array of tables [[flows]]")]
    problems = dict(validate_flows([{"name": "x", "start": "nope", "nodes": {"a": "not a table"}}, 7,
                                    {"name": "x", "nodes": {}}]))
    assert "does not exist" in problems["flows[0].start"]
    assert "expected a table" in problems["flows[0].nodes.a"]
    assert problems["flows[1]"] == "expected a table"
    assert "duplicate" in problems["flows[2].name"]


class Lottery(NodeType):
    """A plugin's node: plays a text and goes to ``win`` on an even caller number, else ``lose``."""

    target_keys = ("win", "lose")
    prompt_keys = ()
    required = ("win", "lose")

    def enter(self, ctx, node, now):
        ctx.emit(Play(text="Lottery time"))
        ctx.goto(node["win"] if int(ctx.caller[-1]) % 2 == 0 else node["lose"], now)


def test_plugins_register_node_types():
    raw = [{"name": "fun", "start": "draw", "nodes": {
        "draw": {"type": "lottery", "win": "prize", "lose": "bye"},
        "prize": {"type": "queue", "queue": "vip"},
        "bye": {"type": "hangup"},
    }}]
    assert "unknown node type 'lottery'" in dict(validate_flows(raw))["flows[0].nodes.draw.type"]
    flows = load_flows(raw, node_types={"lottery": Lottery})
    assert dict(validate_flows(raw, node_types={"lottery": Lottery(), "x": Lottery})) == {}
    even = FlowSession(flows["fun"], caller="+34600000002", session_id="a").start(0)
    assert [type(c) for c in even] == [Play, EnterQueue, FlowEnded]
    odd = FlowSession(flows["fun"], caller="+34600000001", session_id="b").start(0)
    assert any(isinstance(c, Hangup) for c in odd)


def test_an_unvalidated_runaway_flow_is_hung_up_not_spun_forever():
    from engine.ivr import Flow, node_type_table

    flow = Flow("spin", "a", {"a": {"type": "set", "vars": {}, "next": "b"},
                              "b": {"type": "set", "vars": {}, "next": "a"}}, node_type_table())
    commands = FlowSession(flow, caller="1", session_id="x", max_steps=1000).start(0)
    assert isinstance(commands[0], Hangup) and commands[0].reason == "flow-loop"
    assert commands[-1].outcome == "error"


def test_typed_ahead_digits_are_bounded():
    from engine.ivr import MAX_BUFFERED_DIGITS

    raw = [{"name": "f", "start": "p", "nodes": {
        "p": {"type": "play", "prompt": "long", "next": "c"},
        "c": {"type": "collect", "prompt": "x", "var": "all", "max": 64, "terminator": "", "next": "q"},
        "q": {"type": "queue", "queue": "q"},
    }}]
    s = FlowSession(load_flows(raw)["f"], caller="1", session_id="x")
    s.start(0)
    for _ in range(1000):
        s.digit("5", 1)
    s.playback_done(2)
    s.handle_timer(s.next_timer())
    assert s.variables["all"] == "5" * MAX_BUFFERED_DIGITS


def test_the_engine_registry_object_is_accepted_as_node_types():
    from engine import IvrNodeRegistry

    registry = IvrNodeRegistry()
    assert validate_flows([{"name": "f", "start": "a", "nodes": {"a": {"type": "hangup"}}}],
                          node_types=registry) == []
    registry.add("lottery", Lottery)
    raw = [{"name": "fun", "start": "draw", "nodes": {
        "draw": {"type": "lottery", "win": "bye", "lose": "bye"},
        "bye": {"type": "hangup"},
    }}]
    assert validate_flows(raw, node_types=registry) == []
    flow = load_flows(raw, node_types=registry)["fun"]
    assert isinstance(FlowSession(flow, caller="2", session_id="r").start(0)[0], Play)


_KEYS = ["type", "prompt", "text", "next", "options", "fail", "timeout", "retries", "var", "min", "max",
         "terminator", "vars", "condition", "then", "else", "hours", "open", "closed", "queue", "priority",
         "to", "box", "found", "not_found", "key", "1", "tz", "mon"]
_TYPES = ["play", "menu", "collect", "set", "branch", "schedule", "crm", "queue", "transfer", "voicemail",
          "callback", "hangup", "nope"]
_leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 70), st.sampled_from(_TYPES + ["a", "b", "c"]),
                  st.text(alphabet="ab1#=> ()'", max_size=8))
_value = st.recursive(_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3)),
                      max_leaves=8)
_node = st.dictionaries(st.sampled_from(_KEYS), _value, max_size=6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.fixed_dictionaries({"name": _leaf, "start": _leaf,
                                       "nodes": st.dictionaries(st.sampled_from(["a", "b", "c"]), _node)}),
                max_size=2))
def test_any_flow_shape_gives_problems_never_an_exception(raw):
    for key, message in validate_flows(raw, queues={"q"}, prompt_exists=lambda name: True):
        assert isinstance(key, str) and isinstance(message, str)
