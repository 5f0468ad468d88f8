"""The trial's faster rater draws and grading (issue 10) give the numbers the previous code gave.

The seed-for-seed equality of whole trials is guarded by ``tests/fixtures/trial_regression.json``
(``tests/test_trial_speed.py``); these check the identities the faster code relies on, bit for bit.
"""

import numpy as np
import pytest

from neuromod.model.scores import grade
from neuromod.trials.population import (
    enrol,
    investigator_grades,
    perceived_depth,
    subject_grades,
)
from neuromod.trials.trial import parse_trial, prepare_arm


@pytest.mark.parametrize("shape", [(1000, 1, 14), (64, 9), (7,)])
def test_normal_is_scale_times_standard_normal_bit_for_bit(shape):
    """NumPy's Generator draws ``normal(0, sd, size)`` as ``0 + sd * z`` from the same standard
    normals ``standard_normal(size)`` gives, and leaves the stream at the same place: drawing the
    standard normals first and scaling them (in place) is the same stream."""
    sd = 0.0371
    drawn, scaled = np.random.default_rng(11), np.random.default_rng(11)
    expected = drawn.normal(0.0, sd, shape)
    got = scaled.standard_normal(shape)
    got *= sd
    assert np.array_equal(expected, got)
    assert drawn.random() == scaled.random()  # the streams go on identically


def test_grade_counts_cut_points_passed_as_the_reduction_did(params):
    """``grade`` (one comparison per cut-point, in place) against the definition it replaced,
    ``(depth[..., None] > cuts).sum(-1)``: depths on and around every cut-point, far out, NaN."""
    cuts = np.asarray(params.scores.cutpoints_mm)
    rng = np.random.default_rng(2)
    depths = np.concatenate([rng.normal(cuts.mean(), 0.3, 5040), cuts, np.nextafter(cuts, -np.inf),
                             np.nextafter(cuts, np.inf), [-1.0, 0.0, 10.0, np.inf, -np.inf, np.nan]])
    for shaped in (depths, depths[:5040].reshape(360, 1, 14), depths[-6:]):
        reference = (shaped[..., None] > cuts).sum(axis=-1)
        got = grade(shaped, params.scores)
        assert got.dtype == reference.dtype == np.int64
        assert np.array_equal(got, reference)
    assert set(np.unique(grade(depths, params.scores))) == {0, 1, 2, 3}
    scalar = grade(float(cuts[1]) + 1e-6, params.scores)
    assert isinstance(scalar, np.integer) and scalar == 2


def test_raters_from_the_callers_normals_equal_raters_drawing_them(params):
    """The enrolment grades the subject's baseline from standard normals drawn for the whole batch
    (then selected): the same grades and perceived depths as drawing them at the call."""
    rng = np.random.default_rng(5)
    depth = rng.uniform(0.0, 1.0, (300, 9))
    shared, persistent = rng.normal(0.0, 0.05, depth.shape), rng.normal(0.0, 0.04, depth.shape)
    for function in (investigator_grades, subject_grades, perceived_depth):
        drawing, given = np.random.default_rng(8), np.random.default_rng(8).standard_normal(depth.shape)
        expected = function(depth, drawing, params, shared, persistent)
        assert np.array_equal(expected, function(depth, None, params, shared, persistent, given))
        rows = np.arange(0, 300, 3)
        assert np.array_equal(expected[rows], function(depth[rows], None, params, shared[rows], persistent[rows],
                                                       given[rows]))


def test_enrolment_keeps_the_streams_and_the_first_eligible(face_map, params):
    """Enrolling 500 then drawing on gives the same next numbers whatever the cohort size within one
    batch would suggest: every random number of a batch is drawn, eligible or not (the streams'
    positions after enrolment equal those after drawing the batch's numbers in full). And the
    enrolled are those the inclusion rule admits: investigator grade 2-3 on the scored area."""
    spec = parse_trial({"arms": [{"name": "a", "product": "botox", "areas": {"glabella": 20}}]})
    prepared = prepare_arm(spec.arms[0], face_map, params)
    rng, visit_rng = np.random.default_rng([4, 0, 0]), np.random.default_rng([4, 0, 0, 3])
    cohort = enrol(spec.population, 500, len(face_map.areas), prepared.scored, rng, params, visit_rng)
    assert cohort.female.size == 500
    assert np.all(cohort.baseline_inv[:, prepared.scored] >= 2)
    # one batch of 1,000 (twice the number wanted): 11 draws of 1,000 and 4 of 1,000 x 9 areas on
    # the cohort's stream, 3 of 1,000 x 9 and 1 of 1,000 on the visits' stream
    n, areas = 1000, len(face_map.areas)
    twin, twin_visit = np.random.default_rng([4, 0, 0]), np.random.default_rng([4, 0, 0, 3])
    twin.random(n), twin.uniform(0.0, 1.0, n)
    twin.choice(3, size=n, p=[0.5, 0.3, 0.2]), twin.choice(3, size=n, p=[0.5, 0.3, 0.2])
    twin.standard_normal((n, areas)), twin.standard_normal((n, areas)), twin.standard_normal(3 * n)
    twin.standard_normal((n, areas)), twin.standard_normal((n, areas)), twin.standard_normal(2 * n)
    twin_visit.standard_normal((3, n, areas)), twin_visit.standard_normal(n)
    assert rng.random() == twin.random()
    assert visit_rng.random() == twin_visit.random()


def test_enrolment_rates_the_scored_areas_as_rating_every_area_would(face_map, params):
    """Enrolment computes the baseline lines and grades of the scored areas only (the others are
    ``NOT_RATED`` / NaN). With inclusion not by grade (``baseline: any``: the same subjects enrol
    whatever is scored), a cohort scored on the glabella and forehead has, in those areas, bit for bit
    the lines and grades of one scored on all nine, and every other field the same."""
    from neuromod.trials.population import NOT_RATED

    spec = parse_trial({"population": {"baseline": "any"},
                        "arms": [{"name": "a", "product": "botox", "areas": {"glabella": 20, "forehead": 10}}]})
    scored = prepare_arm(spec.arms[0], face_map, params).scored
    every = list(range(len(face_map.areas)))

    def cohort(areas):
        return enrol(spec.population, 300, len(face_map.areas), areas, np.random.default_rng([7, 0, 0]), params,
                     np.random.default_rng([7, 0, 0, 3]))

    some, full = cohort(scored), cohort(every)
    others = [a for a in every if a not in scored]
    for name in ("baseline_inv", "baseline_subj"):
        assert np.array_equal(getattr(some, name)[:, scored], getattr(full, name)[:, scored])
        assert np.all(getattr(some, name)[:, others] == NOT_RATED)
    for name in ("baseline_strain_ratio", "baseline_static_mm"):
        assert np.array_equal(getattr(some.patients, name)[:, scored], getattr(full.patients, name)[:, scored])
        assert np.all(np.isnan(getattr(some.patients, name)[:, others]))
    for name in ("half_block_scale", "light_chain_decay_scale", "availability_scale", "deepening_factor"):
        assert np.array_equal(getattr(some.patients, name), getattr(full.patients, name))
    for name in ("baseline_shared_mm", "persistent_inv_mm", "persistent_subj_mm", "expectation_scale",
                 "onset_threshold", "danger_multiplier", "female", "age"):
        assert np.array_equal(getattr(some, name), getattr(full, name))
    assert len(set(full.baseline_inv[:, scored].ravel().tolist())) >= 3  # grades vary: not vacuous
