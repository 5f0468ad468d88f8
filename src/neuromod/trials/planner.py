"""Dose planning: the smallest dose that reaches a goal, keeps expression and stays safe.

For a described patient, the planner scales the reference pattern of each requested area
(``data/planning.yaml``: the label dose, or a typical one, split over the area's standard
sites) by one factor, from a documented floor (half the label dose: the smallest dose with
published efficacy data) to a ceiling (three times), in geometric steps (8 per doubling, 9 %
apart). It evaluates the candidates from the smallest up and returns the first acceptable one,
so the answer is the smallest acceptable dose of the searched set, and every smaller
candidate is listed with the reason it was rejected. When even the floor is acceptable it
says so, and why it searches no lower.

For each candidate a virtual cohort of patients *like this one* (same covariates and baseline
grades, the unexplained between-person variation drawn afresh, seeded) is simulated. A
candidate is acceptable when

* on the goal day (30) at least ``coverage`` (default 80 %) of them reach the goal on every
  requested area: FWS grade at maximum contraction at most the goal's grade (``none_mild``:
  1, ``none``: 0), the same "none/mild" rule as the trial endpoints;
* with ``hold_until`` (a day after the goal day), at least half of them still meet it then;
* the median residual expression on the goal day is at least ``keep_expression`` (fraction
  of baseline movement kept at maximum contraction: "softened, not frozen");
* the predicted eyelid and brow ptosis risks (:func:`neuromod.model.adverse_events.assess_safety`,
  the numbers ``simulate`` reports for the same plan and patient) are at most ``max_ptosis_risk``;
* the plan passes every label rule (units per site, session maximum).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neuromod.model.adverse_events import SafetyAssessment, assess_safety, vary_danger_doses
from neuromod.model.patient import describe_patient, with_product
from neuromod.model.scores import grade
from neuromod.model.simulate import plan_injections, run_model
from neuromod.model.spread import spread
from neuromod.reference.anatomy import FaceMap, load_face_map
from neuromod.reference.clinical import PlanningTables, load_adverse_events, load_planning
from neuromod.reference.parameters import ModelParameters, default_parameters
from neuromod.reference.products import get_product
from neuromod.schemas.patient import PatientDescription
from neuromod.schemas.plan import Plan, PlanError, parse_plan
from neuromod.trials.population import Cohort, cohort_like


@dataclass(frozen=True)
class Evaluation:
    """What the cohort of similar patients and the safety assessment say about one plan.

    goal_rate, held_rate: area -> share (0-1) of similar patients at the goal on the goal day /
    on the hold-until day (empty without one); expression: area -> median residual expression
    on the goal day; safety: the described patient's :class:`SafetyAssessment`.
    """

    goal_rate: dict[str, float]
    held_rate: dict[str, float]
    expression: dict[str, float]
    safety: SafetyAssessment

    @property
    def eyelid_ptosis_risk(self) -> float:
        return self.safety.risk.get("eyelid_ptosis", 0.0)

    @property
    def brow_ptosis_risk(self) -> float:
        return self.safety.risk.get("brow_ptosis", 0.0)


@dataclass(frozen=True)
class Candidate:
    """One searched dose: ``scale`` times the reference pattern, ``areas`` in product units.

    evaluation: None when the plan broke a label rule (then ``problems`` says which);
    problems: every reason it is rejected (empty: acceptable).
    """

    scale: float
    areas: dict[str, float]
    evaluation: Evaluation | None
    problems: list[str] = field(default_factory=list)

    @property
    def acceptable(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        return f"x{self.scale:.3g} ({', '.join(f'{a} {u:g} U' for a, u in self.areas.items())})"

    # the numbers the CLI prints for the chosen plan
    @property
    def goal_rate(self) -> dict[str, float]:
        return self.evaluation.goal_rate if self.evaluation else {}

    @property
    def held_rate(self) -> dict[str, float]:
        return self.evaluation.held_rate if self.evaluation else {}

    @property
    def expression(self) -> dict[str, float]:
        return self.evaluation.expression if self.evaluation else {}

    @property
    def eyelid_ptosis_risk(self) -> float:
        return self.evaluation.eyelid_ptosis_risk if self.evaluation else 0.0

    @property
    def brow_ptosis_risk(self) -> float:
        return self.evaluation.brow_ptosis_risk if self.evaluation else 0.0


@dataclass(frozen=True)
class PlanningResult:
    """The planner's answer.

    plan, chosen: the smallest acceptable candidate (None when none is); candidates: every
    evaluated candidate, smallest first (all but the last are rejected); searched: every scale
    of the search; at_floor: the answer is the smallest dose considered; explanation: one line
    per rejected candidate plus what the answer means.
    """

    plan: Plan | None
    chosen: Candidate | None
    candidates: list[Candidate]
    searched: list[float]
    at_floor: bool
    explanation: list[str]

    @property
    def rejected(self) -> list[Candidate]:
        return [c for c in self.candidates if not c.acceptable]


def evaluate_plan(plan: Plan, description: PatientDescription, goal: str, hold_until: int | None, n: int, seed: int,
                  face_map: FaceMap, params: ModelParameters, tables: PlanningTables | None = None,
                  cohort: Cohort | None = None) -> Evaluation:
    """Simulate ``n`` patients like the described one (seeded) under ``plan``: the goal and hold
    rates, median residual expression, and the described patient's safety assessment.

    cohort: the virtual patients to judge the plan on (default: ``n`` fresh patients like
    ``description``); personal predictions pass the patient's posterior twins."""
    tables = tables or load_planning()
    rules = load_adverse_events()
    injections = plan_injections(plan.points(face_map), plan)
    result = spread(face_map, injections, plan.product_info.spread_factor, params.spread)
    if cohort is None:
        cohort = cohort_like(description, n, face_map.areas, np.random.default_rng(seed), params)
    n = cohort.patients.count
    # no septum breaches drawn: the levator lies in no scored area, and the plan's ptosis risk is
    # assess_safety's closed form below
    doses = vary_danger_doses(np.repeat(result.dose_per_muscle[None, :], n, axis=0), cohort.danger_multiplier,
                              face_map, rules)
    day = tables.goal_day
    days = np.arange(0.0, max(day + 31.0, (hold_until or 0) + 1.0))
    treated = with_product(cohort.patients, plan.product_info)  # the product's onset and persistence
    output = run_model(days, np.array([0.0]), doses[:, None, :], treated, face_map, params, result.profile)
    max_grade = tables.goals[goal].max_grade
    at_goal = grade(output.contraction_depth_mm, params.scores) <= max_grade  # (n, n_areas, n_days)
    goal_rate, held_rate, expression = {}, {}, {}
    for area in plan.areas:
        a = face_map.areas.index(area)
        goal_rate[area] = float(at_goal[:, a, day].mean())
        if hold_until:
            held_rate[area] = float(at_goal[:, a, hold_until].mean())
        expression[area] = float(np.median(output.residual_expression[:, a, day]))
    safety = assess_safety(result.dose_per_muscle, result.profile, [0.0],
                           describe_patient(description, face_map.areas, params), injections, face_map, params, rules)
    return Evaluation(goal_rate, held_rate, expression, safety)


def _problems(evaluation: Evaluation, goal: str, day: int, coverage: float, hold_until: int | None, hold_share: float,
              keep_expression: float, max_ptosis_risk: float) -> tuple[list[str], list[str]]:
    """(every problem, the problems a larger dose can only make worse: movement kept, ptosis risk)."""
    problems, worsening = [], []
    for area, rate in evaluation.goal_rate.items():
        if rate < coverage:
            problems.append(f"{area}: {rate:.1%} of similar patients reach {goal} at day {day} (need {coverage:.0%})")
        if hold_until and evaluation.held_rate[area] < hold_share:
            problems.append(f"{area}: {evaluation.held_rate[area]:.1%} of similar patients still at {goal} on day "
                            f"{hold_until} (need {hold_share:.0%})")
        if evaluation.expression[area] < keep_expression:
            worsening.append(f"{area}: keeps {evaluation.expression[area]:.0%} of movement "
                             f"(asked for >= {keep_expression:.0%})")
            problems.append(worsening[-1])
    for name, risk in evaluation.safety.risk.items():
        if risk > max_ptosis_risk:
            worsening.append(f"{name.replace('_', ' ')} risk {risk:.1%} above the bound {max_ptosis_risk:.1%}")
            problems.append(worsening[-1])
    return problems, worsening


def check_request(areas: list[str], product: str, goal: str, hold_until: int | None, coverage: float,
                  keep_expression: float, max_ptosis_risk: float, tables: PlanningTables) -> None:
    """Refuse a planning request with one :class:`PlanError` naming the field and what is allowed."""
    allowed = ", ".join(tables.reference_ona_units)
    if not areas:
        raise PlanError(f"areas: name at least one area; allowed: {allowed}")
    unknown = [a for a in areas if a not in tables.reference_ona_units]
    if unknown:
        raise PlanError(f"areas: unknown area(s) {', '.join(unknown)}; allowed: {allowed}")
    repeated = sorted({a for a in areas if areas.count(a) > 1})
    if repeated:
        raise PlanError(f"areas: {', '.join(repeated)} named more than once")
    try:
        info = get_product(product)
    except ValueError as error:
        raise PlanError(str(error)) from None
    if not info.contains_toxin:
        raise PlanError(f"product: {product} contains no toxin and cannot reach a treatment goal")
    if goal not in tables.goals:
        raise PlanError(f"goal: must be one of {', '.join(tables.goals)}, got {goal!r}")
    if hold_until is not None and not tables.goal_day < hold_until <= 365:
        raise PlanError(f"hold_until: must be a day from {tables.goal_day + 1} to 365, got {hold_until}")
    for name, value in (("coverage", coverage), ("keep_expression", keep_expression),
                        ("max_ptosis_risk", max_ptosis_risk)):
        if not 0.0 <= value <= 1.0 or (name == "coverage" and value == 0.0):
            raise PlanError(f"{name}: must be a share from {'above ' if name == 'coverage' else ''}0 to 1, got {value}")


def plan_dose(
    description: PatientDescription,
    areas: list[str],
    product: str,
    goal: str = "none_mild",
    keep_expression: float = 0.0,
    coverage: float | None = None,
    max_ptosis_risk: float | None = None,
    hold_until: int | None = None,
    n: int = 400,
    seed: int = 0,
    params: ModelParameters | None = None,
    face_map: FaceMap | None = None,
    tables: PlanningTables | None = None,
    cohort: Cohort | None = None,
) -> PlanningResult:
    """Search the smallest reference-pattern dose meeting the goal (see the module docstring).

    cohort: the virtual patients to judge candidates on (default: ``n`` fresh patients like
    ``description``, :func:`neuromod.trials.population.cohort_like`); personal predictions pass
    the patient's posterior twins (:func:`neuromod.trials.personal.suggest_next_dose`).

    coverage and max_ptosis_risk default to ``data/planning.yaml`` (80 %, 2 %). Raises
    :class:`PlanError` (one message) for a request it cannot plan: no, unknown or repeated
    areas, an unknown or toxin-free product, an unknown goal, a hold day or share out of range.
    """
    params = params or default_parameters()
    face_map = face_map or load_face_map()
    tables = tables or load_planning()
    coverage = tables.default_coverage if coverage is None else coverage
    max_ptosis_risk = tables.default_max_ptosis_risk if max_ptosis_risk is None else max_ptosis_risk
    check_request(areas, product, goal, hold_until, coverage, keep_expression, max_ptosis_risk, tables)
    info = get_product(product)
    searched = tables.scales()
    candidates: list[Candidate] = []
    chosen: Candidate | None = None
    plan: Plan | None = None
    seen: set[tuple[float, ...]] = set()
    beyond: str | None = None  # why every larger dose fails too, once one fails in a way dose only worsens
    for scale in searched:
        units = {a: round(tables.reference_ona_units[a] * scale * info.units_per_ona_unit, 1) for a in areas}
        if tuple(units.values()) in seen:  # rounding made it the same plan as the previous candidate
            continue
        seen.add(tuple(units.values()))
        if beyond is not None:
            candidates.append(Candidate(scale, units, None, [f"not simulated: {beyond}"]))
            continue
        try:
            candidate_plan = parse_plan({"patient": description.model_dump(), "product": product, "areas": units})
        except PlanError as error:
            candidates.append(Candidate(scale, units, None, [f"label rules: {error}"]))
            beyond = f"a smaller dose already breaks the label rules ({error})"
            continue
        evaluation = evaluate_plan(candidate_plan, description, goal, hold_until, n, seed, face_map, params, tables,
                                   cohort)
        problems, worsening = _problems(evaluation, goal, tables.goal_day, coverage, hold_until, tables.hold_share,
                                        keep_expression, max_ptosis_risk)
        if worsening:
            # movement kept falls and ptosis risk rises with dose for every similar patient, so no
            # larger candidate can pass either
            beyond = (f"at x{scale:.3g} already {'; '.join(worsening)}, and a larger dose keeps less movement "
                      "and has a higher ptosis risk")
        candidate = Candidate(scale, units, evaluation, problems)
        candidates.append(candidate)
        if candidate.acceptable:
            chosen, plan = candidate, candidate_plan
            break
    at_floor = chosen is not None and chosen is candidates[0] and chosen.scale == searched[0]
    lines = [f"rejected {c.describe()}: " + "; ".join(c.problems) for c in candidates if not c.acceptable]
    if chosen is None:
        lines.append(f"no dose from x{searched[0]:g} to x{searched[-1]:g} the reference pattern "
                     f"({len(searched)} candidates) meets every requirement")
    elif at_floor:
        lines.append(f"the goal is met even at {chosen.describe()}, the smallest dose the planner considers: below "
                     f"x{searched[0]:g} the reference pattern there are no published efficacy data the model is "
                     "calibrated on (data/planning.yaml dose_scale.floor), so a smaller dose may suffice but the "
                     "model cannot say")
    else:
        lines.append(f"chosen {chosen.describe()}: the smallest acceptable of the searched doses "
                     f"(x{searched[0]:g} to x{searched[-1]:g}, {tables.steps_per_doubling} per doubling); larger ones were not needed")
    return PlanningResult(plan, chosen, candidates, searched, at_floor, lines)
