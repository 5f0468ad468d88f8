"""The virtual-trial runner: the contract, determinism, endpoint definitions."""

import json

import numpy as np
import pytest
import yaml

from neuromod.trials.calibrate import load_rows, trial_documents, wilson_interval
from neuromod.trials.trial import (
    TrialError,
    kaplan_meier_median,
    parse_trial,
    run_trial,
)

SMALL = {
    "name": "small",
    "seed": 11,
    "subjects_per_arm": 600,
    "population": {"sex": "female"},
    "arms": [
        {"name": "ona-20", "product": "botox", "areas": {"glabella": 20}},
        {"name": "placebo", "product": "placebo", "areas": {"glabella": 0}},
    ],
    "follow_up_days": [1, 2, 4, 7, 14, 30, 60, 90, 120, 150, 180, 252],
}


@pytest.fixture(scope="module")
def small_result():
    return run_trial(parse_trial(SMALL), progress=False)


def test_output_follows_the_contract(small_result):
    assert set(small_result["arms"]) == {"ona-20", "placebo"}
    arm = small_result["arms"]["ona-20"]
    assert arm["n"] == 600
    glabella = arm["areas"]["glabella"]
    for name in ("inv_none_mild", "subj_none_mild", "inv_ge1_grade", "composite_ge2_grade", "subj_onset_by_day"):
        assert list(glabella[name]) == [str(d) for d in SMALL["follow_up_days"]], name
        assert all(0.0 <= v <= 100.0 for v in glabella[name].values()), name
    for name in ("median_onset_days", "median_duration_among_day30_responders",
                 "median_days_to_return_to_baseline", "median_days_to_loss_of_none_mild"):
        assert name in glabella
    assert set(arm["adverse_events_pct"]) == {"eyelid_ptosis", "brow_ptosis", "neutralizing_antibodies"}
    kept = glabella["residual_expression_pct"]
    assert kept["30"] < 50 < small_result["arms"]["placebo"]["areas"]["glabella"]["residual_expression_pct"]["30"]
    json.dumps(small_result)  # serialisable as is


def test_same_seed_same_numbers_other_seed_other_numbers(small_result):
    again = run_trial(parse_trial(SMALL), progress=False)
    assert again == small_result
    other = run_trial(parse_trial({**SMALL, "seed": 12}), progress=False)
    assert other["arms"]["ona-20"]["areas"] != small_result["arms"]["ona-20"]["areas"]


def test_chunks_are_seeded_independently_of_where_they_run():
    spec = parse_trial({**SMALL, "subjects_per_arm": 2100})  # three chunks per arm
    in_order = run_trial(spec, progress=False)
    from neuromod.trials.trial import simulate_chunk

    reversed_runner = lambda jobs: [simulate_chunk(*args) for args in jobs[::-1]][::-1]  # noqa: E731
    assert run_trial(spec, progress=False, chunk_runner=reversed_runner) == in_order


def test_placebo_responds_a_little_through_rater_noise_only(small_result):
    placebo = small_result["arms"]["placebo"]["areas"]["glabella"]
    active = small_result["arms"]["ona-20"]["areas"]["glabella"]
    assert 0 < placebo["inv_none_mild"]["30"] < 15
    assert placebo["composite_ge2_grade"]["30"] < 3
    assert placebo["subj_onset_by_day"]["30"] == 0  # nobody feels a weakening without toxin
    assert active["inv_none_mild"]["30"] > 60


def test_composite_endpoint_is_stricter_than_none_mild(small_result):
    glabella = small_result["arms"]["ona-20"]["areas"]["glabella"]
    for day in ("14", "30", "60"):
        assert glabella["composite_ge2_grade"][day] < glabella["inv_none_mild"][day]


def test_onset_accumulates_and_effect_wears_off(small_result):
    glabella = small_result["arms"]["ona-20"]["areas"]["glabella"]
    onset = list(glabella["subj_onset_by_day"].values())
    assert all(a <= b for a, b in zip(onset, onset[1:]))
    assert glabella["inv_none_mild"]["30"] > glabella["inv_none_mild"]["180"]


def test_kaplan_meier_median_with_censoring():
    times = np.array([30, 60, 60, 90, 120, 120, 150, 180.0])
    observed = np.array([True, True, False, True, True, False, True, False])
    # survival: 7/8 after 30, 7/8*6/7=0.75 after 60, 0.75*4/5=0.6 after 90, 0.6*2/3=0.4 after 120
    assert kaplan_meier_median(times, observed) == 120
    assert kaplan_meier_median(times, np.zeros(8, dtype=bool)) is None


def test_wilson_interval_matches_the_formula():
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(40.38, abs=0.01) and high == pytest.approx(59.62, abs=0.01)
    low, high = wilson_interval(0, 45)
    assert low == 0 and high == pytest.approx(7.87, abs=0.01)


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"arms": [{"name": "a", "product": "botax", "areas": {"glabella": 20}}]}, "arms.0 (a): product: unknown product"),
        ({"arms": [{"name": "a", "product": "botox", "areas": {"glabella": 20}, "treatment_days": [0, 30]}]},
         "repeat no sooner than 90 days"),
        ({"follow_up_days": [30, 14]}, "follow_up_days: Value error, must be strictly increasing"),
        ({"subjects_per_arm": 0}, "subjects_per_arm: must be greater than or equal to 1, got 0; allowed: a whole number, 1-10,000,000"),
        ({"population": {"sex": "female", "age": [12, 40]}}, "population.age"),
    ],
)
def test_bad_trial_files_are_refused(change, fragment):
    with pytest.raises(TrialError) as error:
        parse_trial({**SMALL, **change})
    assert fragment.replace("Value error, ", "") in str(error.value)


def test_shipped_trial_files_are_the_calibration_trials():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "trials"
    documents = trial_documents(load_rows())
    assert {p.stem for p in folder.glob("*.yaml")} == set(documents)
    for key, document in documents.items():
        assert yaml.safe_load((folder / f"{key}.yaml").read_text()) == json.loads(json.dumps(document)), key


def _summary_bytes(summary):
    arrays = [summary.improvement, summary.expression, summary.onset, *summary.counts.values(), *summary.survival.values()]
    return sum(a.nbytes for a in arrays)


def test_arm_summaries_add_up_exactly_and_do_not_grow_with_subjects():
    """Trials keep counts, not subjects: memory is bounded however many subjects (1e7 as 1e3)."""
    from neuromod.trials.trial import summarize

    rng = np.random.default_rng(3)
    visits = [1, 7, 14, 30, 60, 90, 120, 180]
    n, scored = 900, 2
    grades = lambda: rng.integers(0, 4, (n, scored, len(visits)))  # noqa: E731
    records = (grades(), grades(), rng.random((n, scored, len(visits))), rng.integers(2, 4, (n, scored)),
               rng.integers(2, 4, (n, scored)), rng.random((n, scored, len(visits))),
               np.where(rng.random((n, scored)) < 0.8, rng.integers(1, 181, (n, scored)), np.inf),
               {"eyelid_ptosis": rng.random(n) < 0.02})
    whole = summarize(*records, visits)
    split = [summarize(*(r[:300] if not isinstance(r, dict) else {k: v[:300] for k, v in r.items()} for r in records), visits),
             summarize(*(r[300:] if not isinstance(r, dict) else {k: v[300:] for k, v in r.items()} for r in records), visits)]
    merged = split[0] + split[1]
    assert merged.n == whole.n == n
    for name in whole.counts:
        np.testing.assert_array_equal(merged.counts[name], whole.counts[name])
    for name in whole.survival:
        np.testing.assert_array_equal(merged.survival[name], whole.survival[name])
    np.testing.assert_array_equal(merged.onset, whole.onset)
    np.testing.assert_allclose(merged.expression, whole.expression, rtol=1e-12)
    assert merged.events == whole.events
    assert _summary_bytes(split[0]) == _summary_bytes(whole) == _summary_bytes(merged)
