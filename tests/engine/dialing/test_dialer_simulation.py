"""The real pacer on a virtual clock: the compliance and drift properties the issue asks for."""

from __future__ import annotations

import json

import pytest

from engine.dialing.simulate import (ScenarioError, best_fixed_ratio, run_cli, scenario_from_dict,
                                     simulate)

CAP = 0.03


def scenario(**overrides):
    data = {"duration": 7200, "agents": 20, "mode": "predictive", "max_abandon_rate": CAP,
            "called_party": {"answer_rate": 0.30, "ring_time": {"dist": "uniform", "low": 4, "high": 20},
                             "talk_time": {"dist": "exponential", "mean": 180}}}
    party = overrides.pop("called_party", {})
    data.update(overrides)
    data["called_party"].update(party)
    return scenario_from_dict(data)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_predictive_stays_under_the_cap_and_beats_progressive(seed):
    s = scenario(seed=seed)
    predictive = simulate(s)
    progressive = simulate(s, mode="progressive", lines_per_agent=1.0)
    assert predictive.live_answers > 300
    assert predictive.abandon_rate <= CAP
    assert progressive.abandon_rate == 0.0  # one line per ready agent can never abandon
    assert predictive.utilization > progressive.utilization + 0.05


def test_when_the_answer_rate_falls_through_the_day_predictive_stays_under_and_a_fixed_ratio_does_not():
    steady_low = scenario(duration=5400, seed=5, called_party={"answer_rate": 0.15})
    ratio, _ = best_fixed_ratio(steady_low, high=8.0, steps=6)  # the best fixed ratio for a 15% list, in hindsight
    drifting = scenario(duration=5400, seed=5, called_party={"answer_rate": [0.40, 0.15]})
    fixed = simulate(drifting, mode="progressive", lines_per_agent=ratio)
    predictive = simulate(drifting)
    assert fixed.abandon_rate > CAP
    assert predictive.abandon_rate <= CAP
    assert predictive.live_answers > 300


def test_cli_prints_the_contract_figures_as_json(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(
        "duration = 1800\nseed = 1\nagents = 5\nmode = \"progressive\"\nmax_abandon_rate = 0.03\n"
        "[called_party]\nanswer_rate = [0.4, 0.2]\nmachine_rate = 0.2\n"
        "ring_time = { dist = \"uniform\", low = 4, high = 20 }\n"
        "talk_time = { dist = \"exponential\", mean = 120 }\n")
    assert run_cli([str(path), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    for key in ("utilization", "abandon_rate", "dialed", "answered", "abandoned", "calls_per_agent_hour"):
        assert key in figures
    assert 0 < figures["utilization"] < 1
    assert figures["abandoned"] == 0 and figures["abandon_rate"] == 0.0
    assert figures["answered"] >= figures["machine_answers"] > 0
    assert figures["dialed"] > figures["answered"]


def test_cli_reports_a_bad_scenario_with_the_key_and_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("agnets = 4\nmode = \"turbo\"\n[called_party]\nanswer_rate = 1.5\n")
    assert run_cli([str(path), "--json"]) == 2
    err = capsys.readouterr().err
    assert "agnets: unknown key; did you mean 'agents'?" in err
    assert "mode: expected preview | progressive | predictive" in err
    assert "called_party.answer_rate" in err


def test_distribution_tables_are_checked():
    with pytest.raises(ScenarioError, match="talk_time.dist"):
        scenario_from_dict({"called_party": {"talk_time": {"dist": "gaussian", "mean": 3}}})
    with pytest.raises(ScenarioError, match="needs key 'mean'"):
        scenario_from_dict({"called_party": {"talk_time": {"dist": "exponential"}}})
