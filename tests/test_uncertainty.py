"""Intervals beside every endpoint of a virtual trial (neuromod.trials.uncertainty, docs/trials.md).

Through a real trial (Botox 20 U glabella against placebo, visits to day 120): no draws gives
run_trial's document exactly; with draws from a stated posterior every interval contains its
point estimate and the parameter interval opens where the parameters act; the Monte Carlo
interval narrows with subjects as 1/sqrt(n) (Wilson; tolerance 25 % on the ratio of widths).
"""

import json
import math
import os
import subprocess
import sys

import pytest

from neuromod.reference.parameters import ParameterUncertainty
from neuromod.trials.trial import parse_trial, run_trial
from neuromod.trials.uncertainty import draw_parameters, trial_with_intervals

TRIAL = {"name": "intervals", "seed": 5, "subjects_per_arm": 300, "population": {"sex": "mixed"},
         "arms": [{"name": "ona", "product": "botox", "areas": {"glabella": 20}},
                  {"name": "placebo", "product": "placebo", "areas": {"glabella": 0}}],
         "follow_up_days": [7, 30, 120]}
#: a stated posterior (not the shipped fit's): the duration's two main parameters, log SD 0.2 and 0.15
POSTERIOR = ParameterUncertainty(
    ("junction.half_block_fraction_of_typical_dose", "junction.light_chain_half_life_days"), (0.2, 0.15),
    ((1.0, -0.3), (-0.3, 1.0)), "stated for the test")


def _walk(values, intervals):
    """(point, interval) pairs of every endpoint, per visit where it is per visit."""
    for name, value in values.items():
        if isinstance(value, dict):
            for day, v in value.items():
                yield f"{name}@{day}", v, intervals[name][day]
        else:
            yield name, value, intervals[name]


def _inside(point, bounds):
    low, high = bounds
    if point is None:
        return high is None
    return (low is None or low <= point + 1e-9) and (high is None or point - 1e-9 <= high)


def test_no_draws_gives_the_plain_trial_document():
    spec = parse_trial(TRIAL)
    assert trial_with_intervals(spec, draws=0, progress=False) == run_trial(spec, progress=False)


@pytest.fixture(scope="module")
def with_intervals():
    return trial_with_intervals(parse_trial(TRIAL), draws=4, subjects_per_draw=200, uncertainty=POSTERIOR,
                                progress=False)


def test_every_endpoint_has_both_intervals_containing_its_point_estimate(with_intervals):
    plain = run_trial(parse_trial(TRIAL), progress=False)
    assert with_intervals["intervals"]["parameter_draws"] == 4
    assert with_intervals["intervals"]["subjects_per_draw"] == 200
    for arm, data in with_intervals["arms"].items():
        assert data["areas"] == plain["arms"][arm]["areas"]  # the existing keys are unchanged
        assert data["adverse_events_pct"] == plain["arms"][arm]["adverse_events_pct"]
        pairs = [*_walk(data["areas"]["glabella"], data["intervals"]["areas"]["glabella"]),
                 *_walk(data["adverse_events_pct"], data["intervals"]["adverse_events_pct"])]
        assert len(pairs) >= 30
        for name, point, interval in pairs:
            assert set(interval) == {"parameter", "monte_carlo"}, name
            assert _inside(point, interval["parameter"]), (arm, name, point, interval)
            assert _inside(point, interval["monte_carlo"]), (arm, name, point, interval)


def test_parameter_interval_opens_where_the_drawn_parameters_act(with_intervals):
    """The half-block amount and the light chain's half-life set how many subjects are still
    improved at day 120; placebo does not depend on them (same subjects, no toxin)."""
    active = with_intervals["arms"]["ona"]["intervals"]["areas"]["glabella"]["inv_ge1_grade"]["120"]["parameter"]
    placebo = with_intervals["arms"]["placebo"]["intervals"]["areas"]["glabella"]["inv_ge1_grade"]["120"]["parameter"]
    assert active[1] - active[0] > 2.0
    assert placebo[1] - placebo[0] < 1e-9


def test_draws_follow_the_posterior_and_stay_in_the_bounds():
    from neuromod.reference.parameters import default_parameters

    params = default_parameters()
    sets = draw_parameters(params, POSTERIOR, 400, seed=1)
    logs = [math.log(p.junction.light_chain_half_life_days / params.junction.light_chain_half_life_days) for p in sets]
    sd = (sum(x * x for x in logs) / len(logs)) ** 0.5
    assert 0.12 < sd < 0.18  # stated 0.15; 400 draws: +-0.01 standard error, clipped at the 15-day bound
    assert all(15.0 <= p.junction.light_chain_half_life_days <= 60.0 for p in sets)
    assert draw_parameters(params, POSTERIOR, 3, seed=1) == sets[:3]


def test_monte_carlo_interval_narrows_with_subjects():
    small = trial_with_intervals(parse_trial({**TRIAL, "subjects_per_arm": 200}), draws=1, subjects_per_draw=100,
                                 uncertainty=POSTERIOR, progress=False)
    large = trial_with_intervals(parse_trial({**TRIAL, "subjects_per_arm": 2000}), draws=1, subjects_per_draw=100,
                                 uncertainty=POSTERIOR, progress=False)
    width = lambda doc: (lambda b: b[1] - b[0])(  # noqa: E731
        doc["arms"]["ona"]["intervals"]["areas"]["glabella"]["inv_none_mild"]["120"]["monte_carlo"])
    ratio = width(small) / width(large)
    assert abs(ratio - math.sqrt(10)) / math.sqrt(10) < 0.25, ratio


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "neuromod.cli", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, MPLBACKEND="Agg"), timeout=300)


def test_trial_command_draws_option(tmp_path):
    trial = tmp_path / "t.yaml"
    trial.write_text(json.dumps({**TRIAL, "subjects_per_arm": 100}))
    plain = _cli("trial", trial, "--json", "--parameter-draws", 0)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout) == json.loads(json.dumps(run_trial(parse_trial({**TRIAL, "subjects_per_arm": 100}),
                                                                       progress=False)))
    default = _cli("trial", trial, "--json", "--parameter-draws", 2, "--draw-subjects", 50)
    assert default.returncode == 0, default.stderr
    doc = json.loads(default.stdout)
    point = doc["arms"]["ona"]["areas"]["glabella"]["inv_none_mild"]["30"]
    interval = doc["arms"]["ona"]["intervals"]["areas"]["glabella"]["inv_none_mild"]["30"]
    assert _inside(point, interval["monte_carlo"]) and doc["intervals"]["level"] == 0.95
    assert interval["parameter"] is None or _inside(point, interval["parameter"])  # None: no posterior shipped
    for option, value, message in (("--parameter-draws", 201, "--parameter-draws: must be less than or equal to 200"),
                                   ("--parameter-draws", -1, "--parameter-draws: must be greater than or equal to 0"),
                                   ("--draw-subjects", 0, "--draw-subjects: must be greater than or equal to 1")):
        bad = _cli("trial", trial, "--json", option, value)
        assert bad.returncode == 2 and bad.stderr.startswith(f"error: {message}"), bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
