"""Composition: a plan through every stage, day by day.

``simulate(plan)`` follows one plan's units from the face map to wrinkle scores:
spread (units per muscle) -> junction (blocked fraction) -> muscle (strength, atrophy) ->
skin (line depths) -> scores (expected FWS grades). :func:`run_model` is the same flow over
a population matrix (leading axis patients), used by virtual trials.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from neuromod.model._jit import threads_for
from neuromod.model.adverse_events import SafetyAssessment, assess_safety
from neuromod.model.junction import JunctionRates
from neuromod.model.kinetics import muscle_course
from neuromod.model.patient import Patients, describe_patient, half_block_units, with_product  # noqa: F401 (re-exported)
from neuromod.model.scores import ONSET_PEAK_WINDOW_DAYS, expected_score, onset_index, onset_window_end
from neuromod.model.skin import skin_response
from neuromod.model.spread import Injections, SpreadResult, spread
from neuromod.reference.anatomy import FaceMap, load_face_map
from neuromod.reference.notice import DISCLAIMER  # re-exported: the notice shown with predictions
from neuromod.reference.clinical import load_adverse_events
from neuromod.reference.parameters import ModelParameters, ScoreParameters, default_parameters
from neuromod.schemas.plan import InjectionPoint, Plan

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ModelOutput:
    """Arrays of one run; shapes (n_patients, n_muscles | n_areas, n_days).

    Muscle arrays cover the face-map muscles listed in ``muscle_index`` (all muscles the
    plan reaches, unless the caller asked for specific ones); the others are untouched.
    """

    days: FloatArray
    muscle_index: npt.NDArray[np.int64]
    blocked_fraction: FloatArray
    strength: FloatArray
    atrophy: FloatArray
    area_strength: FloatArray
    contraction_depth_mm: FloatArray
    rest_depth_mm: FloatArray

    @property
    def residual_expression(self) -> FloatArray:
        """(n_patients, n_areas, n_days) fraction of each area's baseline movement kept at
        maximum contraction (1 untreated, 0 frozen): the one definition used by ``simulate``,
        trials (``residual_expression_pct``) and the planner (``--keep-expression``)."""
        return self.area_strength


def plan_injections(points: list[InjectionPoint], plan: Plan) -> Injections:
    """Resolved plan points as the arrays :func:`neuromod.model.spread.spread` takes."""
    product = plan.product_info
    return Injections(
        x_mm=np.array([p.x_mm for p in points], dtype=float),
        y_mm=np.array([p.y_mm for p in points], dtype=float),
        depth_mm=np.array([p.depth_mm for p in points], dtype=float),
        ona_units=np.array([product.to_ona_units(p.units) for p in points], dtype=float),
        volume_ml=np.array([p.volume_ml for p in points], dtype=float),
    )


#: The skin stage is integrated every 1.5 hours for this many days after each treatment, when
#: block builds over hours to days; elsewhere a daily grid resolves it (folds and creases:
#: time constants of a day to months). The junction and muscle adapt their own steps
#: (:mod:`neuromod.model.kinetics`) and report on this grid.
FINE_WINDOW_DAYS = 6.0
FINE_STEP_DAYS = 1.0 / 16.0


def integration_grid(days: FloatArray, treatment_days: FloatArray) -> FloatArray:
    """The output days plus points every 1.5 hours in the first days after each treatment."""
    points = [np.asarray(days, dtype=float)]
    for start in np.asarray(treatment_days, dtype=float):
        if start <= days[-1]:
            fine = start + np.arange(0.0, FINE_WINDOW_DAYS, FINE_STEP_DAYS)
            points.append(fine[fine <= days[-1]])
    return np.array(sorted(set(np.concatenate(points).tolist())))  # np.unique would import numpy.ma


def run_model(
    days: FloatArray,
    treatment_days: FloatArray,
    doses: FloatArray,
    patients: Patients,
    face_map: FaceMap,
    params: ModelParameters,
    profile: FloatArray | None = None,
    muscles: npt.ArrayLike | None = None,
) -> ModelOutput:
    """Junction -> muscle -> skin for n patients, reported at ``days`` (integrated on
    :func:`integration_grid`: daily, every 1.5 hours just after each treatment).

    doses: (n_patients or 1, n_treatments, n_muscles) onabotulinumtoxinA-equivalent units;
    profile: (n_muscles, n_bins) dose profile of each muscle (from the spread stage; None: even);
    muscles: indices of the muscles to simulate (default: those receiving any toxin;
    the rest keep full strength).
    """
    days = np.asarray(days, dtype=float)
    grid = integration_grid(days, treatment_days)
    pick = np.searchsorted(grid, days)
    if muscles is None:
        muscles = np.flatnonzero(np.asarray(doses).reshape(-1, doses.shape[-1]).max(axis=0) > 0)
    index = np.asarray(muscles, dtype=np.int64)
    rates = JunctionRates.from_parameters(
        params.junction, patients.light_chain_decay_scale, patients.availability_scale
    )
    doses = np.broadcast_to(doses, (patients.count,) + doses.shape[1:])[..., index]
    with threads_for(patients.count):
        course = muscle_course(
            grid, treatment_days, doses, half_block_units(face_map, patients, params)[:, index], rates,
            params.junction, params.muscle, None if profile is None else profile[index],
        )
    force = course.strength
    weights = face_map.area_weights(params.skin.area_share)
    untouched = np.delete(weights, index, axis=1).sum(axis=1)
    area_strength = np.einsum("am,pmt->pat", weights[:, index], force) + untouched[None, :, None]
    skin = skin_response(
        grid, area_strength, patients.baseline_strain_ratio, patients.baseline_static_mm,
        patients.deepening_factor, params.skin,
    )
    return ModelOutput(days, index, course.blocked_fraction[..., pick], force[..., pick], course.atrophy[..., pick],
                       area_strength[..., pick], skin.contraction_depth[..., pick], skin.static_depth[..., pick])


@dataclass(frozen=True)
class AreaCourse:
    """One area's predicted course and its landmarks (days).

    ``strength`` is the *residual expression*: the fraction of the area's baseline movement
    kept at maximum contraction (1 untreated, 0 frozen) — "softened, not frozen" aims at
    roughly 0.2-0.4.
    """

    fws_contraction: FloatArray
    fws_rest: FloatArray
    strength: FloatArray
    baseline_contraction: float
    onset_day: float | None
    peak_day: float | None
    wear_off_day: float | None


@dataclass(frozen=True)
class SimulationResult:
    """One patient's predicted course under one plan (model estimates, not medical advice)."""

    plan: Plan
    days: FloatArray
    muscles: list[str]
    areas: list[str]
    spread: SpreadResult
    points: list[InjectionPoint]
    output: ModelOutput
    courses: dict[str, AreaCourse] = field(default_factory=dict)
    params: ModelParameters | None = None
    safety: SafetyAssessment | None = None

    @property
    def dose_per_muscle(self) -> dict[str, float]:
        return dict(zip(self.muscles, self.spread.dose_per_muscle))

    @property
    def antibody_risk(self) -> float:
        """Probability that this plan's treatments induce neutralizing antibodies (0-1)."""
        from neuromod.model.antibodies import (
            cumulative_risk,
            seroconversion_probability,
        )

        product = self.plan.product_info
        ona = sum(product.to_ona_units(p.units) for p in self.points)
        days = np.asarray(self.plan.treatment_days, dtype=float)
        probability = seroconversion_probability(np.full(days.size, ona), days, product.immunogenicity,
                                                 self.plan.patient.sex == "male",
                                                 (self.params or default_parameters()).antibodies)
        return float(cumulative_risk(probability)[0])

    @property
    def treated_areas(self) -> list[str]:
        """Areas the plan targets, in the face map's order."""
        targeted = {p.area for p in self.points}
        return [a for a in self.areas if a in targeted] or list(self.areas)

    def to_json(self) -> dict:
        """The documented JSON shape of ``neuromod simulate --json``."""
        out = self.output
        return {
            "days": [float(d) for d in self.days],
            "areas": {
                area: {
                    "fws_contraction": [round(float(v), 4) for v in course.fws_contraction],
                    "fws_rest": [round(float(v), 4) for v in course.fws_rest],
                    "residual_expression": [round(float(v), 4) for v in course.strength],
                    "onset_day": course.onset_day,
                    "peak_day": course.peak_day,
                    "wear_off_day": course.wear_off_day,
                }
                for area, course in self.courses.items()
            },
            "muscles": {
                muscle: {
                    "dose_units": round(float(self.spread.dose_per_muscle[j]), 5),
                    "blocked_fraction": [round(float(v), 5) for v in out.blocked_fraction[0, j]],
                    "strength": [round(float(v), 5) for v in out.strength[0, j]],
                    "atrophy": [round(float(v), 5) for v in out.atrophy[0, j]],
                }
                for j, muscle in enumerate(self.muscles)
            },
            "lost_units": round(float(self.spread.lost.sum()), 5),
            "antibody_risk_pct": round(100.0 * self.antibody_risk, 3),
            "safety": self.safety.to_json() if self.safety is not None else None,
            "disclaimer": DISCLAIMER,
        }




def area_landmarks(days: FloatArray, fws: FloatArray, strength_: FloatArray, scores: ScoreParameters,
                   window_end_day: float | None = None) -> tuple:
    """(onset, peak, wear-off) days of one area's course after a treatment on ``days[0]``.

    onset: first day the median subject (noticing at ``scores.onset_strength_drop`` of the peak
    effect) has noticed it (:func:`neuromod.model.scores.onset_index`; the peak looked for up to
    ``window_end_day``, the next treatment's day if sooner than
    :data:`~neuromod.model.scores.ONSET_PEAK_WINDOW_DAYS` after the first);
    peak: first day, from the onset on, the improvement in expected FWS grade at contraction
    reaches 90 % of its maximum (the start of the plateau of a noticeable effect: a flat optimum
    has no meaningful arg-min, and a plateau cannot start before the effect is noticed; the onset
    day itself when the improvement has already begun to fall); wear-off: first day after the
    best score on which less than half of the maximal improvement remains. All three are None
    where the expected grade improves by no more than 0.05 (no noticeable effect).
    """
    improvement = fws[0] - fws
    best = float(improvement.max())
    if best <= 0.05:  # no noticeable effect: neither an onset nor a peak
        return None, None, None
    found = onset_index(days, strength_, scores.onset_strength_drop, scores, window_end_day)
    onset = float(days[found]) if found is not None else None
    start = found if found is not None else 0
    near_best = np.flatnonzero(improvement[start:] >= 0.9 * best)
    peak_idx = start + (int(near_best[0]) if near_best.size else 0)
    best_idx = int(np.argmax(improvement))
    after = np.flatnonzero(improvement[best_idx:] < 0.5 * best)
    wear_off = float(days[best_idx + after[0]]) if after.size else None
    return onset, float(days[peak_idx]), wear_off


def simulate(
    plan: Plan,
    days: int | FloatArray = 180,
    params: ModelParameters | None = None,
    face_map: FaceMap | None = None,
) -> SimulationResult:
    """Simulate one patient (the plan's ``patient``) under ``plan``.

    days: the last day (a daily grid from day 0 is used) or an explicit increasing grid.
    """
    params = params or default_parameters()
    face_map = face_map or load_face_map()
    grid = np.arange(0.0, float(days) + 1.0) if np.isscalar(days) else np.asarray(days, dtype=float)
    points = plan.points(face_map)
    injections = plan_injections(points, plan)
    spread_result = spread(face_map, injections, plan.product_info.spread_factor, params.spread)
    patients = with_product(describe_patient(plan.patient, face_map.areas, params), plan.product_info)
    treatment_days = np.asarray(plan.treatment_days, dtype=float)
    doses = np.broadcast_to(spread_result.dose_per_muscle, (1, treatment_days.size, len(face_map.regions)))
    output = run_model(grid, treatment_days, doses, patients, face_map, params, spread_result.profile,
                       muscles=np.arange(len(face_map.regions)))
    fws_c = expected_score(output.contraction_depth_mm, params.scores)
    fws_r = expected_score(output.rest_depth_mm, params.scores)
    courses = {}
    # the first treatment's peak, as the trial kernel reads it
    window_end = onset_window_end(treatment_days) if treatment_days.size else grid[0] + ONSET_PEAK_WINDOW_DAYS
    for a, area in enumerate(face_map.areas):
        onset, peak, wear_off = area_landmarks(grid, fws_c[0, a], output.residual_expression[0, a], params.scores,
                                               window_end_day=window_end)
        courses[area] = AreaCourse(fws_c[0, a], fws_r[0, a], output.residual_expression[0, a],
                                   float(fws_c[0, a, 0]), onset, peak, wear_off)
    safety = assess_safety(spread_result.dose_per_muscle, spread_result.profile, treatment_days, patients, injections,
                           face_map, params, load_adverse_events())
    return SimulationResult(plan, grid, face_map.muscle_keys, face_map.areas, spread_result,
                            points, output, courses, params, safety)
