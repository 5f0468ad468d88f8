import numpy as np
import pytest

from neuromod.model.muscle import strength
from neuromod.model.scores import depth_for_score, expected_score
from neuromod.model.skin import (
    dynamic_target_depth,
    skin_response,
    strain_ratio_for_depth,
)


@pytest.fixture(scope="module")
def masseter_course():
    """A real masseter plan: Botox 30 U per side (published range 20-40 U per side), one year."""
    from neuromod import parse_plan, simulate

    result = simulate(parse_plan({"product": "botox", "areas": {"masseter": 60}}), days=365)
    j = result.muscles.index("masseter_left")
    return result.output.atrophy[0, j], result.output.blocked_fraction[0, j]


def test_a_masseter_plan_thins_the_muscle_most_at_two_to_three_months(masseter_course):
    """Published (mechanism.csv masseter-thickness, Xie): thickness -33 % at 3 months after 20-40 U
    per side, thinnest at ~77 days. Through the label-range plan the model's whole-muscle bulk
    loss is 16.5 % at day 90 (printed by ``neuromod simulate PLAN --json``, ``muscles.masseter_left.atrophy``):
    about half the published thickness loss; its calibration anchor is whole-muscle volume
    (-12 % after three injections, test_long_term.py). Checked here: the nadir falls in days 60-95
    (published ~77) and the loss at day 90 is 12-22 % (the model's value +-30 %)."""
    atrophy, _ = masseter_course
    assert 60 <= int(np.argmax(atrophy)) <= 95
    assert 0.12 <= atrophy[90] <= 0.22
    assert np.all(np.diff(atrophy[:60]) >= 0)


def test_atrophy_fades_more_slowly_than_it_builds(masseter_course):
    """After the same plan the loss builds to half its peak within weeks while the muscle is
    blocked, and takes months to fade to half once the block has worn off."""
    atrophy, blocked = masseter_course
    peak = atrophy.max()
    half_built = int(np.flatnonzero(atrophy >= peak / 2)[0])
    half_faded = int(np.argmax(atrophy) + np.flatnonzero(atrophy[np.argmax(atrophy):] <= peak / 2)[0])
    block_gone = int(np.argmax(blocked) + np.flatnonzero(blocked[np.argmax(blocked):] < 0.05)[0])
    assert half_built < 30
    assert half_faded - block_gone > 2 * half_built  # fading takes longer than building
    assert atrophy[block_gone] > 0.5 * peak  # still more than half left when the block has gone


def test_strength_falls_with_block_and_atrophy():
    assert strength(0.0, 0.0) == 1.0
    assert strength(0.5, 0.0) == pytest.approx(0.5)
    assert strength(0.5, 0.2) == pytest.approx(0.4)


def test_expected_score_is_monotone_and_inverts(params):
    depths = np.linspace(0, 0.4, 200)
    scores = expected_score(depths, params.scores)
    assert np.all(np.diff(scores) >= 0)
    within = depths <= params.scores.cutpoints_mm[-1]
    assert np.all(np.diff(scores[within]) > 0)
    assert scores[0] < 0.2 and scores[-1] > 2.9
    for grade in (0.5, 1.0, 2.0, 2.5, 2.9):
        assert expected_score(depth_for_score(np.array(grade), params.scores), params.scores) == pytest.approx(grade, abs=1e-3)


def test_film_wrinkles_gradually_around_the_onset_strain(params):
    """The onset strain varies across the area (logistic, scale w = skin.onset_strain_spread):
    well below the mean onset no fold, well above it the single-film law h*sqrt(ratio - 1)
    (Cerda & Mahadevan 2003), and in between a finite slope (no fold reappearing all at once)."""
    h, w = params.skin.film_thickness_mm, params.skin.onset_strain_spread
    assert dynamic_target_depth(np.array(0.4), params.skin) < 0.01 * h  # 7.5 w below the onset
    assert dynamic_target_depth(np.array(2.0), params.skin) == pytest.approx(h, rel=1e-3)  # h*sqrt(2-1)
    assert dynamic_target_depth(np.array(1.0), params.skin) == pytest.approx(h * np.sqrt(w * np.log(2.0)))
    ratio = np.linspace(0.5, 2.0, 301)
    depth = dynamic_target_depth(ratio, params.skin)
    assert np.all(np.diff(depth) > 0)
    assert np.max(np.diff(depth) / np.diff(ratio)) < 2.0 * h / np.sqrt(w)  # finite slope at the onset
    for r in (0.3, 0.9, 1.0, 1.5, 3.7):
        assert strain_ratio_for_depth(dynamic_target_depth(np.array(r), params.skin), params.skin) == pytest.approx(r)


def test_creases_fade_slowly_and_return_quickly(params):
    """Hysteresis: after folding stops the elastic fold flattens within days but the crease's
    memory lingers for weeks; when folding resumes the line is back within about a day."""
    days = np.arange(0, 61.0)
    force = np.where((days >= 1) & (days < 30), 0.0, 1.0)[None, None, :]
    state = skin_response(days, force, np.array([[3.0]]), np.array([[0.05]]), np.ones((1, 1)), params.skin)
    dyn = state.dynamic_depth[0, 0]
    full = dyn[0]
    share = params.skin.crease_memory_share
    assert dyn[3] < 0.5 * full  # most of the fold is gone 2 days after folding stopped
    assert dyn[3] > 0.7 * share * full  # ... but the crease memory is still there
    assert dyn[15] > 0.1 * share * full  # and lingers for two weeks
    # all but gone after four weeks: the memory's 25 % of the fold times exp(-28 d / 18 d) = 5.3 %,
    # plus the fold of the weakest-onset skin at zero force (~0.04 %)
    assert dyn[29] < 0.055 * full
    assert dyn[32] > 0.8 * full  # back within two days of folding


def test_static_lines_deepen_with_folding_and_repair_without(params):
    days = np.arange(0, 3651.0, 5.0)
    folding = np.ones((1, 1, days.size))
    resting = np.zeros((1, 1, days.size))
    start = np.array([[0.06]])
    deepened = skin_response(days, folding, np.array([[3.0]]), start, np.ones((1, 1)), params.skin).static_depth
    repaired = skin_response(days, resting, np.array([[3.0]]), start, np.ones((1, 1)), params.skin).static_depth
    assert deepened[0, 0, -1] > start[0, 0] > repaired[0, 0, -1]
    smoker = skin_response(days, folding, np.array([[3.0]]), start, np.full((1, 1), 2.0), params.skin).static_depth
    assert smoker[0, 0, -1] > deepened[0, 0, -1]
