"""The virtual-trial runner: the contract, determinism, endpoint definitions."""

import json

import numpy as np
import pytest
import yaml

from neuromod.trials.calibrate import load_rows, trial_documents, wilson_interval
from neuromod.trials.trial import (
    INTERPOLATED,
    SURVIVAL,
    TrialError,
    grouped_median,
    kaplan_meier_median,
    kaplan_meier_median_counts,
    kaplan_meier_survival,
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


VISITS_4_MONTHS = np.array([30, 60, 90, 120, 150, 180, 210.0])


def _survival_of(event_visit_index, n_visits=VISITS_4_MONTHS.size):
    """Product-limit survival at each visit for subjects with an event at the given visit index
    (no censoring)."""
    events = np.bincount(event_visit_index, minlength=n_visits)
    return kaplan_meier_survival(np.zeros(n_visits, dtype=np.int64), events)


def test_grouped_median_equals_the_step_median_where_the_crossing_is_mid_class():
    # 100 subjects; 25 events at 90, 50 at 120, 25 at 150: survival 0.75 after 90, 0.25 after 120,
    # the 0.5 crossing is in the middle of the class (90, 120]: both read 120
    index = np.repeat([2, 3, 4], [25, 50, 25])
    survival = _survival_of(index)
    assert survival[2:5] == pytest.approx([0.75, 0.25, 0.0])
    step = kaplan_meier_median_counts(VISITS_4_MONTHS, np.zeros(7, dtype=np.int64), np.bincount(index, minlength=7))
    assert step == 120
    assert grouped_median(VISITS_4_MONTHS, survival, start=0.0) == pytest.approx(120.0)
    assert grouped_median(VISITS_4_MONTHS, np.ones(7), start=0.0) is None


def test_grouped_median_moves_by_days_where_the_step_median_jumps_a_visit():
    """Two of 100 subjects moved from the 120-day visit to the 150-day one carry the crossing past
    120: the step median jumps 30 days, the continuous one moves by a few days and stays within
    half a class (15 days) of the step median."""
    before = np.repeat([2, 3, 4], [10, 41, 49])  # survival 0.49 after 120: median 120
    after = np.repeat([2, 3, 4], [10, 39, 51])  # 0.51 after 120: median 150
    zeros = np.zeros(7, dtype=np.int64)
    steps = [kaplan_meier_median_counts(VISITS_4_MONTHS, zeros, np.bincount(i, minlength=7)) for i in (before, after)]
    continuous = [grouped_median(VISITS_4_MONTHS, _survival_of(i), start=0.0) for i in (before, after)]
    assert steps == [120.0, 150.0]
    assert abs(continuous[1] - continuous[0]) < 5.0
    for step, value in zip(steps, continuous):
        assert abs(value - step) <= 15.0 + 1e-9


def test_interpolated_medians_stay_within_half_a_class_of_the_step_medians_in_a_real_arm(small_result):
    glabella = small_result["arms"]["ona-20"]["areas"]["glabella"]
    visits = SMALL["follow_up_days"]
    for name in SURVIVAL:
        step, value = glabella[name], glabella[name + INTERPOLATED]
        assert step is not None and value is not None, name
        i = visits.index(int(step))
        previous = visits[i - 1] if i else 0
        assert previous <= value <= step + (step - previous) / 2, name
    onset, diary = glabella["median_onset_days" + INTERPOLATED], glabella["median_onset_days"]
    assert abs(onset - diary) <= 1.0  # the diary median is a whole day; its continuous reading within the day


def test_the_onset_median_read_continuously_lies_within_a_day_of_the_diary_median():
    """The onset median of a daily diary, read continuously (:func:`grouped_median` on day
    classes), lies within the day whose end the diary median reads, in 50 random diaries."""
    from neuromod.trials.trial import _median_onset, _median_onset_interpolated

    rng = np.random.default_rng(5)
    for _ in range(50):
        n = int(rng.integers(20, 400))
        days = np.minimum(rng.geometric(rng.uniform(0.2, 0.7), size=n), 30)
        never = rng.uniform(size=n) < 0.1
        histogram = np.bincount(np.where(never, 31, days), minlength=32)
        diary = _median_onset(histogram)
        value = _median_onset_interpolated(histogram)
        if diary is None:
            continue
        assert diary - 1.0 <= value <= diary + 0.5 + 1e-9


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
