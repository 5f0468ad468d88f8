"""Safety in every answer: toxin reaching danger muscles, ptosis risk, same-point doses.

Published anchors (data/published/safety.csv): eyelid ptosis after the label glabella dose
(Botox 20 U) in 0.9-5.4 % of trial patients, brow ptosis ~0.5 %; toxin reaching the levator
palpebrae superioris through the orbital septum causes it, so doses at the orbital rim raise it;
the rate is flat across Dysport 50-125 U (Joseph 2021), so it is set by where the points are.
"""

import dataclasses
from importlib import resources

import numpy as np
import pytest

from neuromod import PlanError, load_plan, parse_plan, simulate
from neuromod.model.adverse_events import (assess_safety, breach_doses, cohort_events, draw_breaches,
                                           draw_susceptible, vary_danger_doses)
from neuromod.model.patient import describe_patient, with_product
from neuromod.model.simulate import plan_injections, run_model
from neuromod.model.spread import spread
from neuromod.reference.anatomy import load_face_map
from neuromod.reference.clinical import load_adverse_events
from neuromod.reference.parameters import default_parameters
from neuromod.report.tables import score_table
from neuromod.schemas.patient import PatientDescription
from neuromod.trials.population import cohort_like

LEVATOR = "levator_palpebrae_superioris_left"


def glabella(units, **extra):
    return simulate(parse_plan({"product": "botox", "areas": {"glabella": units}, **extra}), days=90)


@pytest.fixture(scope="module")
def label():
    return glabella(20)


@pytest.fixture(scope="module")
def poor():
    return simulate(load_plan(resources.files("neuromod") / "examples" / "poor_orbital_rim.yaml"), days=90)


def test_label_glabella_plan_is_low_risk(label):
    safety = label.safety
    assert safety.danger_muscles[LEVATOR].peak_blocked_fraction < 0.01
    # within or below the published label-dose rates (0.9-5.4 % eyelid, 0.5-0.6 % brow)
    assert safety.risk["eyelid_ptosis"] < 0.02 and safety.risk["brow_ptosis"] < 0.02
    assert safety.warnings == []


def test_orbital_rim_plan_blocks_the_levator_and_warns(label, poor):
    levator = poor.safety.danger_muscles[LEVATOR]
    assert levator.units > 10 * label.safety.danger_muscles[LEVATOR].units
    # points at the rim cross the septum in most patients (adverse_events.yaml septum_breach)
    assert poor.safety.risk["eyelid_ptosis"] > 0.3 > 0.02 > label.safety.risk["eyelid_ptosis"]
    assert any("eyelid ptosis expected" in w and "crosses the septum" in w for w in poor.safety.warnings)
    # the reported block is the course simulate shows for this patient (same model, same patient)
    j = poor.muscles.index(LEVATOR)
    assert levator.peak_blocked_fraction == pytest.approx(poor.output.blocked_fraction[0, j].max(), abs=0.01)


LOW_FOREHEAD = [{"x_mm": side * 40, "y_mm": 24, "depth_mm": 3, "units": 2} for side in (1, -1)]


def test_eyelid_ptosis_saturates_in_dose_and_glabella_protects_the_brow():
    """Eyelid ptosis is set by where the points are (a septum breach), not their dose: flat
    across 10-40 U (Joseph 2021: 1.2 % at every Dysport dose 50-125 U). Brow ptosis needs the
    lower frontalis weakened more than its depressors, except in the share of people whose brow
    rests on frontalis tone (adverse_events.yaml brow_ptosis.susceptible): after glabella plans
    it comes only from them, so it is low and saturates in dose (Brin 2009 0.6 %, EV-006 0.5 %
    at 20 U); low lateral forehead points alone (no depressor treated) give it in many more
    (Botox Cosmetic label: treat forehead lines together with the glabella)."""
    risks = [glabella(units).safety.risk for units in (10, 20, 30, 40)]
    eyelid = [r["eyelid_ptosis"] for r in risks]
    assert all(b >= a for a, b in zip(eyelid, eyelid[1:])), eyelid  # never falls with dose
    # nearly flat from the label dose up (a breach of a 4-8 U point saturates the levator): twice the
    # label dose within a factor 2 of the label dose's risk (the safety rows' stated error model,
    # docs/calibration.md; measured 1.6x with the stop-16 refit), within the published rates (up to
    # 5.4 %; at the low end Brin 2009's pooled 1.2 % within the same factor 2: the stop-17 fit gives
    # 0.94 % at 20 U); at half the label dose a breached 2 U point mostly stays below the threshold
    assert 0.006 < eyelid[1] and eyelid[-1] < min(0.054, 2.0 * eyelid[1]), eyelid
    brow = [r["brow_ptosis"] for r in risks]
    share = load_adverse_events().events["brow_ptosis"].susceptible.share
    assert all(b >= a for a, b in zip(brow, brow[1:])), brow
    # at 20 U within Brin 2009's 0.6 % by the safety rows' factor 2 (0.53 % measured); twice the
    # dose within a factor 2 of it (0.86 %), and never above the susceptible share
    assert 0.003 <= brow[1] <= 0.012 and brow[-1] <= min(2.0 * brow[1], share), brow
    alone = simulate(parse_plan({"product": "botox", "injections": LOW_FOREHEAD}), days=60).safety.risk
    with_glabella = simulate(parse_plan({"product": "botox", "areas": {"glabella": 20}, "injections": LOW_FOREHEAD}),
                             days=60).safety.risk
    # the glabella dose protects everyone but the susceptible share (21.8 % alone, 0.96 % with it)
    assert alone["brow_ptosis"] > 0.05 > share >= with_glabella["brow_ptosis"], (alone, with_glabella)
    assert alone["eyelid_ptosis"] < 0.001  # forehead points are too far from the orbit to breach the septum


@pytest.mark.parametrize("areas, low, high", [
    # glabella alone: the lifting frontalis (lower and middle) ~30-35 % blocked, near the group's
    # threshold, so about half of the group; with the forehead the middle frontalis is ~85 %
    # blocked, past it in nearly all of the group (0.3 x ~1)
    ({"glabella": 20}, 0.05, 0.3),
    ({"forehead": 20, "glabella": 20}, 0.2, 0.32),
])
def test_susceptible_brows_mix_into_the_risk_as_in_a_sampled_cohort(areas, low, high):
    """The closed form's mixture (share x the lifting frontalis' block above the group's
    threshold + the rest x the depressor rule) against the trial rule on 3000 sampled patients
    who draw their membership: with a share of 0.3 (so the comparison means something; the
    shipped share is 0.01), Botox glabella 20 U alone and with forehead 20 U (whose points reach
    the group through the middle frontalis, which is not a danger muscle), within 3 binomial
    standard errors plus 15 % of the value."""
    params, face_map = default_parameters(), load_face_map()
    shipped = load_adverse_events()
    event = dataclasses.replace(shipped.events["brow_ptosis"],
                                susceptible=dataclasses.replace(shipped.events["brow_ptosis"].susceptible, share=0.3))
    rules = dataclasses.replace(shipped, events={**shipped.events, "brow_ptosis": event})
    plan = parse_plan({"product": "botox", "areas": areas})
    injections = plan_injections(plan.points(face_map), plan)
    result = spread(face_map, injections, 1.0, params.spread)
    n = 3000
    cohort = cohort_like(PatientDescription(), n, face_map.areas, np.random.default_rng(5), params)
    patient = with_product(describe_patient(PatientDescription(), face_map.areas, params), plan.product_info)
    expected = assess_safety(result.dose_per_muscle, result.profile, [0.0], patient, injections, face_map, params,
                             rules).risk["brow_ptosis"]
    doses = vary_danger_doses(np.repeat(result.dose_per_muscle[None, :], n, axis=0), cohort.danger_multiplier,
                              face_map, rules)
    output = run_model(np.arange(0.0, 61.0), np.array([0.0]), doses[:, None, :], cohort.patients, face_map, params,
                       result.profile)
    susceptible = draw_susceptible(n, np.random.default_rng(7), rules)
    sampled = float(cohort_events(output.blocked_fraction, output.muscle_index, face_map, rules,
                                  susceptible)["brow_ptosis"].mean())
    assert low < expected < high, expected  # the susceptible make nearly all of it
    assert abs(sampled - expected) <= 3 * np.sqrt(expected * (1 - expected) / n) + 0.15 * expected, (sampled, expected)


@pytest.mark.parametrize("plan_document, event", [
    ({"product": "botox", "areas": {"glabella": 30}}, "eyelid_ptosis"),
    ({"product": "botox", "injections": LOW_FOREHEAD}, "brow_ptosis"),
])
def test_risk_for_one_patient_matches_a_sampled_cohort_of_similar_patients(plan_document, event):
    """The closed form (quadrature) against the trial rule on 3000 sampled similar patients:
    within 3 binomial standard errors plus 15 % of the value (quadrature and grid error)."""
    params, face_map, rules = default_parameters(), load_face_map(), load_adverse_events()
    plan = parse_plan(plan_document)
    expected = simulate(plan, days=60).safety.risk
    injections = plan_injections(plan.points(face_map), plan)
    result = spread(face_map, injections, 1.0, params.spread)
    n = 3000
    cohort = cohort_like(PatientDescription(), n, face_map.areas, np.random.default_rng(5), params)
    breaches = breach_doses(injections, face_map, rules)
    breached = draw_breaches(n, np.random.default_rng(6), breaches)
    doses = vary_danger_doses(np.repeat(result.dose_per_muscle[None, :], n, axis=0), cohort.danger_multiplier,
                              face_map, rules, breaches, breached)
    output = run_model(np.arange(0.0, 61.0), np.array([0.0]), doses[:, None, :], cohort.patients, face_map, params,
                       result.profile)
    sampled = float(cohort_events(output.blocked_fraction, output.muscle_index, face_map, rules)[event].mean())
    p = expected[event]
    assert 0.01 < p < 0.5, (event, p)  # a risk where the comparison means something
    assert abs(sampled - p) <= 3 * np.sqrt(p * (1 - p) / n) + 0.15 * p, (event, sampled, p)


def test_units_stacked_at_one_point_are_refused_and_near_points_flagged():
    """Sixteen 25 U injections at one site (400 U at one point) are refused by the plan rules
    (entries at one point are summed); 16 entries spread over a few millimetres pass them but
    simulate warns of the sum and predicts the levator block."""
    with pytest.raises(PlanError, match="16 entries at one point"):
        parse_plan({"product": "botox", "injections": [{"site": "glabella_corrugator_mid_left", "units": 25}] * 16})
    cluster = [{"x_mm": 25 + 0.25 * k, "y_mm": 18, "depth_mm": 5, "units": 20} for k in range(16)]
    stacked = simulate(parse_plan({"product": "botox", "injections": cluster}), days=60)
    assert any("320 onabotulinumtoxinA-equivalent units at one point" in w and "25 U per-point limit" in w
               for w in stacked.safety.warnings), stacked.safety.warnings
    # an intact septum still lets a 320 U cluster block a large share of the levator (0.42 with the
    # stop-16 refit; the label plan blocks ~1e-5 of it)
    assert stacked.safety.danger_muscles[LEVATOR].peak_blocked_fraction > 0.3
    near = [{"x_mm": 27, "y_mm": 18, "units": 15, "depth_mm": 5}, {"x_mm": 30, "y_mm": 18, "units": 15, "depth_mm": 5}]
    far = [near[0], {**near[1], "x_mm": 39}]
    warned = simulate(parse_plan({"product": "botox", "injections": near}), days=30).safety.warnings
    assert any("30 onabotulinumtoxinA-equivalent units" in w for w in warned)  # 3 mm apart: one point
    assert not any("per-point" in w for w in simulate(parse_plan({"product": "botox", "injections": far}),
                                                       days=30).safety.warnings)  # 12 mm apart


def test_json_and_table_carry_the_safety_block(label, poor):
    doc = poor.to_json()
    assert {"days", "areas", "muscles", "lost_units", "antibody_risk_pct", "disclaimer"} <= set(doc)
    safety = doc["safety"]
    # typical placement: the septum holds (units through it, small block); the risk is the breach's
    assert 0.001 < safety["danger_muscles"][LEVATOR]["units"] < 0.05
    assert 0.0 < safety["danger_muscles"][LEVATOR]["peak_blocked_fraction"] < 0.3
    assert safety["eyelid_ptosis_risk_pct"] > 30 and 0 <= safety["brow_ptosis_risk_pct"] <= 100
    assert safety["warnings"] and safety["block_thresholds"]["eyelid_ptosis"] == 0.3
    # the brow's second rule is shown where its risk is: the susceptible share and its threshold
    group = load_adverse_events().events["brow_ptosis"].susceptible
    assert safety["susceptible"] == {"brow_ptosis": {"share": group.share, "block_threshold": group.block_threshold,
                                                     "who": group.who,
                                                     "muscles": ["frontalis_lower", "frontalis_middle"]}}
    table = score_table(label)
    assert f"> {group.block_threshold:.0%} of frontalis lower or middle in the {group.share:.0%} {group.who}" in table
    risk = label.safety.risk["eyelid_ptosis"]
    assert "safety (model estimate" in table and f"eyelid ptosis risk {100 * risk:.1f}%" in table and LEVATOR in table
    assert "WARNING" in score_table(poor)


EXAMPLE_PLANS = sorted(p.name for p in (resources.files("neuromod") / "examples").iterdir() if p.name.endswith(".yaml"))


def _safety_both_ways(plan):
    """The plan's safety with the coarse-to-fine search of the risk grid and on the full grid."""
    params, face_map, rules = default_parameters(), load_face_map(), load_adverse_events()
    from neuromod.model.adverse_events import assess_safety
    from neuromod.model.patient import describe_patient, with_product, with_product

    injections = plan_injections(plan.points(face_map), plan)
    result = spread(face_map, injections, plan.product_info.spread_factor, params.spread)
    patient = with_product(describe_patient(plan.patient, face_map.areas, params), plan.product_info)
    return [assess_safety(result.dose_per_muscle, result.profile, plan.treatment_days, patient, injections, face_map,
                          params, rules, refine=refine) for refine in (True, False)]


@pytest.mark.parametrize("plan_source", EXAMPLE_PLANS + ["low_forehead", "glabella_forehead_60_twice"])
def test_refined_risk_grid_gives_the_full_grids_numbers(plan_source):
    """The refined search integrates only the grid points the risk reads (~a sixth of the 729
    rows); each row is integrated on its own, so risks, danger-muscle blocks and warnings equal
    the full grid's (tolerance 1e-12: the same arithmetic), including brow ptosis (net block)
    and a repeated treatment."""
    if plan_source == "low_forehead":  # brow ptosis risk > 5 %
        plan = parse_plan({"product": "botox", "injections": LOW_FOREHEAD})
    elif plan_source == "glabella_forehead_60_twice":
        plan = parse_plan({"product": "botox", "areas": {"glabella": 40, "forehead": 20}, "treatment_days": [0, 90]})
    else:
        plan = load_plan(resources.files("neuromod") / "examples" / plan_source)
    refined, full = _safety_both_ways(plan)
    assert refined.risk.keys() == full.risk.keys()
    for name in full.risk:
        assert refined.risk[name] == pytest.approx(full.risk[name], abs=1e-12)
    for key, muscle in full.danger_muscles.items():
        assert refined.danger_muscles[key].peak_blocked_fraction == pytest.approx(muscle.peak_blocked_fraction, abs=1e-12)
    assert refined.warnings == full.warnings


@pytest.mark.parametrize("muscles, message", [
    ({"value": ["frontalis_lower", "frontalis_nowhere"], "source": "x"},
     "events.brow_ptosis.susceptible.muscles: unknown muscle(s) frontalis_nowhere; allowed: muscles.csv muscle names"),
    ({"value": ["frontalis_lower"]}, "events.brow_ptosis.susceptible.muscles: must be a mapping with value"),
    ({"value": [], "source": "x"}, "events.brow_ptosis.susceptible.muscles: must be a non-empty list"),
])
def test_a_susceptible_group_with_bad_muscles_is_refused_in_one_line(muscles, message):
    """The susceptible group's lifting muscles are checked when adverse_events.yaml is read: names
    from muscles.csv, with a source; the error names the field."""
    from neuromod.reference.clinical import _susceptible

    entry = {"who": "whose brow rests on frontalis tone", "muscles": muscles,
             "share": {"value": 0.01, "unit": "1", "source": "x"},
             "block_threshold": {"value": 0.3, "unit": "1", "source": "x"}}
    with pytest.raises(ValueError) as error:
        _susceptible(entry, "events.brow_ptosis.susceptible")
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
    assert load_adverse_events().events["brow_ptosis"].susceptible.muscles == ("frontalis_lower", "frontalis_middle")
