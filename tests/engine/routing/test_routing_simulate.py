"""The ACD simulator drives the real Router; its figures must agree with queueing theory.

Method (docs/routing.md, "Checked against theory"): each model is simulated as 8 independent
replications (seeds 1-8) of 50 hours after a one hour warm-up (~10,000 calls each, ~80,000 in all);
the mean of the replications and its 95% confidence interval (Student t, 7 degrees of freedom) are
compared with the formula. Service level must be within 2% (relative) of theory; the test also checks
that its interval is no wider than 3% (it is ~1.5% on average), so the comparison can see a bias of
that size. The mean wait is
far noisier (its 95% interval is about +-15% for Erlang C at this budget; +-2% would need ~20,000
simulated hours): it must be within 2% or, where wider, within its own 95% interval. The abandon
rate (Erlang A) likewise. The seeds are fixed, so the test is deterministic.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from engine.routing.erlang import erlang_a, erlang_b, erlang_c
from engine.routing.simulate import ScenarioError, run_cli, simulate

RATE = 200 / 3600   # 200 calls per hour
AHT = 180.0
SEEDS = tuple(range(1, 9))      # independent replications
HOURS = 50                      # measured hours per replication, after a one hour warm-up
T_975 = {7: 2.3646}             # Student t quantile for a two-sided 95% interval, by degrees of freedom


def test_erlang_formulas_match_published_reference_values():
    # R package ErlangC 0.1.0 and the standard Erlang B table (A=10 Erl, 17 lines: 1.29% blocked)
    c = erlang_c(14, RATE, AHT, 20)
    assert c.wait_probability == pytest.approx(0.1741319, abs=1e-6)
    assert c.service_level == pytest.approx(0.88835, abs=1e-5)
    assert c.asa == pytest.approx(7.836, abs=1e-3)
    assert erlang_b(17, 10) == pytest.approx(0.0129, abs=1e-4)
    a = erlang_a(13, RATE, AHT, 300, 20)
    assert a.abandon_probability == pytest.approx(0.0250, abs=2e-4)
    assert a.wait_probability == pytest.approx(0.2258, abs=2e-4)
    assert a.occupancy == pytest.approx(0.75, abs=1e-3)
    # infinite patience turns Erlang A into Erlang C
    limit = erlang_a(14, RATE, AHT, 1e12, 20)
    assert limit.service_level == pytest.approx(c.service_level, abs=1e-6)
    assert limit.asa == pytest.approx(c.asa, rel=1e-5)
    with pytest.raises(ValueError):
        erlang_c(9, RATE, AHT, 20)


def test_erlang_a_tagged_caller_chain_agrees_with_the_stationary_queue():
    # two independent routes to the same figures: the tagged caller's position chain (used for ASA and
    # service level) must give the abandon probability theta * E[queue] / rate (Little's law), and its
    # uniformized transient must match a plain Runge-Kutta integration of the same chain
    from engine.routing.erlang import _stationary, _transient
    agents, mu, theta = 13, 1 / AHT, 1 / 300
    pi = _stationary(agents, RATE, mu, theta)
    queue = sum((n - agents) * p for n, p in enumerate(pi) if n > agents)
    abandoned = 0.0
    for j, p in enumerate(pi[agents:], start=1):
        served = 1.0
        for position in range(j, 0, -1):
            up = agents * mu + (position - 1) * theta
            served *= up / (up + theta)
        abandoned += p * (1 - served)
    assert abandoned == pytest.approx(theta * queue / RATE, rel=1e-9)
    assert erlang_a(agents, RATE, AHT, 300, 20).abandon_probability == pytest.approx(abandoned, rel=1e-9)

    start = pi[agents:]
    size = len(start)

    def slope(x: list[float]) -> list[float]:
        d = [0.0] * (size + 2)   # positions, then served, abandoned
        for j in range(size):
            up = agents * mu + j * theta
            d[j] -= x[j] * (up + theta)
            d[size if j == 0 else j - 1] += x[j] * up
            d[size + 1] += x[j] * theta
        return d

    x, h = list(start) + [0.0, 0.0], 20 / 200
    for _ in range(200):
        k1 = slope(x)
        k2 = slope([a + h / 2 * b for a, b in zip(x, k1)])
        k3 = slope([a + h / 2 * b for a, b in zip(x, k2)])
        k4 = slope([a + h * b for a, b in zip(x, k3)])
        x = [a + h / 6 * (b + 2 * c + 2 * d + e) for a, b, c, d, e in zip(x, k1, k2, k3, k4)]
    served_by_t, abandoned_by_t = _transient(agents, mu, theta, start, 20)
    assert served_by_t == pytest.approx(x[size], rel=1e-8)
    assert abandoned_by_t == pytest.approx(x[size + 1], rel=1e-8)


def scenario(seed: int, agents: int, patience: float | None) -> dict:
    queue = {"name": "q", "strategy": "longest-idle", "arrival_rate": RATE * 3600,
             "handle_time": {"dist": "exponential", "mean": AHT}, "service_level_seconds": 20}
    if patience is not None:
        queue["patience"] = {"dist": "exponential", "mean": patience}
    return {"duration": HOURS * 3600 + 3600, "warmup": 3600, "seed": seed, "queues": [queue],
            "agents": [{"count": agents, "queues": ["q"]}]}


def replicated(agents: int, patience: float | None) -> dict[str, tuple[float, float]]:
    """(mean over the replications, half-width of its 95% confidence interval) per figure."""
    runs = [simulate(scenario(seed, agents, patience))["queues"]["q"] for seed in SEEDS]
    t = T_975[len(runs) - 1]
    result = {}
    for key in ("service_level", "asa", "abandon_rate", "offered"):
        values = [r[key] for r in runs]
        mean = sum(values) / len(values)
        variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        result[key] = (mean, t * math.sqrt(variance / len(values)))
    return result


def assert_agrees(measured: tuple[float, float], theory: float, what: str) -> None:
    """Within 2% of theory, or within the 95% interval when the interval is wider than that."""
    mean, half_width = measured
    tolerance = max(0.02 * theory, half_width)
    assert abs(mean - theory) <= tolerance, (
        f"{what}: simulated {mean:.4f} +- {half_width:.4f} (95%), theory {theory:.4f}")


def test_mmc_matches_erlang_c():
    theory = erlang_c(14, RATE, AHT, 20)
    sim = replicated(14, None)
    assert sim["offered"][0] * len(SEEDS) > 70_000
    # the service level is measured about as precisely as the 2% tolerance (its interval is ~1.5% wide
    # on average over seed sets; 3% here so that a change of seeds cannot make this fail), and agrees
    assert sim["service_level"][1] < 0.03 * theory.service_level
    assert abs(sim["service_level"][0] - theory.service_level) <= 0.02 * theory.service_level
    assert_agrees(sim["asa"], theory.asa, "ASA")
    assert sim["abandon_rate"][0] == 0


def test_mmc_with_exponential_patience_matches_erlang_a():
    theory = erlang_a(13, RATE, AHT, 300, 20)
    sim = replicated(13, 300)
    assert sim["service_level"][1] < 0.03 * theory.service_level
    assert abs(sim["service_level"][0] - theory.service_level) <= 0.02 * theory.service_level
    assert_agrees(sim["asa"], theory.asa, "ASA")
    assert_agrees(sim["abandon_rate"], theory.abandon_probability, "abandon rate")


def test_schedules_skills_and_per_agent_figures():
    data = {
        "duration": 8 * 3600, "seed": 5,
        "queues": [
            {"name": "es", "strategy": "skills", "target": "es >= 50", "arrival_rate": 30,
             "handle_time": {"dist": "lognormal", "mean": 200, "sigma": 0.5}, "wrapup": 15},
            {"name": "en", "strategy": "round-robin", "arrival_rate": 40,
             "handle_time": {"dist": "uniform", "low": 60, "high": 240},
             "patience": {"dist": "fixed", "value": 120}},
        ],
        "agents": [
            {"name": "morning", "count": 3, "queues": ["es", "en"], "skills": {"es": 80}, "shifts": [[0, 14400]]},
            {"name": "afternoon", "count": 3, "queues": ["es", "en"], "skills": {"es": 60},
             "shifts": [[14400, 28800]]},
            {"name": "english", "count": 2, "queues": ["en"]},
        ],
    }
    figures = simulate(data)
    agents = figures["agents"]
    assert set(agents) == {"morning-1", "morning-2", "morning-3", "afternoon-1", "afternoon-2", "afternoon-3",
                           "english-1", "english-2"}
    assert all(a["handled"] > 0 for a in agents.values())
    assert all(0 < a["occupancy"] <= 1 for a in agents.values())
    assert 0 < figures["occupancy"] < 1
    es, en = figures["queues"]["es"], figures["queues"]["en"]
    for q in (es, en):
        assert q["answered"] + q["abandoned"] + q["refused"] <= q["offered"]
    assert es["abandoned"] == 0  # no patience configured: nobody gives up
    assert en["abandoned"] > 0
    assert es["answered"] > 0.9 * es["offered"]
    assert en["aht"] == pytest.approx(150, rel=0.1)
    # fixed patience of 120 s: nobody who was answered waited longer than that
    assert en["asa"] < 120


def test_cli_json_has_the_contract_keys(tmp_path, capsys):
    path = tmp_path / "scenario.toml"
    path.write_text(
        'duration = 3600\nseed = 1\n[[queues]]\nname = "q"\nstrategy = "longest-idle"\narrival_rate = 100.0\n'
        'handle_time = { dist = "exponential", mean = 120 }\npatience = { dist = "exponential", mean = 300 }\n'
        'service_level_seconds = 20\n[[agents]]\ncount = 5\nqueues = ["q"]\n', encoding="utf-8")
    assert run_cli([str(path), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures["queues"]["q"]) >= {"offered", "answered", "abandoned", "service_level", "asa",
                                           "abandon_rate"}
    assert 0 <= figures["occupancy"] <= 1
    q = figures["queues"]["q"]
    assert q["abandon_rate"] == pytest.approx(q["abandoned"] / q["offered"])
    assert run_cli([str(path)]) == 0
    assert "service level" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('duration = 100\n[[queues]]\nname = "q"\narrival_rate = 10\nstrategy = "fastest"\n', "strategy"),
        ('duration = 100\n[[queues]]\nname = "q"\narrival_rate = 10\nhandle_time = { dist = "gamma", mean = 3 }\n',
         "queues[0].handle_time.dist"),
        ('duration = 100\n[[queues]]\nname = "q"\narrival_rate = -1\n', "queues[0].arrival_rate"),
        ('duration = 100\n[[queues]]\nname = "q"\narrival_rate = 1\n[[agents]]\ncount = 1\nqueues = ["x"]\n',
         "agents[0].queues"),
        ("duration = [", "invalid TOML"),
        ('[[queues]]\nname = "q"\narrival_rate = 1\n[[agents]]\nqueues = ["q"]\nchannels = { voice = "1" }\n',
         "agents[0].channels.voice"),
        ('[[queues]]\nname = "q"\narrival_rate = 1\n[[agents]]\nqueues = ["q"]\nwrapup = "slow"\n', "agents[0].wrapup"),
        ('[[queues]]\nname = "q"\narrival_rate = 1\n[[agents]]\nqueues = ["q"]\nshifts = [[100, 10]]\n',
         "agents[0].shifts"),
        ('[[queues]]\nname = "q"\narrival_rate = 1\npriority_share = { 10 = "half" }\n', "queues[0].priority_share"),
        ('[[queues]]\nname = "q"\narrival_rate = 1\nservice_level_seconds = "20"\n',
         "queues[0].service_level_seconds"),
    ],
)
def test_bad_scenarios_exit_2_naming_the_key(tmp_path, capsys, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    assert run_cli([str(path), "--json"]) == 2
    assert words in capsys.readouterr().err


def test_missing_file_exits_2(tmp_path, capsys):
    assert run_cli([str(tmp_path / "none.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_scenario_error_type_for_embedders():
    with pytest.raises(ScenarioError):
        simulate({"queues": []})
    assert math.isfinite(simulate({"duration": 60, "queues": [{"name": "q", "arrival_rate": 0}]})["occupancy"])


def test_the_module_runs_as_the_cli_would(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('duration = 600\n[[queues]]\nname = "q"\narrival_rate = 60\n[[agents]]\ncount = 2\n'
                    'queues = ["q"]\n', encoding="utf-8")
    repo = Path(__file__).resolve().parents[3]
    code = "import sys; from engine.routing.simulate import run_cli; sys.exit(run_cli(sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", code, str(path), "--json"],
                         check=False, capture_output=True, text=True, cwd=repo, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["queues"]["q"]["offered"] > 0


def test_the_announced_wait_range_holds_the_real_wait_about_80_percent_of_the_time():
    # M/M/10 at 90% load: most callers wait, for about a minute and a half on average
    queue = {"name": "q", "strategy": "longest-idle", "arrival_rate": 180.0,
             "handle_time": {"dist": "exponential", "mean": AHT}}
    figures = simulate({"duration": 200_000, "warmup": 3600, "seed": 1, "measure_wait_estimates": True,
                        "queues": [queue], "agents": [{"count": 10, "queues": ["q"]}]})["queues"]["q"]
    assert figures["wait_estimates"] > 3000
    assert 0.70 <= figures["wait_estimate_coverage"] <= 0.92
    assert figures["wait_estimate_mean_error"] < figures["asa"]
