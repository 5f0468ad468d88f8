"""Schedules over years, the natural-look metric and the treated-vs-untreated projection."""

import pytest

from neuromod import PlanError, parse_plan, simulate
from neuromod.projection import project


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
