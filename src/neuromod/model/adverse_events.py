"""Adverse events: toxin reaching danger muscles, their block, and the risk of ptosis.

Danger muscles (the ``danger`` column of ``data/muscles.csv``) cause an adverse event when
their peak blocked fraction exceeds the event's threshold (``data/adverse_events.yaml``):
eyelid ptosis from the levator palpebrae superioris, brow ptosis from the lower lateral
frontalis. Each event has its own mechanism, set in the data file:

* behind a barrier (``septum_breach``: the levator behind the orbital septum), correctly placed
  points reach the muscle only through the barrier, far too little for an event; the event
  comes from a *breach*: each injection lands across the septum with a probability that falls
  with its distance from the muscle (a between-person offset of the point), and a share of its
  units then reach the muscle. The risk is set by where the points are and saturates in dose
  (published: 1.2 % at every Dysport dose 50-125 U);
* without a barrier (the lower frontalis) the units reaching the muscle vary between people by
  placement: a log-normal factor with log-SD ``population.danger_dose_sd``;
* with ``depressors`` (brow ptosis) the event needs its muscle's block to exceed that of the
  most-blocked muscle pulling against it by the threshold (glabella treatment lifts the brow);
* with a ``susceptible`` group (brow ptosis: people whose brow rests on frontalis tone) a share
  of patients has the event on the block of the group's muscles (the lifting frontalis below the
  C-line: the lower and the middle frontalis, :func:`event_susceptible_muscles`) above a lower
  threshold, the depressors not protecting them; the risk is the mixture of the two rules, and
  it saturates in dose once the label dose reaches the lifting frontalis of most such people
  (forehead points, blocking the middle frontalis, reach nearly all of them).

One rule, two uses, the same numbers:

* in virtual cohorts (trials) each subject draws the factor, whether the plan breaches the
  septum (:func:`draw_breaches`, :func:`vary_danger_doses`) and whether the subject is
  susceptible (:func:`draw_susceptible`), and :func:`event_occurs` tells who passes a threshold;
* for one described patient (``simulate``, the planner's answer) :func:`assess_safety` gives
  the probability of the same event for patients *like this one* (the planner's similar
  patients: same covariates, unexplained variation unknown), by quadrature instead of a
  sampled cohort: a mixture of breached (probability of the plan's breach) and intact septum
  for events behind a barrier, and of susceptible (the group's share) and other patients. A
  danger muscle's block depends on its units over its half-block amount, so the toxin's spread
  and the patient's sensitivity (``population.half_block_sd``) combine into one log-normal
  factor; the peak block rises with it, so for given rates the risk is
  ``1 - Phi(z*)``, ``z*`` being where the peak block crosses the threshold (interpolated on a
  grid of factors). The two remaining random effects (light-chain persistence, availability)
  are integrated by Gauss-Hermite quadrature. No sampling noise: the risk is the same on
  every call and, for an event without depressors, exactly monotone in dose; a seeded cohort
  of the planner's size (400) would carry a binomial error of ~0.7 points at a 2 % risk, as
  large as the bound it is compared with.

It also flags plans that put more than the per-point limit at one spot: injections closer
than ``same_point_radius_mm`` to one another form one depot, and their units add up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numpy.polynomial.hermite_e import hermegauss

from neuromod.model._jit import threads_for
from neuromod.model.junction import JunctionRates
from neuromod.model.kinetics import muscle_course
from neuromod.model.patient import Patients, half_block_units, repeat_patient
from neuromod.model.scores import normal_cdf
from neuromod.model.spread import Injections
from neuromod.reference.anatomy import FaceMap
from neuromod.reference.clinical import AdverseEvent, AdverseEventRules, Susceptible
from neuromod.reference.parameters import ModelParameters
from neuromod.schemas.plan import MAX_ONA_UNITS_PER_SITE

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: days simulated after the last treatment when looking for the peak block (the block of a
#: danger muscle peaks 1-3 weeks after an injection; published ptosis onset 2-14 days,
#: published/safety.csv ptosis_onset_days).
PEAK_WINDOW_DAYS = 60
#: Strides of the coarse-to-fine search for the grid point where a node's peak block crosses an
#: event's threshold (:func:`_refined_peaks`): every 16th point of the z grid, then every 4th,
#: then each between the last below and the first above. Numerical only: the points evaluated
#: are exactly the full grid's.
RISK_GRID_STRIDES = (16, 4, 1)


def event_muscles(face_map: FaceMap, rules: AdverseEventRules) -> dict[str, list[int]]:
    """Adverse event (with a threshold) -> indices of its danger muscles in the face map (both sides)."""
    return {name: [j for j, region in enumerate(face_map.regions) if region.danger == name] for name in rules.events}


def event_depressors(face_map: FaceMap, rules: AdverseEventRules) -> dict[str, list[int]]:
    """Adverse event with depressors -> face-map indices of its depressor muscles (both sides)."""
    return {name: [j for j, region in enumerate(face_map.regions) if region.muscle in event.depressors]
            for name, event in rules.events.items() if event.depressors}


def event_susceptible_muscles(face_map: FaceMap, rules: AdverseEventRules) -> dict[str, list[int]]:
    """Adverse event with a susceptible group -> face-map indices (both sides) of the muscles
    whose block causes it in that group: its danger muscles and the group's ``muscles``
    (:class:`neuromod.reference.clinical.Susceptible`; the brow's lifting frontalis)."""
    danger = event_muscles(face_map, rules)
    return {name: sorted(set(danger[name]) | {j for j, region in enumerate(face_map.regions)
                                               if region.muscle in event.susceptible.muscles})
            for name, event in rules.events.items() if event.susceptible is not None}


def net_block(event_peak: FloatArray, depressor_peak: FloatArray | None) -> FloatArray:
    """An event's block: its muscles' peak blocked fraction in excess of its most-blocked
    depressor's (:class:`neuromod.reference.clinical.AdverseEvent` depressors); unchanged
    without depressors."""
    return event_peak if depressor_peak is None else event_peak - depressor_peak


def placement_muscles(face_map: FaceMap, rules: AdverseEventRules) -> list[int]:
    """Face-map indices of the danger muscles whose units vary by placement (a log-normal
    factor, ``population.danger_dose_sd``): those of events with a threshold and no barrier."""
    return sorted(j for name, js in event_muscles(face_map, rules).items()
                  if rules.events[name].septum_breach is None for j in js)


@dataclass(frozen=True)
class PlanBreach:
    """A plan's breach of one event's barrier (:class:`neuromod.reference.clinical.SeptumBreach`).

    probability: chance (0-1) that at least one of the plan's injections lands across the
    barrier in a patient; units: (n_muscles,) units its muscles then receive (on the side of
    the injection most likely to breach; zeros elsewhere)."""

    probability: float
    units: FloatArray


def breach_doses(injections: Injections, face_map: FaceMap, rules: AdverseEventRules) -> dict[str, PlanBreach]:
    """Event with a barrier -> :class:`PlanBreach` of this plan: each injection ``d`` mm from the
    nearest of the event's muscle centres lands across the barrier with probability
    ``Phi((rim_distance_mm - d) / placement_sd_mm)`` (independently); ``share_of_point`` of the
    units of the injection most likely to breach reach that muscle (ptosis is mostly one-sided)."""
    breaches = {}
    for name, js in event_muscles(face_map, rules).items():
        rule = rules.events[name].septum_breach
        if rule is None:
            continue
        units = np.zeros(len(face_map.regions))
        if injections.x_mm.size == 0 or not js:
            breaches[name] = PlanBreach(0.0, units)
            continue
        distance = np.stack([np.hypot(injections.x_mm - face_map.regions[j].cx_mm,
                                      injections.y_mm - face_map.regions[j].cy_mm) for j in js])  # (muscles, points)
        point_probability = normal_cdf((rule.rim_distance_mm - distance.min(axis=0)) / rule.placement_sd_mm)
        k = int(np.argmax(point_probability))
        units[js[int(np.argmin(distance[:, k]))]] = rule.share_of_point * float(injections.ona_units[k])
        breaches[name] = PlanBreach(float(1.0 - np.prod(1.0 - point_probability)), units)
    return breaches


def draw_breaches(n: int, rng: np.random.Generator, breaches: dict[str, PlanBreach]) -> dict[str, BoolArray]:
    """Event with a barrier -> (n,) whether each patient's barrier is breached by the plan.
    Callers pass an rng of its own stream, so that drawing breaches leaves every other draw
    of a cohort unchanged."""
    return {name: rng.random(n) < breach.probability for name, breach in breaches.items()}


def vary_danger_doses(doses: FloatArray, factor: FloatArray, face_map: FaceMap, rules: AdverseEventRules,
                      breaches: dict[str, PlanBreach] | None = None,
                      breached: dict[str, BoolArray] | None = None) -> FloatArray:
    """``doses`` (n, ..., n_muscles) with the units reaching the muscles of every event with a
    threshold varied per patient: muscles without a barrier multiplied by ``factor`` (n,)
    (placement); muscles behind a barrier given ``breach_units[event]`` (:func:`breach_doses`)
    in the patients ``breached[event]`` (n,) (:func:`draw_breaches`). The other muscles
    unchanged. Returns a new array."""
    varied = np.array(doses, dtype=float)
    columns = placement_muscles(face_map, rules)
    factor = np.asarray(factor, dtype=float).reshape((-1,) + (1,) * (varied.ndim - 1))
    varied[..., columns] *= factor
    for name, breach in (breaches or {}).items():
        if breached is not None and name in breached:
            varied[np.asarray(breached[name])] += breach.units
    return varied


def draw_susceptible(n: int, rng: np.random.Generator, rules: AdverseEventRules) -> dict[str, BoolArray]:
    """Event with a susceptible group (:class:`neuromod.reference.clinical.Susceptible`) -> (n,)
    whether each patient belongs to it. Callers pass an rng of its own stream, so that these
    draws leave every other draw of a cohort unchanged."""
    return {name: rng.random(n) < event.susceptible.share
            for name, event in rules.events.items() if event.susceptible is not None}


def event_occurs(event: AdverseEvent, peak: FloatArray, depressor_peak: FloatArray | None,
                 susceptible: BoolArray | None = None, susceptible_peak: FloatArray | None = None) -> BoolArray:
    """(n,) whether each patient has ``event``, from the peak blocked fraction of its muscles
    ``peak`` (n,) and of its most-blocked depressor ``depressor_peak`` (n,; None without
    depressors): the net block (:func:`net_block`) above the event's threshold; in the patients
    of its susceptible group (``susceptible`` (n,), :func:`draw_susceptible`), the peak of the
    group's muscles (``susceptible_peak`` (n,), :func:`event_susceptible_muscles`; None: ``peak``)
    above the group's threshold (the depressors do not protect them)."""
    occurs = net_block(peak, depressor_peak) > event.block_threshold
    if event.susceptible is not None and susceptible is not None:
        own = peak if susceptible_peak is None else susceptible_peak
        occurs = np.where(susceptible, own > event.susceptible.block_threshold, occurs)
    return occurs


def cohort_events(blocked_fraction: FloatArray, muscle_index: npt.ArrayLike, face_map: FaceMap,
                  rules: AdverseEventRules, susceptible: dict[str, BoolArray] | None = None) -> dict[str, BoolArray]:
    """Event -> (n,) whether each patient has it (:func:`event_occurs`).

    blocked_fraction: (n, len(muscle_index), n_days) of the simulated muscles ``muscle_index``
    (face-map indices); muscles not simulated count as unblocked; susceptible: event -> (n,)
    membership of its susceptible group (:func:`draw_susceptible`; None: nobody).
    """
    index = list(np.asarray(muscle_index))
    n = blocked_fraction.shape[0]

    def peak(muscles: list[int]) -> FloatArray:
        present = [index.index(j) for j in muscles if j in index]
        return blocked_fraction[:, present].max(axis=(1, 2)) if present else np.zeros(n)

    depressors = event_depressors(face_map, rules)
    lifting = event_susceptible_muscles(face_map, rules)
    return {name: event_occurs(rules.events[name], peak(muscles), peak(depressors[name]) if name in depressors else None,
                               (susceptible or {}).get(name), peak(lifting[name]) if name in lifting else None)
            for name, muscles in event_muscles(face_map, rules).items()}


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
    threshold; susceptible: event -> its susceptible group (share and lower threshold), for the
    events that have one; warnings: one sentence each (same-point doses above the limit, an event
    expected at typical placement).
    """

    danger_muscles: dict[str, DangerMuscle]
    risk: dict[str, float]
    block_thresholds: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    susceptible: dict[str, Susceptible] = field(default_factory=dict)

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
        document["susceptible"] = {name: {"share": group.share, "block_threshold": group.block_threshold,
                                          "who": group.who, "muscles": list(group.muscles)}
                                   for name, group in self.susceptible.items()}
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

    # pairs closer than the radius (NumPy on the few dozen points of a plan: SciPy's KD-tree cost
    # `neuromod simulate` ~0.3-0.5 s of imports, scipy.spatial with scipy.sparse and scipy.linalg)
    distance = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    for i, j in zip(*np.nonzero(np.triu(distance <= radius_mm, k=1))):
        parent[root(int(i))] = root(int(j))
    roots = np.array([root(i) for i in range(xy.shape[0])])
    warnings = []
    for group in dict.fromkeys(roots.tolist()):  # each group once, in plan order
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
    refine: bool = True,
) -> SafetyAssessment:
    """Units and block reaching each danger muscle and the risk of each adverse event for one
    described patient (see the module docstring for the closed form).

    refine: integrate only the grid points the risk reads (:func:`_refined_peaks`, ~a sixth of
    them); False integrates every point of the grid (the reference the refinement is tested against).

    dose_per_muscle: (n_muscles,) units per treatment from the spread stage; profile: its
    (n_muscles, n_bins) dose profile; patient: the described patient (n = 1).
    """
    treatments = np.asarray(treatment_days, dtype=float)
    muscles = event_muscles(face_map, rules)
    index = [j for j, region in enumerate(face_map.regions) if region.danger]
    dose = np.asarray(dose_per_muscle, dtype=float)[index]
    warnings = same_point_warnings(injections, rules.same_point_radius_mm)
    thresholds = {name: event.block_threshold for name, event in rules.events.items()}
    susceptible = {name: event.susceptible for name, event in rules.events.items() if event.susceptible is not None}
    if not index or treatments.size == 0:
        return SafetyAssessment({}, {name: 0.0 for name in rules.events}, thresholds, warnings, susceptible)
    pop = params.population
    # columns simulated: every danger muscle at its typical units, then a breached copy of each
    # muscle behind a barrier that the plan can breach (its units plus the breach units)
    breaches = breach_doses(injections, face_map, rules)
    breached_copies = [(name, j) for name, b in breaches.items() for j in muscles[name] if b.units[j] > 0.0]
    depressors = event_depressors(face_map, rules)
    # muscles read at the patient's sensitivity alone (not the danger muscle's placement): the
    # depressors, and the susceptible group's lifting muscles that are not danger muscles
    lifting = event_susceptible_muscles(face_map, rules)
    sensitivity_columns = sorted({j for js in depressors.values() for j in js}
                                 | {j for js in lifting.values() for j in js if j not in index})
    columns = index + [j for _, j in breached_copies] + sensitivity_columns
    all_dose = np.asarray(dose_per_muscle, dtype=float)
    column_dose = np.concatenate([dose, [dose[index.index(j)] + breaches[name].units[j] for name, j in breached_copies],
                                  all_dose[sensitivity_columns]])
    # the event depends on the units reaching a danger muscle over its half-block amount, so the
    # spread of the toxin reaching it by placement (population.danger_dose_sd, muscles without a
    # barrier) and of the patient's sensitivity (population.half_block_sd) combine into one log-normal;
    # behind a barrier placement acts through the breach, and only the sensitivity varies
    placement = set(placement_muscles(face_map, rules))
    barrier = {j for name, js in muscles.items() if rules.events[name].septum_breach is not None for j in js}
    # depressors and lifting muscles: the patient's sensitivity given z, E[log sensitivity | z] = z * half_block_sd^2 / combined
    combined_sd = float(np.hypot(pop.danger_dose_sd, pop.half_block_sd))
    column_sd = np.array([combined_sd if j in placement else pop.half_block_sd if j in barrier else 0.0
                          for j in columns[:len(columns) - len(sensitivity_columns)]]
                         + [pop.half_block_sd ** 2 / combined_sd] * len(sensitivity_columns))
    z = np.arange(-rules.risk_grid_sd, rules.risk_grid_sd + rules.risk_grid_step_sd / 2, rules.risk_grid_step_sd)
    nodes, weights = hermegauss(rules.quadrature_nodes)
    weights = weights / weights.sum()
    decay_node, availability_node = (a.ravel() for a in np.meshgrid(nodes, nodes, indexing="ij"))
    node_weight = np.outer(weights, weights).ravel()
    n_nodes, n_z = node_weight.size, z.size
    days = np.arange(0.0, float(np.ceil(treatments.max())) + PEAK_WINDOW_DAYS + 1.0)

    def peak_blocks(node_of_row: npt.NDArray[np.int64], z_of_row: npt.NDArray[np.int64]) -> FloatArray:
        """(rows, n_columns) peak blocked fraction of every column for quadrature node
        ``node_of_row`` and grid factor ``z[z_of_row]``; each row is integrated on its own (one
        patient of the batch), so its numbers do not depend on which other rows are asked for."""
        copies = repeat_patient(patient, node_of_row.size)
        decay = np.exp(pop.light_chain_decay_sd * decay_node[node_of_row])[:, None] * copies.light_chain_decay_scale
        availability = (np.exp(pop.availability_sd * availability_node[node_of_row])[:, None]
                        * copies.availability_scale)
        factor = np.exp(column_sd[None, :] * z[z_of_row][:, None])  # (rows, n_columns)
        doses = np.broadcast_to((factor * column_dose[None, :])[:, None, :],
                                (node_of_row.size, treatments.size, len(columns)))
        rates = JunctionRates.from_parameters(params.junction, decay, availability)
        with threads_for(node_of_row.size):
            course = muscle_course(days, treatments, doses, half_block_units(face_map, copies, params)[:, columns],
                                   rates, params.junction, params.muscle,
                                   None if profile is None else np.asarray(profile)[columns])
        return course.blocked_fraction.max(axis=2)

    def sensitivity_column(j: int) -> int:
        """The column of muscle ``j`` among those read at the patient's sensitivity alone."""
        return len(columns) - len(sensitivity_columns) + sensitivity_columns.index(j)

    def event_peaks(peak: FloatArray) -> dict[tuple[str, str], FloatArray]:
        """(event, variant) -> (..., n_z) the peak block an event's threshold applies to, from the
        columns' peaks (..., n_z, n_columns): ``intact`` (net of its depressors), ``breached`` (for
        events whose barrier the plan can breach), ``susceptible`` (its muscles' own peak, for
        events with a susceptible group; ``susceptible_breached`` with a breach too)."""
        out = {}
        for name, js in muscles.items():
            if not js:
                continue
            intact = [index.index(j) for j in js]
            offset = [sensitivity_column(j) for j in depressors.get(name, [])]
            own = peak[..., intact].max(axis=-1)
            out[name, "intact"] = net_block(own, peak[..., offset].max(axis=-1) if offset else None)
            broken = [len(index) + c for c, (event, _) in enumerate(breached_copies) if event == name]
            if broken:
                out[name, "breached"] = np.maximum(out[name, "intact"], peak[..., broken].max(axis=-1))
            if name in susceptible:
                held = [index.index(j) if j in index else sensitivity_column(j) for j in lifting[name]]
                own_group = peak[..., held].max(axis=-1)
                out[name, "susceptible"] = own_group
                if broken:
                    out[name, "susceptible_breached"] = np.maximum(own_group, peak[..., broken].max(axis=-1))
        return out

    def threshold_of(name: str, variant: str) -> float:
        return susceptible[name].block_threshold if variant.startswith("susceptible") else thresholds[name]

    typical_node = int(np.argmin(np.abs(decay_node) + np.abs(availability_node)))  # the described patient
    typical = int(np.argmin(np.abs(z)))
    peak = _refined_peaks(peak_blocks, event_peaks, n_nodes, n_z, len(columns), typical, threshold_of,
                          RISK_GRID_STRIDES if refine else (1,))
    danger_muscles = {
        face_map.regions[j].key: DangerMuscle(face_map.regions[j].danger, float(dose[k]),
                                              float(peak[typical_node, typical, k]))
        for k, j in enumerate(index)
    }
    risk = {name: 0.0 for name in muscles}
    variants = event_peaks(peak)

    def mixed_risk(name: str, intact: str, breached: str) -> float:
        """The risk under ``intact``, mixed with ``breached`` by the plan's breach probability."""
        value = _node_risk(z, variants[name, intact], node_weight, threshold_of(name, intact))
        if (name, breached) not in variants:
            return value
        chance = breaches[name].probability
        return (1.0 - chance) * value + chance * _node_risk(z, variants[name, breached], node_weight,
                                                             threshold_of(name, breached))

    for (name, variant), event_peak in variants.items():  # event_peak: (n_nodes, n_z)
        if variant != "intact":
            continue
        risk[name] = mixed_risk(name, "intact", "breached")
        group = susceptible.get(name)
        if group is not None:
            risk[name] = (1.0 - group.share) * risk[name] + group.share * mixed_risk(name, "susceptible",
                                                                                     "susceptible_breached")
        if (name, "breached") in variants and breaches[name].probability > 0.5:  # more likely than not
            warnings.append(
                f"{name.replace('_', ' ')} expected: {rules.events[name].description}; an injection lies so close "
                f"to the orbital rim that it crosses the septum in {breaches[name].probability:.0%} of patients")
        if event_peak[typical_node, typical] > thresholds[name]:
            warnings.append(
                f"{name.replace('_', ' ')} expected at typical placement: {rules.events[name].description}; "
                f"peak block {event_peak[typical_node, typical]:.0%} above the {thresholds[name]:.0%} threshold")
    return SafetyAssessment(danger_muscles, risk, thresholds, warnings, susceptible)


def _refined_peaks(peak_blocks, event_peaks, n_nodes: int, n_z: int, n_columns: int, typical: int,
                   threshold_of: Callable[[str, str], float], strides: tuple[int, ...]) -> FloatArray:
    """(n_nodes, n_z, n_columns) columns' peak blocks, evaluated only where the risk reads them
    (NaN elsewhere).

    The risk of a node reads only the first grid point where an event's peak block (each variant
    of :func:`assess_safety`'s ``event_peaks``) passes its threshold (``threshold_of(event,
    variant)``) and the point before it (:func:`_exceedance_probability`). The peak block rises
    with the factor z, so the crossing is found coarse to fine: every ``strides[0]``-th grid
    point (and the last, and the described patient's z), then, between the last point below and
    the first above, every ``strides[1]``-th, and so on to stride 1. Each row of the batch is
    integrated on its own, so the points evaluated carry exactly the numbers of the full grid
    and, where the peak block is monotone in z, the risk equals the full grid's
    (``tests/test_adverse_events.py`` compares with ``strides=(1,)``, the full grid).
    """
    peak = np.full((n_nodes, n_z, n_columns), np.nan)
    wanted = np.zeros((n_nodes, n_z), dtype=bool)
    wanted[:, ::strides[0]] = True
    wanted[:, [n_z - 1, typical]] = True
    for stride in strides[1:] + (None,):
        node_of_row, z_of_row = np.nonzero(wanted & np.isnan(peak[..., 0]))
        if node_of_row.size:
            peak[node_of_row, z_of_row] = peak_blocks(node_of_row, z_of_row)
        if stride is None:
            return peak
        wanted[:] = False
        for (name, variant), event_peak in event_peaks(peak).items():
            threshold = threshold_of(name, variant)
            for node in range(n_nodes):
                known = np.flatnonzero(~np.isnan(event_peak[node]))
                above = known[event_peak[node, known] > threshold]
                if above.size == 0 or above[0] == known[0]:
                    continue
                before = known[known < above[0]][-1]
                wanted[node, before + stride:above[0]:stride] = True
    return peak


def _node_risk(z: FloatArray, event_peak: FloatArray, node_weight: FloatArray, threshold: float) -> float:
    """The risk integrated over the quadrature nodes: ``event_peak`` (n_nodes, n_z) on the z grid."""
    return float(sum(w * _exceedance_probability(z, row, threshold) for w, row in zip(node_weight, event_peak)))


def _exceedance_probability(z: FloatArray, peak: FloatArray, threshold: float) -> float:
    """P(Z > z*) for a standard normal Z, where ``peak`` (increasing in ``z``) crosses
    ``threshold`` at ``z*`` (linear interpolation between grid points); 0 or 1 beyond the grid."""
    above = np.flatnonzero(peak > threshold)
    if above.size == 0:
        return 0.0
    k = int(above[0])
    if k == 0:
        return float(normal_cdf(-z[0]))
    low, high = peak[k - 1], peak[k]
    crossing = z[k - 1] + (z[k] - z[k - 1]) * (threshold - low) / max(high - low, 1e-300)
    return float(normal_cdf(-crossing))
