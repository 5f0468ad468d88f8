"""Predictions an injector can trust (issue 11): ptosis from its mechanism, flat in dose.

Published anchors (src/neuromod/data/published/safety.csv): eyelid ptosis 1.2 % at every
Dysport glabella dose 50-125 U with no trend (Joseph 2021), 0.9-5.4 % after Botox 20 U
(Brin 2009 pooled 1.2 %, Carruthers 2002 5.4 %), 0.9-2.0 % after Daxxify 40 U; brow ptosis
~0.5 % after glabella doses (Brin 2009, EV-006). Brow and eyelid ptosis have different muscles
(lower frontalis, levator) and causes (elevator weakened more than its depressors; toxin across
the orbital septum).
"""

import pytest

from neuromod import parse_plan, simulate
from neuromod.trials.trial import parse_trial, run_trial


def risk(product: str, units: float, **extra) -> dict[str, float]:
    """The closed-form risks (0-1) for the typical patient: exact, no sampling noise."""
    return simulate(parse_plan({"product": product, "areas": {"glabella": units}, **extra}), days=60).safety.risk


@pytest.mark.parametrize("product, doses, low, high, spread", [
    # Joseph 2021: 1.2 % at every dose; tolerance a factor 2 either way (no n in safety.csv), and
    # the highest dose at most 1.6x the lowest ("no dose trend": the trial's arms of ~80-90
    # subjects could not tell 1.2 % from 1.9 %)
    ("dysport", (50, 75, 100, 125), 0.006, 0.024, 1.6),
    # Botox 20-80 U: within the published label-dose range 0.9-5.4 %, at most 2.5x from 20 to 80 U
    ("botox", (20, 40, 80), 0.009, 0.054, 2.5),
])
def test_eyelid_ptosis_is_low_and_nearly_flat_across_published_dose_ranges(product, doses, low, high, spread):
    eyelid = [risk(product, units)["eyelid_ptosis"] for units in doses]
    assert all(low <= r <= high for r in eyelid), eyelid
    assert all(b >= a for a, b in zip(eyelid, eyelid[1:])), eyelid  # never falls with dose
    assert eyelid[-1] <= spread * eyelid[0], eyelid


def test_virtual_trial_arms_show_no_dose_trend():
    """The trial runner (sampled breaches, the compiled kernel) agrees: Dysport 50 and 125 U
    arms of 2000 subjects both within a factor 2 of 1.2 %, and their difference within 1.5
    points (binomial s.e. of each ~0.25 points)."""
    spec = {"name": "ptosis-dose", "seed": 11, "subjects_per_arm": 2000, "follow_up_days": [14, 30],
            "population": {"sex": "mixed", "age": [18, 75], "baseline": "moderate_or_severe"},
            "arms": [{"name": f"d{u}", "product": "dysport", "areas": {"glabella": u}} for u in (50, 125)]}
    arms = run_trial(parse_trial(spec), progress=False)["arms"]
    eyelid = [arms[f"d{u}"]["adverse_events_pct"]["eyelid_ptosis"] for u in (50, 125)]
    brow = [arms[f"d{u}"]["adverse_events_pct"]["brow_ptosis"] for u in (50, 125)]
    assert all(0.6 <= r <= 2.4 for r in eyelid), eyelid
    assert abs(eyelid[1] - eyelid[0]) <= 1.5, eyelid
    assert all(b < e for b, e in zip(brow, eyelid)), (brow, eyelid)  # glabella plans: brow rarer


def test_brow_ptosis_is_driven_by_its_own_muscle():
    """Glabella plans (their depressors blocked) give less brow than eyelid ptosis at every dose;
    low lateral forehead points alone (the lower frontalis, no depressor) give brow ptosis and
    no eyelid ptosis (45 mm from the orbit: no septum breach)."""
    for units in (20, 40, 80):
        r = risk("botox", units)
        assert r["brow_ptosis"] < r["eyelid_ptosis"], (units, r)
    low_forehead = [{"x_mm": side * 40, "y_mm": 24, "depth_mm": 3, "units": 2} for side in (1, -1)]
    alone = simulate(parse_plan({"product": "botox", "injections": low_forehead}), days=60).safety.risk
    assert alone["brow_ptosis"] > 0.05 and alone["eyelid_ptosis"] < 0.001, alone


def test_a_point_at_the_orbital_rim_raises_eyelid_ptosis_whatever_its_dose():
    """Proximity, not dose: the label pattern with its mid-corrugator points moved to the rim
    (y 1 mm, 10 mm from the levator's centre) breaches in most patients even at 2 U per point."""
    rim = [{"x_mm": side * 30, "y_mm": 1, "depth_mm": 3, "units": 2} for side in (1, -1)]
    r = simulate(parse_plan({"product": "botox", "injections": rim}), days=60).safety.risk
    assert r["eyelid_ptosis"] > 10 * risk("botox", 20)["eyelid_ptosis"], r


def glabella_course(units: float, days: int = 365):
    return simulate(parse_plan({"product": "botox", "areas": {"glabella": units}}), days=days).courses["glabella"]


def test_onset_never_comes_after_the_peak_from_1_unit_to_twice_the_label_dose():
    """Onset (strength down by scores.onset_strength_drop) <= peak (start of the plateau of a
    noticeable effect) at every dose from 1 U to 40 U (twice the label 20 U, the top of the
    published dose-ranging arms); at 1 U the plateau used to be dated a day before the onset."""
    for units in (1, 2, 3, 5, 10, 20, 40):
        course = glabella_course(units, days=180)
        assert course.onset_day is not None and course.peak_day is not None, units
        assert course.onset_day <= course.peak_day, (units, course.onset_day, course.peak_day)


def test_the_effect_returns_over_weeks_not_at_once():
    """Typical patient, Botox 20 U: full effect by ~2 weeks (peak day <= 16), and after the
    plateau no rise of more than X = 0.7 grade (expected FWS at contraction) within any 14 days.
    X is what the smooth wrinkle onset (skin.onset_strain_spread) achieves with today's rater
    noise (0.63 measured; 0.89 with the single onset strain, two-thirds of the 1.5-grade effect);
    a shared per-visit rater noise should bring it under 0.5 (docs/calibration.md, Course shape)."""
    course = glabella_course(20)
    fws = course.fws_contraction
    assert course.peak_day <= 16
    assert fws[0] - fws[int(course.peak_day)] > 1.0  # a real effect
    assert max(fws[d + 14] - fws[d] for d in range(int(course.peak_day), fws.size - 14)) <= 0.7
