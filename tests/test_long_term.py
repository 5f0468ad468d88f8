"""Schedules over years, the natural-look metric and the treated-vs-untreated projection."""

import pytest

from neuromod import PlanError, parse_plan, simulate
from neuromod.trials.projection import project


def test_every_days_expands_to_a_schedule_within_the_horizon():
    plan = parse_plan({"product": "botox", "areas": {"glabella": 20}, "every_days": 120, "until_day": 3650})
    assert plan.treatment_days[:3] == [0.0, 120.0, 240.0]
    assert plan.treatment_days[-1] == 3600.0 and len(plan.treatment_days) == 31


def test_every_days_respects_the_label_interval_and_is_not_mixed_with_days():
    with pytest.raises(PlanError, match="repeat no sooner than 90 days"):
        parse_plan({"product": "botox", "areas": {"glabella": 20}, "every_days": 60})
    with pytest.raises(PlanError, match="every_days: give either every_days or treatment_days"):
        parse_plan({"product": "botox", "areas": {"glabella": 20}, "every_days": 120, "treatment_days": [0]})
    with pytest.raises(PlanError, match="until_day"):
        parse_plan({"product": "botox", "areas": {"glabella": 20}, "every_days": 120, "until_day": 5000})


def test_residual_expression_falls_with_dose_and_is_reported():
    low = simulate(parse_plan({"product": "botox", "areas": {"glabella": 10}}), days=30)
    high = simulate(parse_plan({"product": "botox", "areas": {"glabella": 30}}), days=30)
    kept = lambda r: r.to_json()["areas"]["glabella"]["residual_expression"][14]  # noqa: E731
    assert 0 < kept(high) < kept(low) < 1
    assert simulate(parse_plan({"product": "placebo", "areas": {"glabella": 0}}), days=5).to_json()[
        "areas"]["glabella"]["residual_expression"][3] == 1.0


@pytest.fixture(scope="module")
def ten_years():
    return project(parse_plan({"product": "botox", "areas": {"glabella": 20}}), years=10, every_days=120)


def test_ten_year_projection_softens_treated_static_lines_below_untreated(ten_years):
    table = ten_years.yearly()["glabella"]
    assert table[-1]["treated_rest"] < table[-1]["untreated_rest"] - 0.5
    assert table[-1]["treated_rest"] < table[0]["treated_rest"]  # softens under regular treatment
    assert table[-1]["untreated_rest"] > table[0]["untreated_rest"]  # deepens with age when untreated


def test_smokers_untreated_lines_deepen_faster(ten_years):
    smoker = project(parse_plan({"product": "botox", "areas": {"glabella": 20},
                                 "patient": {"smoking": "current", "sun_exposure": "high"}}), years=10)
    assert smoker.yearly()["glabella"][-1]["untreated_rest"] > ten_years.yearly()["glabella"][-1]["untreated_rest"]


def test_antibody_risk_matches_the_published_rate_and_grows_with_dose_and_frequency(params):
    """Botox 20 U glabella, three treatments 120 days apart: published 0.4 % (3/810, safety.csv);
    the model's cumulative risk must fall within 0.2-0.8 % (the 95 % interval of 3/810 is 0.1-1.1 %)."""
    import numpy as np

    from neuromod.model.antibodies import cumulative_risk, seroconversion_probability

    risk = lambda units, days, male=False, immuno=1.0: float(cumulative_risk(  # noqa: E731
        seroconversion_probability(np.full(len(days), units), np.array(days, float), immuno, male, params.antibodies))[0])
    label = risk(20, [0, 120, 240])
    assert 0.002 <= label <= 0.008
    assert risk(60, [0, 120, 240]) > label  # more antigen per cycle
    assert risk(20, [0, 90, 180]) > label  # shorter intervals
    assert risk(20, [0, 120, 240], male=True) > label  # men 0.9 % vs 0.5 % overall
    assert risk(40, [0, 120, 240], immuno=0.2) < label  # Daxxify: none neutralizing in its trials


def test_antibodies_cause_secondary_non_response_in_a_trial(params):
    """With seroconversion made common (rate x300, a stress setting), later cycles stop working."""
    from neuromod.reference.parameters import apply_overrides
    from neuromod.trials.trial import parse_trial, run_trial

    stressed = apply_overrides(params, {"antibodies.rate_per_treatment": 0.45})
    spec = parse_trial({"seed": 2, "subjects_per_arm": 400, "population": {"sex": "female"},
                        "arms": [{"name": "a", "product": "botox", "areas": {"glabella": 20},
                                  "treatment_days": [0, 120, 240]}],
                        "follow_up_days": [30, 150, 270]})
    normal = run_trial(spec, progress=False)["arms"]["a"]
    immune = run_trial(spec, params=stressed, progress=False)["arms"]["a"]
    assert immune["adverse_events_pct"]["neutralizing_antibodies"] > 50
    assert normal["adverse_events_pct"]["neutralizing_antibodies"] < 3
    day30 = lambda arm: arm["areas"]["glabella"]["inv_none_mild"]["30"]  # noqa: E731
    day270 = lambda arm: arm["areas"]["glabella"]["inv_none_mild"]["270"]  # noqa: E731
    assert abs(day30(immune) - day30(normal)) < 8  # the first cycle is untouched
    assert day270(immune) < day270(normal) - 20  # the third cycle fails in many


def _masseter_course(units_per_side: float, days: int):
    result = simulate(parse_plan({"product": "botox", "areas": {"masseter": 2 * units_per_side},
                                  "treatment_days": [0, 180, 360]}), days=days)
    return result.output.atrophy[0, result.muscles.index("masseter_left")]


def test_masseter_thins_after_each_of_three_injections_and_regains_in_part():
    """Three label-range masseter injections (30 U per side) 6 months apart: the bulk is thinnest
    ~2.5 months after each (mechanism.csv masseter-nadir: 77 days) and partly regained by the next,
    and each cycle thins it at least as much as the first."""
    loss = _masseter_course(30, 540)
    assert loss[77] > loss[180] > 0.02 and loss[437] > loss[540] > 0.02
    assert loss[437] >= loss[77] - 0.005


@pytest.mark.xfail(strict=True, reason="known miss (README, Retraining): the model regains the bulk within a "
                   "year of the last injection (0.3 % left at day 720), Chang 2019 found 12 % one year after the third")
def test_masseter_volume_one_year_after_three_injections():
    """Chang 2019 (mechanism.csv masseter-volume-3x): whole-masseter volume -12 % one year after the
    third of three injections 6 months apart (24 U per side, 3D CT, n = 6). Accepted range 7-17 %
    (tolerance: +-5 points, about 2.5 standard errors of the mean change: paired P = 0.002 with
    n = 6 puts the SD of the change near 5 % of the volume). The model's disuse atrophy is regained
    as one exponential fitted to the 12-24-week return after one injection (muscle.py), so nothing
    of it is left after a year; the strict xfail turns red once a slower regain is modelled."""
    loss = _masseter_course(24, 720)
    assert 0.07 <= loss[720] <= 0.17
