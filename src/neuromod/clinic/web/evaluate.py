"""Live evaluation of a draft plan for a stored patient: what the plan editor shows beside the chart.

Everything is computed by the library from one simulation of the plan personalised with the
patient's covariates and treatment history (:func:`neuromod.clinic.predictions.personal_plan`,
then :func:`neuromod.model.simulate.simulate`; its spread field is reused, not recomputed):

- units per area and for the plan, and the same in every other product's units with the range
  the equivalence evidence allows (:func:`neuromod.reference.products.convert`);
- the label limits of the product (units per site, per session, the re-treatment interval);
- the spread field: units reaching each muscle (:func:`neuromod.model.spread.spread`), in the
  plan's product units, and the units reaching no muscle;
- the predicted eyelid and brow ptosis risk for patients like this one: the simulation's safety
  assessment (:mod:`neuromod.model.adverse_events`), the same numbers ``simulate`` and the
  planner give — computed, not sampled, so it changes with the plan and never with a draw;
- the predicted course per area with onset, peak and wear-off (:mod:`.course_plot`).

Model estimates for planning and education, not medical advice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


from neuromod.clinic.web.course_plot import area_course_landmarks, course_svg
from neuromod.model.simulate import DISCLAIMER, SimulationResult
from neuromod.reference.anatomy import FaceMap, load_face_map
from neuromod.reference.parameters import ModelParameters, default_parameters
from neuromod.reference.products import convert, load_products
from neuromod.report.tables import event_rule
from neuromod.schemas.plan import MAX_ONA_UNITS_PER_SITE

#: muscles receiving less than this (product units) are left out of the table (display only).
SHOWN_MUSCLE_UNITS = 0.01


@dataclass(frozen=True)
class AreaTotal:
    area: str
    units: float
    points: int


@dataclass(frozen=True)
class ConvertedTotal:
    """The plan's units in another product: central value and the evidence's range."""

    product: str
    units: float
    low: float
    high: float
    source: str


@dataclass(frozen=True)
class MuscleDose:
    muscle: str
    units: float
    danger: str


@dataclass(frozen=True)
class PtosisRisk:
    event: str
    risk_pct: float
    threshold_block: float
    muscles: list[str]
    rule: str  # the block the event needs, in words (report.tables.event_rule)


@dataclass(frozen=True)
class AreaLandmarks:
    area: str
    onset_day: float | None
    peak_day: float | None
    wear_off_day: float | None
    residual_expression_at_peak: float | None


@dataclass(frozen=True)
class LabelLimits:
    product: str
    max_units_per_site: float
    max_session_units: float
    min_retreat_days: float
    label_glabella_units: float
    source: str


@dataclass(frozen=True)
class DraftEvaluation:
    """What the plan editor shows; ``as_json()`` is the answer of the evaluate endpoint."""

    product: str
    total_units: float
    areas: list[AreaTotal]
    conversions: list[ConvertedTotal]
    limits: LabelLimits
    muscles: list[MuscleDose]
    lost_units: float
    ptosis: list[PtosisRisk]
    landmarks: list[AreaLandmarks]
    wear_off_after_days: float | None
    treatment_day: float
    course_svg: str
    disclaimer: str = DISCLAIMER

    def as_json(self) -> dict:
        return asdict(self)


def ptosis_risks(result: SimulationResult) -> list[PtosisRisk]:
    """Risk of each danger event for patients like ``result.plan.patient``: the simulation's own
    safety assessment (:mod:`neuromod.model.adverse_events`, the same numbers as ``simulate``)."""
    safety = result.safety
    if safety is None:
        return []
    return [PtosisRisk(event, round(100.0 * probability, 2), safety.block_thresholds[event],
                       [key for key, muscle in safety.danger_muscles.items() if muscle.event == event],
                       event_rule(safety, event))
            for event, probability in safety.risk.items()]


def area_courses(result: SimulationResult) -> dict:
    """The per-area part of the course JSON (``days`` and ``areas``), without the per-muscle
    series that the editor does not show (what :mod:`.course_plot` reads)."""
    return {"days": result.days, "areas": {
        area: {"fws_contraction": course.fws_contraction, "fws_rest": course.fws_rest,
               "residual_expression": course.strength} for area, course in result.courses.items()}}


def evaluate_draft(result: SimulationResult, treatment_day: float, face_map: FaceMap | None = None,
                   params: ModelParameters | None = None) -> DraftEvaluation:
    """Everything the editor shows for a personalised plan's simulation; ``treatment_day``: the
    planned treatment's day on the simulation's axis (0 without earlier treatments)."""
    face_map = face_map or load_face_map()
    params = params or result.params or default_parameters()
    plan = result.plan
    product = plan.product_info
    points = plan.points(face_map)
    per_area: dict[str, list[float]] = {}
    for point in points:
        per_area.setdefault(point.area, []).append(point.units)
    total = float(sum(p.units for p in points))
    conversions = []
    for other in load_products().values():
        if other.name == product.name or not other.contains_toxin or not product.contains_toxin:
            continue
        converted = convert(total, product.name, other.name)
        conversions.append(ConvertedTotal(other.name, round(converted.units, 1), round(converted.low, 1),
                                          round(converted.high, 1), converted.source))
    risks = ptosis_risks(result)
    ona_per_muscle = result.spread.dose_per_muscle
    muscles = [MuscleDose(region.key, round(float(ona) * product.units_per_ona_unit, 2), region.danger)
               for region, ona in zip(face_map.regions, ona_per_muscle)
               if ona * product.units_per_ona_unit >= SHOWN_MUSCLE_UNITS]
    muscles.sort(key=lambda m: -m.units)
    treated = [area for area in face_map.areas if area in per_area]
    course = area_courses(result)
    landmarks = []
    for area in treated:
        marks = area_course_landmarks(course, area, treatment_day)
        landmarks.append(AreaLandmarks(area, marks.onset_day, marks.peak_day, marks.wear_off_day,
                                       None if marks.residual_expression_at_peak is None
                                       else round(marks.residual_expression_at_peak, 3)))
    limits = LabelLimits(product.name, MAX_ONA_UNITS_PER_SITE * product.units_per_ona_unit,
                         product.max_session_units, product.min_retreat_days, product.label_glabella_units,
                         product.limits_source)
    return DraftEvaluation(
        product=product.name, total_units=round(total, 3),
        areas=[AreaTotal(area, round(sum(units), 3), len(units)) for area, units in per_area.items()],
        conversions=conversions, limits=limits, muscles=muscles,
        lost_units=round(float(total - ona_per_muscle.sum() * product.units_per_ona_unit), 3), ptosis=risks,
        landmarks=landmarks,
        wear_off_after_days=min((m.wear_off_day for m in landmarks if m.wear_off_day is not None), default=None),
        treatment_day=treatment_day,
        course_svg=course_svg(course, treatment_day, treated or face_map.areas[:1]))
