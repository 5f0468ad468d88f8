"""Adverse events: toxin reaching danger muscles, their block, and the risk of ptosis.

Danger muscles (the ``danger`` column of ``data/muscles.csv``) cause an adverse event when
their peak blocked fraction exceeds the event's threshold (``data/adverse_events.yaml``):
eyelid ptosis from the levator palpebrae superioris, brow ptosis from the lower lateral
frontalis. How much toxin reaches them varies between people far more than what reaches the
target (placement, the orbital septum, brow position): a log-normal factor with log-SD
``population.danger_dose_sd`` multiplies the units reaching every danger muscle.

One rule, two uses, the same numbers:

* in virtual cohorts (trials, the planner's similar patients) each subject draws the factor
  (:func:`vary_danger_doses`) and :func:`cohort_events` tells who passes a threshold;
* for one described patient (``simulate``, the planner's answer) :func:`assess_safety` gives
  the probability of the same event for patients *like this one* (the planner's similar
  patients: same covariates, unexplained variation unknown), by quadrature instead of a
  sampled cohort. A danger muscle's block depends on its units over its half-block amount, so
  the toxin's spread and the patient's sensitivity (``population.half_block_sd``) combine into
  one log-normal factor; the peak block rises with it, so for given rates the risk is
  ``1 - Phi(z*)``, ``z*`` being where the peak block crosses the threshold (interpolated on a
  grid of factors). The two remaining random effects (light-chain persistence, availability)
  are integrated by Gauss-Hermite quadrature. No sampling noise: the risk is exactly monotone
  in dose and the same on every call; a seeded cohort of the planner's size (400) would carry
  a binomial error of ~0.7 points at a 2 % risk, as large as the bound it is compared with.

It also flags plans that put more than the per-point limit at one spot: injections closer
than ``same_point_radius_mm`` to one another form one depot, and their units add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numpy.polynomial.hermite_e import hermegauss
from scipy.spatial import cKDTree
from scipy.special import ndtr

from neuromod.model.junction import JunctionRates
from neuromod.model.kinetics import muscle_course
from neuromod.model.patient import Patients, half_block_units, repeat_patient
from neuromod.model.spread import Injections
from neuromod.reference.anatomy import FaceMap
from neuromod.reference.clinical import AdverseEventRules
from neuromod.reference.parameters import ModelParameters
from neuromod.schemas.plan import MAX_ONA_UNITS_PER_SITE

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: days simulated after the last treatment when looking for the peak block (the block of a
#: danger muscle peaks 1-3 weeks after an injection; published ptosis onset 2-14 days,
#: published/safety.csv ptosis_onset_days).
PEAK_WINDOW_DAYS = 60


def event_muscles(face_map: FaceMap, rules: AdverseEventRules) -> dict[str, list[int]]:
    """Adverse event (with a threshold) -> indices of its danger muscles in the face map (both sides)."""
    return {name: [j for j, region in enumerate(face_map.regions) if region.danger == name] for name in rules.events}


def vary_danger_doses(doses: FloatArray, factor: FloatArray, face_map: FaceMap, rules: AdverseEventRules) -> FloatArray:
    """``doses`` (n, ..., n_muscles) with the units reaching the muscles of every adverse event
    with a threshold multiplied by each patient's ``factor`` (n,); the other muscles unchanged.
    Returns a new array."""
    columns = sorted({j for js in event_muscles(face_map, rules).values() for j in js})
    varied = np.array(doses, dtype=float)
    factor = np.asarray(factor, dtype=float).reshape((-1,) + (1,) * (varied.ndim - 1))
    varied[..., columns] *= factor
    return varied


def peak_event_block(blocked_fraction: FloatArray, muscle_index: npt.ArrayLike, face_map: FaceMap,
                     rules: AdverseEventRules) -> dict[str, FloatArray]:
    """Event -> (n,) highest blocked fraction of any of its muscles over every simulated day.

    blocked_fraction: (n, len(muscle_index), n_days) of the simulated muscles
    ``muscle_index`` (face-map indices); muscles not simulated count as unblocked.
    """
    index = list(np.asarray(muscle_index))
    n = blocked_fraction.shape[0]
    peaks = {}
    for name, muscles in event_muscles(face_map, rules).items():
        present = [index.index(j) for j in muscles if j in index]
        peaks[name] = blocked_fraction[:, present].max(axis=(1, 2)) if present else np.zeros(n)
    return peaks


def cohort_events(blocked_fraction: FloatArray, muscle_index: npt.ArrayLike, face_map: FaceMap,
                  rules: AdverseEventRules) -> dict[str, BoolArray]:
    """Event -> (n,) whether each patient has it: peak block of its muscles above its threshold."""
    peaks = peak_event_block(blocked_fraction, muscle_index, face_map, rules)
    return {name: peak > rules.events[name].block_threshold for name, peak in peaks.items()}


@dataclass(frozen=True)
class DangerMuscle:
    """Toxin reaching one danger muscle side under a plan, for the described patient.

    units: onabotulinumtoxinA-equivalent units reaching it per treatment (typical placement);
    peak_blocked_fraction: its highest blocked fraction (0-1) over the plan's course.
    """

    event: str
    units: float
    peak_blocked_fraction: float


@dataclass(frozen=True)
class SafetyAssessment:
    """A plan's safety for one described patient (model estimates, not medical advice).

    danger_muscles: muscle key -> :class:`DangerMuscle`; risk: event -> probability (0-1) over
    the between-person spread of the toxin reaching danger muscles; block_thresholds: event ->
    threshold; warnings: one sentence each (same-point doses above the limit, an event
    expected at typical placement).
    """

    danger_muscles: dict[str, DangerMuscle]
    risk: dict[str, float]
    block_thresholds: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    @property
    def highest_risk(self) -> float:
        return max(self.risk.values(), default=0.0)

    def to_json(self) -> dict:
        """The ``safety`` block of ``simulate --json`` (risks in percent)."""
        document: dict = {
            "danger_muscles": {
                key: {"event": m.event, "units": round(m.units, 5),
                      "peak_blocked_fraction": round(m.peak_blocked_fraction, 5)}
                for key, m in self.danger_muscles.items()
            },
        }
        for name, risk in self.risk.items():
            document[f"{name}_risk_pct"] = round(100.0 * risk, 3)
        document["block_thresholds"] = {name: value for name, value in self.block_thresholds.items()}
        document["warnings"] = list(self.warnings)
        return document


def same_point_warnings(injections: Injections, radius_mm: float,
                        limit_ona_units: float = MAX_ONA_UNITS_PER_SITE) -> list[str]:
    """One warning per group of injections closer than ``radius_mm`` to one another (chained)
    whose units together exceed the per-point limit (onabotulinumtoxinA-equivalent units).

    Injections are numbered from 1 in the plan's resolved order (area patterns first, then
    explicit injections)."""
    xy = np.column_stack([injections.x_mm, injections.y_mm])
    if xy.shape[0] < 2:
        return []
    parent = np.arange(xy.shape[0])

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in cKDTree(xy).query_pairs(radius_mm):
        parent[root(i)] = root(j)
    roots = np.array([root(i) for i in range(xy.shape[0])])
    warnings = []
    for group in np.unique(roots):
        members = np.flatnonzero(roots == group)
        total = float(injections.ona_units[members].sum())
        if members.size > 1 and total > limit_ona_units:
            cx, cy = xy[members].mean(axis=0)
            listed = ", ".join(str(k + 1) for k in members[:8]) + (" ..." if members.size > 8 else "")
            warnings.append(
                f"injections {listed} ({members.size} within {radius_mm:g} mm of each other around x {cx:.0f} mm, "
                f"y {cy:.0f} mm) put {total:g} onabotulinumtoxinA-equivalent units at one point, above the "
                f"{limit_ona_units:g} U per-point limit")
    return warnings


def assess_safety(
    dose_per_muscle: FloatArray,
    profile: FloatArray | None,
    treatment_days: npt.ArrayLike,
    patient: Patients,
    injections: Injections,
    face_map: FaceMap,
    params: ModelParameters,
    rules: AdverseEventRules,
) -> SafetyAssessment:
    """Units and block reaching each danger muscle and the risk of each adverse event for one
    described patient (see the module docstring for the closed form).

    dose_per_muscle: (n_muscles,) units per treatment from the spread stage; profile: its
    (n_muscles, n_bins) dose profile; patient: the described patient (n = 1).
    """
    treatments = np.asarray(treatment_days, dtype=float)
    muscles = event_muscles(face_map, rules)
    index = [j for j, region in enumerate(face_map.regions) if region.danger]
    varied = np.array([region.danger in rules.events for region in face_map.regions])[index]
    dose = np.asarray(dose_per_muscle, dtype=float)[index]
    warnings = same_point_warnings(injections, rules.same_point_radius_mm)
    thresholds = {name: event.block_threshold for name, event in rules.events.items()}
    if not index or treatments.size == 0:
        return SafetyAssessment({}, {name: 0.0 for name in rules.events}, thresholds, warnings)
    pop = params.population
    # the event depends on the units reaching a danger muscle over its half-block amount, so the
    # spread of the toxin reaching it and of the patient's sensitivity combine into one log-normal
    combined_sd = float(np.hypot(pop.danger_dose_sd, pop.half_block_sd))
    z = np.arange(-rules.risk_grid_sd, rules.risk_grid_sd + rules.risk_grid_step_sd / 2, rules.risk_grid_step_sd)
    nodes, weights = hermegauss(rules.quadrature_nodes)
    weights = weights / weights.sum()
    decay_node, availability_node = (a.ravel() for a in np.meshgrid(nodes, nodes, indexing="ij"))
    node_weight = np.outer(weights, weights).ravel()
    n_nodes, n_z = node_weight.size, z.size
    copies = repeat_patient(patient, n_nodes * n_z)
    decay = np.repeat(np.exp(pop.light_chain_decay_sd * decay_node), n_z)[:, None] * copies.light_chain_decay_scale
    availability = np.repeat(np.exp(pop.availability_sd * availability_node), n_z)[:, None] * copies.availability_scale
    factor = np.tile(np.exp(combined_sd * z), n_nodes)
    days = np.arange(0.0, float(np.ceil(treatments.max())) + PEAK_WINDOW_DAYS + 1.0)
    spread_factor = np.where(varied[None, :], factor[:, None], 1.0)  # reported-only muscles: typical placement
    doses = np.broadcast_to((spread_factor * dose[None, :])[:, None, :], (factor.size, treatments.size, len(index)))
    rates = JunctionRates.from_parameters(params.junction, decay, availability)
    course = muscle_course(days, treatments, doses, half_block_units(face_map, copies, params)[:, index], rates,
                           params.junction, params.muscle, None if profile is None else np.asarray(profile)[index])
    peak = course.blocked_fraction.max(axis=2).reshape(n_nodes, n_z, len(index))
    typical_node = int(np.argmin(np.abs(decay_node) + np.abs(availability_node)))  # the described patient
    typical = int(np.argmin(np.abs(z)))
    danger_muscles = {
        face_map.regions[j].key: DangerMuscle(face_map.regions[j].danger, float(dose[k]),
                                              float(peak[typical_node, typical, k]))
        for k, j in enumerate(index)
    }
    risk = {}
    for name, js in muscles.items():
        if not js:
            risk[name] = 0.0
            continue
        event_peak = peak[:, :, [index.index(j) for j in js]].max(axis=2)  # (n_nodes, n_z)
        risk[name] = float(sum(w * _exceedance_probability(z, row, thresholds[name])
                               for w, row in zip(node_weight, event_peak)))
        if event_peak[typical_node, typical] > thresholds[name]:
            warnings.append(
                f"{name.replace('_', ' ')} expected at typical placement: {rules.events[name].description}; "
                f"peak block {event_peak[typical_node, typical]:.0%} above the {thresholds[name]:.0%} threshold")
    return SafetyAssessment(danger_muscles, risk, thresholds, warnings)


def _exceedance_probability(z: FloatArray, peak: FloatArray, threshold: float) -> float:
    """P(Z > z*) for a standard normal Z, where ``peak`` (increasing in ``z``) crosses
    ``threshold`` at ``z*`` (linear interpolation between grid points); 0 or 1 beyond the grid."""
    above = np.flatnonzero(peak > threshold)
    if above.size == 0:
        return 0.0
    k = int(above[0])
    if k == 0:
        return float(ndtr(-z[0]))
    low, high = peak[k - 1], peak[k]
    crossing = z[k - 1] + (z[k] - z[k - 1]) * (threshold - low) / max(high - low, 1e-300)
    return float(ndtr(-crossing))
