"""Dose planning: the smallest dose that reaches a goal, keeps expression and stays safe.

For a described patient, the planner scales the label pattern of each requested area (all
areas by one factor, from half to three times the label dose) and, for each candidate, runs a
virtual cohort of patients *like this one* (same covariates and baseline grades, the
unexplained between-person variation drawn afresh). A candidate is acceptable when

* at day 30 at least ``coverage`` (default 80 %) of the virtual patients reach the goal on every
  requested area (``none_mild``: line depth at maximum contraction below the FWS 1|2 cut-point;
  ``none``: below the 0|1 cut-point),
* with ``hold_until`` (a day after 30), at least half of them still meet the goal on that day
  (the median duration reaches it: a day-30 goal alone favours the smallest doses, which
  wear off soonest),
* the median residual expression at day 30 is at least ``keep_expression`` (fraction of
  baseline movement kept at maximum contraction: "softened, not frozen"),
* the predicted eyelid and brow ptosis risks are under ``max_ptosis_risk``,
* the plan passes every label rule (units per site, session maximum).

The smallest acceptable candidate is returned as a plan that ``simulate`` and ``trial`` accept;
when none is acceptable, the reasons for the closest candidates are returned instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from neuromod.model.simulate import plan_injections, run_model
from neuromod.model.spread import spread
from neuromod.reference.anatomy import FaceMap, load_face_map
from neuromod.reference.parameters import ModelParameters, default_parameters
from neuromod.reference.products import get_product
from neuromod.schemas.patient import PatientDescription
from neuromod.schemas.plan import Plan, PlanError, parse_plan
from neuromod.trials.population import Cohort, cohort_like

#: Label (or typical) onabotulinumtoxinA units per area: Botox Cosmetic label for glabella 20,
#: forehead 20, crow's feet 24 and platysma 26-36 (-> 30); typical doses of published/anatomy.csv
#: for the others (bunny lines 2-4 per side, perioral 4-6, DAO 2-3 per side, mentalis 4-10,
#: masseter 20-40 per side).
REFERENCE_ONA_UNITS = {
    "glabella": 20.0, "forehead": 20.0, "crows_feet": 24.0, "bunny_lines": 6.0, "perioral": 5.0,
    "marionette": 5.0, "chin": 7.0, "platysma": 30.0, "masseter": 60.0,
}
SCALES = (0.5, 0.625, 0.75, 0.875, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)
Goal = Literal["none_mild", "none"]


@dataclass(frozen=True)
class Candidate:
    scale: float
    areas: dict[str, float]
    goal_rate: dict[str, float]
    expression: dict[str, float]
    held_rate: dict[str, float]
    eyelid_ptosis_risk: float
    brow_ptosis_risk: float
    problems: list[str] = field(default_factory=list)

    @property
    def acceptable(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class PlanningResult:
    plan: Plan | None
    chosen: Candidate | None
    candidates: list[Candidate]
    explanation: str


def _evaluate(plan: Plan, description: PatientDescription, goal: Goal, hold_until: int | None, n: int, seed: int,
              face_map: FaceMap, params: ModelParameters,
              cohort: Cohort | None = None) -> tuple[dict, dict, dict, float, float]:
    result = spread(face_map, plan_injections(plan.points(face_map), plan), plan.product_info.spread_factor,
                    params.spread)
    if cohort is None:
        cohort = cohort_like(description, n, face_map.areas, np.random.default_rng(seed), params)
    n = cohort.patients.count
    doses = np.repeat(result.dose_per_muscle[None, :], n, axis=0)
    danger = {name: [j for j, r in enumerate(face_map.regions) if r.danger == name]
              for name in ("eyelid_ptosis", "brow_ptosis")}
    columns = [j for cols in danger.values() for j in cols]
    doses[:, columns] *= cohort.danger_multiplier[:, None]
    days = np.arange(0.0, max(61.0, (hold_until or 0) + 1.0))
    output = run_model(days, np.array([0.0]), doses[:, None, :], cohort.patients, face_map, params, result.profile)
    cut = params.scores.cutpoints_mm[1 if goal == "none_mild" else 0]
    areas = list(plan.areas)
    goal_rate, expression, held_rate = {}, {}, {}
    for area in areas:
        a = face_map.areas.index(area)
        goal_rate[area] = float((output.contraction_depth_mm[:, a, 30] < cut).mean())
        if hold_until:
            held_rate[area] = float((output.contraction_depth_mm[:, a, hold_until] < cut).mean())
        expression[area] = float(np.median(output.area_strength[:, a, 30]))
    risks = []
    for name, threshold in (("eyelid_ptosis", params.population.eyelid_ptosis_block),
                            ("brow_ptosis", params.population.brow_ptosis_block)):
        present = [k for k, j in enumerate(output.muscle_index) if j in danger[name]]
        blocked = output.blocked_fraction[:, present].max(axis=(1, 2)) if present else np.zeros(n)
        risks.append(float((blocked > threshold).mean()))
    return goal_rate, expression, held_rate, risks[0], risks[1]


def plan_dose(
    description: PatientDescription,
    areas: list[str],
    product: str,
    goal: Goal = "none_mild",
    keep_expression: float = 0.0,
    coverage: float = 0.8,
    max_ptosis_risk: float = 0.02,
    hold_until: int | None = None,
    n: int = 400,
    seed: int = 0,
    params: ModelParameters | None = None,
    face_map: FaceMap | None = None,
    cohort: Cohort | None = None,
) -> PlanningResult:
    """Search the smallest label-pattern dose meeting the goal (see module docstring).

    cohort: the virtual patients to judge candidates on (default: ``n`` fresh patients like
    ``description``, :func:`neuromod.trials.population.cohort_like`); personal predictions pass
    the patient's posterior twins (:func:`neuromod.trials.personal.suggest_next_dose`).
    """
    params = params or default_parameters()
    face_map = face_map or load_face_map()
    info = get_product(product)
    unknown = [a for a in areas if a not in REFERENCE_ONA_UNITS]
    if unknown:
        raise PlanError(f"areas: unknown area(s) {', '.join(unknown)}; allowed: {', '.join(REFERENCE_ONA_UNITS)}")
    if not info.contains_toxin:
        raise PlanError("product: placebo cannot reach a treatment goal")
    if hold_until is not None and not 30 < hold_until <= 365:
        raise PlanError(f"hold_until: must be a day from 31 to 365, got {hold_until}")
    candidates = []
    for scale in SCALES:
        units = {a: round(REFERENCE_ONA_UNITS[a] * scale * info.units_per_ona_unit, 1) for a in areas}
        try:
            plan = parse_plan({"patient": description.model_dump(), "product": product, "areas": units})
        except PlanError as error:
            candidates.append(Candidate(scale, units, {}, {}, {}, 0.0, 0.0, [f"label rules: {error}"]))
            continue
        goal_rate, expression, held_rate, eyelid, brow = _evaluate(plan, description, goal, hold_until, n, seed,
                                                                    face_map, params, cohort)
        problems = []
        for area in areas:
            if goal_rate[area] < coverage:
                problems.append(f"{area}: {goal_rate[area]:.0%} of similar patients reach {goal} at day 30 "
                                f"(need {coverage:.0%})")
            if hold_until and held_rate[area] < 0.5:
                problems.append(f"{area}: {held_rate[area]:.0%} of similar patients still at {goal} on day {hold_until} "
                                "(need 50 %)")
            if expression[area] < keep_expression:
                problems.append(f"{area}: keeps {expression[area]:.0%} of movement (asked for >= {keep_expression:.0%})")
        if max(eyelid, brow) > max_ptosis_risk:
            problems.append(f"ptosis risk {max(eyelid, brow):.1%} above the bound {max_ptosis_risk:.1%}")
        candidate = Candidate(scale, units, goal_rate, expression, held_rate, eyelid, brow, problems)
        candidates.append(candidate)
        if candidate.acceptable:
            return PlanningResult(plan, candidate, candidates, "")
    shown = candidates[::3] + ([candidates[-1]] if len(candidates) % 3 != 1 else [])
    explanation = ("no dose from 0.5x to 3x the label pattern meets every requirement; "
                   + "; ".join(f"x{c.scale:g} ({', '.join(f'{a} {u:g} U' for a, u in c.areas.items())}): "
                               + " | ".join(c.problems) for c in shown))
    return PlanningResult(None, None, candidates, explanation)
