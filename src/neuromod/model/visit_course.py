"""A cohort's whole course compiled: junction -> muscle -> area strength -> skin, kept only at the visits.

:func:`neuromod.model.simulate.run_model` keeps every stage's arrays at every point of the
integration grid — (patients x muscles x grid points) floats, several times over — which a
one-patient course needs and a virtual trial does not: its raters look at a few scored areas
at a few visit days. :func:`visit_course` runs the same equations one thread per patient and
lets only what the trial's endpoints read leave the kernel:

* line depth at maximum contraction and residual expression of each scored area at each visit;
* the baseline depth (day 0);
* the first day each subject notices the effect (area strength fallen by their share of the first
  treatment's largest drop, :func:`neuromod.model.scores.onset_drop`; the kernels record when the
  strength first fell to each of :data:`ONSET_RUNGS` rungs, and :func:`onset_days` reads the day);
* the largest blocked fraction of each danger-muscle group (adverse events).

**On the integrator's own steps** (the default): :func:`neuromod.model.kinetics.step` takes its
adaptive steps (up to :data:`TRIAL_MAX_STEP_DAYS`) between the points that matter — treatments and
visits — and the skin state follows each step exactly: each lag (fold, crease memory) is
first-order linear with a goal taken quadratic over the step, through its values at the step's
start, middle and end (the middle from each muscle's strength at mid-step, which ``step`` leaves
in its workspace's ``strength_half``), solved in closed form with the weights the junction's own lag
uses (:func:`skin_step_factors`; fade/rise switch kept); the static line as in ``skin_response``
with the step's length. A rung's crossing is located within the step on the broken line through
its start, middle and end, and onset is the first whole day at or after the noticed drop's
crossing (the daily check's day, to within one day). The danger
muscles' peak within a step is that of the cubic through the blocked fraction and its slope at
the step ends (error O(h^4); the step ends alone would miss it by up to 4e-3 at 8-day steps).
Only the muscles the outputs read are integrated (:func:`integrated_muscles`). Work per subject
is the integrator's steps (~117 for a 252-day trial, a few hundred for ten years), not the
calendar days. (Before issue 10's step work the goal was linear over a step, which needed step
ends every quarter day in the 6 days after each treatment: ~168 steps.)

**On the daily grid** (``daily_grid=True``, the reference): the grid of
:func:`neuromod.model.simulate.integration_grid` (daily, every 1.5 hours just after each
treatment), the arithmetic of ``run_model`` followed by :func:`neuromod.model.skin.skin_response`
step for step, so it agrees with it to rounding. The default path differs from it by the daily
recurrence's own discretisation error (a 1-day step against 1-day lags: up to ~0.006 mm of depth
in the second week) and is closer to the finely resolved course (within 1.1e-4 mm of 1/16- and
1/64-day grids extrapolated; tolerance 0.002 mm or 1 %); the bounds are stated and checked in
``tests/test_trial_speed.py``.

Memory is (patients x scored areas x visits) either way, whatever the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from neuromod.model._jit import njit, prange
from neuromod.model.junction import JunctionRates, blocked_fraction, sprout_rate
from neuromod.model.kinetics import (
    advance,
    kinetic_inputs,
    lag_weights,
    level_tick_counts,
    patient_tables,
    patient_workspace,
    start_tick,
    step,
)
from neuromod.model.muscle import strength
from neuromod.model.patient import Patients
from neuromod.model.scores import ONSET_PEAK_WINDOW_DAYS, onset_drop, onset_window_end
from neuromod.model.simulate import half_block_units, integration_grid
from neuromod.reference.anatomy import FaceMap
from neuromod.reference.parameters import ModelParameters, ScoreParameters

FloatArray = npt.NDArray[np.float64]

#: Rungs of strength drop (1/50 apart) whose first crossing the kernels record, from which
#: :func:`onset_days` reads when each patient noticed the effect (a share of a peak only known
#: after it): the crossing day is interpolated between rungs, within hours of the day on the
#: course's early slope (~0.1-0.3 of strength a day).
ONSET_RUNGS = 50

#: A muscle is integrated only if some patient's occupancy term ``q_k^n (L / L50)^n`` can reach
#: this. Active light chain never exceeds the units injected (each unit of the chain's depot
#: yields at most one unit downstream; bounded here with a factor of 2 to spare), so below it
#: ``1 / (1 + x)`` rounds to exactly 1 in double precision: the muscle's occupancy, block,
#: sprouts and atrophy are exactly 0 and its strength exactly 1, as for an untreated muscle,
#: and it never sets the step size. Leaving it out changes nothing but the work (10 of the 31
#: face-map muscles for the glabella label pattern, whose terms stay below 1e-28).
SILENT_TERM = 1e-17


def active_muscles(doses: FloatArray, inverse_half_block: FloatArray, profile: FloatArray,
                   hill_coefficient: float) -> npt.NDArray[np.int64]:
    """Face-map indices of the muscles whose occupancy can differ from 0 for some patient.

    doses: (n_patients, n_treatments, n_muscles) units; inverse_half_block: (n_patients,
    n_muscles) 1 / half-block units; profile: (n_muscles, n_bins) dose profile.
    """
    most_light_chain = 2.0 * doses.sum(axis=1)
    bound = (most_light_chain * inverse_half_block).max(axis=0) ** hill_coefficient
    return np.flatnonzero(bound * (profile ** hill_coefficient).max(axis=1) >= SILENT_TERM)


def integrated_muscles(doses: FloatArray, inverse_half_block: FloatArray, profile: FloatArray,
                       hill_coefficient: float, weights: FloatArray, scored: list[int],
                       muscle_groups: list[list[int]]) -> npt.NDArray[np.int64]:
    """Face-map indices of the muscles :func:`visit_course` integrates: the :func:`active_muscles`
    whose state the outputs read, i.e. with a weight in a scored area (``weights``: (n_areas,
    n_muscles) :meth:`FaceMap.area_weights`) or in one of ``muscle_groups`` (danger muscles and
    depressors). Muscles are independent in the equations (each has its own toxin and states), so
    the others cannot change an output; they only shared the step-size control (10 of the 21 active
    muscles for the glabella label pattern, e.g. the frontalis middle and orbicularis oculi)."""
    read = np.asarray(weights, dtype=float)[list(scored)].max(axis=0, initial=0.0) > 0.0
    for members in muscle_groups:
        read[list(members)] = True
    index = active_muscles(doses, inverse_half_block, profile, hill_coefficient)
    return index[read[index]]


@dataclass(frozen=True)
class VisitCourse:
    """What a trial's raters and safety rules read of each patient, for the scored areas.

    contraction_depth_mm, area_strength: (n_patients, n_scored, n_visits) line depth at maximum
    contraction (mm) and residual expression (0-1) at each visit; baseline_depth_mm:
    (n_patients, n_scored) depth at day 0; onset_day: (n_patients, n_scored) first day (from
    day 1) on which the patient noticed the first treatment's effect (:func:`onset_days`; inf:
    never); max_blocked: (n_patients, n_groups) largest blocked fraction of any
    muscle of each group on any day 0..last visit; steps: (n_patients,) integration steps.
    """

    contraction_depth_mm: FloatArray
    area_strength: FloatArray
    baseline_depth_mm: FloatArray
    onset_day: FloatArray
    max_blocked: FloatArray
    steps: npt.NDArray[np.int64]


#: Longest kinetic step (days) of the trial kernel: the longest power of two for which the
#: integrator, reporting only at sparse days, stayed within 1e-4 (relative) of a stiff solver; at
#: the stop-23 fit it reaches 1.4e-4 on blocked fraction for a fast, sensitive patient, and
#: ``tests/test_kinetics.py`` holds it to 2e-4 (4-day steps to 1e-4).
TRIAL_MAX_STEP_DAYS = 8.0
#: Patients of :func:`_step_kernel` sharing one set of work arrays (allocated once per block, reset
#: per patient: ~25 small allocations a patient otherwise); blocks are what its threads share out.
PATIENTS_PER_BLOCK = 16
#: Columns of :func:`skin_step_factors`: the four weights of each lag (fold fading, fold and crease
#: memory rising, crease memory fading), then the static line's repair factor and the step length.
FOLD_FADE, RISE, MEMORY_FADE, REPAIR, STEP_DAYS = 0, 4, 8, 12, 13


def skin_step_factors(levels: FloatArray, skin) -> FloatArray:
    """(n_levels, 14) the skin recurrence's factors over one kinetic step of each length ``h`` (days).

    Each lag ``dx/dt = (g(t) - x) / tau`` driven by a goal ``g`` quadratic over the step, through
    its values ``g0``, ``g_half``, ``g1`` at the start, middle and end, is solved exactly:
    ``x1 = w0 x0 + w1 g0 + w2 g_half + w3 g1`` (the weights :func:`neuromod.model.kinetics.lag_weights`
    gives the junction's lag; ``w0 = exp(-h / tau)``); four columns each for the fold fading
    (:data:`FOLD_FADE`), the fold and crease memory rising (:data:`RISE`), the crease memory fading
    (:data:`MEMORY_FADE`); then the static line's repair factor ``1 - exp(-h / repair time)``
    (:data:`REPAIR`) and ``h`` (:data:`STEP_DAYS`).
    """
    return _skin_factor_table(tuple(np.asarray(levels, dtype=float).tolist()), skin.fade_time_days,
                              skin.rise_time_days, skin.crease_memory_fade_days, skin.static_repair_time_days)


@lru_cache(maxsize=64)
def _skin_factor_table(levels: tuple[float, ...], fade_days: float, rise_days: float, memory_fade_days: float,
                       repair_days: float) -> FloatArray:
    """:func:`skin_step_factors` memoised: every chunk of a trial shares the table (its Gauss-Legendre
    weights cost ~10 ms, 8 % of a 1,000-subject chunk)."""
    steps = np.asarray(levels)
    columns = [lag_weights(steps, tau)[1] for tau in (fade_days, rise_days, memory_fade_days)]
    columns += [-np.expm1(-steps / repair_days)[:, None], steps[:, None]]
    table = np.ascontiguousarray(np.concatenate(columns, axis=1))
    return table


def visit_course(
    visits: list[int],
    treatment_days: FloatArray,
    doses: FloatArray,
    patients: Patients,
    face_map: FaceMap,
    params: ModelParameters,
    profile: FloatArray,
    scored: list[int],
    onset_threshold: FloatArray,
    muscle_groups: list[list[int]],
    daily_grid: bool = False,
    max_step_days: float = TRIAL_MAX_STEP_DAYS,
) -> VisitCourse:
    """The course of ``patients`` under ``doses``, reduced at ``visits`` (see module docstring).

    visits: increasing visit days (>= 1); treatment_days: (n_treatments,) days;
    doses: (n_patients, n_treatments, n_muscles) ona-equivalent units per face-map muscle
    (muscles whose occupancy is exactly 0 in every patient, :func:`active_muscles`, are not
    integrated: they keep full strength, as untreated muscles do in ``run_model``; nor, on the
    integrator's steps, those no output reads, :func:`integrated_muscles`); profile:
    (n_muscles, n_bins) dose profile; scored: face-map area indices;
    onset_threshold: (n_patients,) share of the first treatment's largest strength drop at which
    each patient notices it (:func:`neuromod.model.scores.onset_drop`; the course is followed at least
    :data:`~neuromod.model.scores.ONSET_PEAK_WINDOW_DAYS` after it to find that peak); muscle_groups: lists of
    face-map muscle indices whose largest blocked fraction is reported (danger muscles).
    daily_grid: the reference path, ``run_model``'s integration grid with the skin's daily
    recurrence (slower; what ``tests/test_trial_speed.py`` bounds the default against);
    otherwise the skin follows the integrator's own steps, up to ``max_step_days`` long.
    """
    n = patients.count
    shown = len(visits)
    treatment_days = np.asarray(treatment_days, dtype=float)
    first = float(treatment_days[0]) if treatment_days.size else 0.0
    window_end_day = onset_window_end(treatment_days) if treatment_days.size else first + ONSET_PEAK_WINDOW_DAYS
    if treatment_days.size and max(visits) < window_end_day:  # follow the first effect to its peak
        visits = [*visits, int(np.ceil(window_end_day))]
    last_day = int(max(visits))
    doses = np.broadcast_to(np.asarray(doses, dtype=float), (n,) + np.shape(doses)[1:])
    half_block = half_block_units(face_map, patients, params)
    weights = face_map.area_weights(params.skin.area_share)
    if daily_grid:  # run_model's arithmetic: every muscle that can be blocked, as it integrates them
        index = active_muscles(doses, 1.0 / half_block, profile, params.junction.hill_coefficient)
    else:
        index = integrated_muscles(doses, 1.0 / half_block, profile, params.junction.hill_coefficient, weights,
                                   scored, muscle_groups)
    rates = JunctionRates.from_parameters(params.junction, patients.light_chain_decay_scale,
                                          patients.availability_scale)
    untouched = np.delete(weights, index, axis=1).sum(axis=1)[scored]
    # the group each integrated muscle's peak counts for (-1: none; the last group naming it),
    # by a lookup per muscle rather than np.isin per group (~0.3 ms a 1,000-subject chunk)
    group_by_muscle = {int(j): g for g, members in enumerate(muscle_groups) for j in members}
    group_of = np.array([group_by_muscle.get(int(j), -1) for j in index], dtype=np.int64)
    skin = params.skin
    deepen_per_day = np.ascontiguousarray(
        (skin.static_deepening_mm_per_year / 365.25 * patients.deepening_factor).reshape(n))
    n_scored, n_visits = len(scored), len(visits)
    depth = np.zeros((n, n_scored, n_visits))
    area_strength = np.zeros((n, n_scored, n_visits))
    baseline = np.zeros((n, n_scored))
    crossing = np.full((n, n_scored, ONSET_RUNGS), -1.0)  # never (yet); not inf: fastmath assumes finite values
    trough = np.ones((n, n_scored))
    trough_day = np.zeros((n, n_scored))
    max_blocked = np.zeros((n, len(muscle_groups)))
    steps = np.zeros(n, dtype=np.int64)
    area_arguments = (np.ascontiguousarray(weights[np.ix_(scored, index)]), untouched,
                      np.ascontiguousarray(patients.baseline_strain_ratio[:, scored]),
                      np.ascontiguousarray(patients.baseline_static_mm[:, scored]), deepen_per_day,
                      np.array([skin.film_thickness_mm, skin.crease_memory_share, skin.onset_strain_spread,
                                params.junction.release_turnover_days]))
    outputs = (group_of, depth, area_strength, baseline, crossing, trough, trough_day, max_blocked, steps)
    if daily_grid:
        days = np.arange(0.0, last_day + 1.0)
        grid = integration_grid(days, treatment_days)
        day_index = np.searchsorted(grid, days)
        is_day = np.zeros(grid.size, dtype=np.bool_)
        is_day[day_index] = True
        visit_index = day_index[np.asarray(visits, dtype=np.int64)]
        inputs = kinetic_inputs(grid, treatment_days, doses[..., index], half_block[:, index], rates,
                                params.junction, params.muscle, profile[index])
        dt = np.diff(grid, prepend=grid[0])
        # the step factors of skin_response's recurrence, computed as it computes them
        factors = np.ascontiguousarray(np.stack([
            np.exp(-dt / skin.fade_time_days), np.exp(-dt / skin.rise_time_days),
            np.exp(-dt / skin.crease_memory_fade_days), 1.0 - np.exp(-dt / skin.static_repair_time_days), dt]))
        window_end = round(window_end_day * inputs.ticks_per_day)
        _visit_kernel(*inputs.arguments, *area_arguments, factors, grid, is_day, visit_index, window_end, *outputs)
    else:
        inputs = kinetic_inputs(np.concatenate([[0.0], np.asarray(visits, dtype=float)]), treatment_days,
                                doses[..., index], half_block[:, index], rates, params.junction, params.muscle,
                                profile[index], max_step_days=max_step_days)
        window_end = round(window_end_day * inputs.ticks_per_day)
        _step_kernel(*inputs.arguments, *area_arguments, skin_step_factors(inputs.levels, skin), window_end, *outputs)
    onset = onset_days(crossing, trough, trough_day, np.asarray(onset_threshold, dtype=float), first, params.scores)
    return VisitCourse(depth[..., :shown], area_strength[..., :shown], baseline, onset, max_blocked, steps)


def onset_days(crossing: FloatArray, trough: FloatArray, trough_day: FloatArray, relative_drop: FloatArray,
               treatment_day: float, scores: ScoreParameters) -> FloatArray:
    """(n_patients, n_scored) the first whole day (>= 1) on which each patient notices the effect
    (:func:`neuromod.model.scores.onset_drop` of the first treatment's peak), inf where never.

    crossing: (n_patients, n_scored, ONSET_RUNGS) day the area's strength first fell to each rung
    ``1 - (k + 1) / ONSET_RUNGS`` (-1: not within the peak window); trough, trough_day: the window's
    lowest strength and its day; relative_drop: (n_patients,). The day the strength reached the
    noticed drop is interpolated linearly between the rungs around it (the first rung from the
    treatment day, the last towards the trough).
    """
    peak = 1.0 - trough
    drop = onset_drop(peak, relative_drop[:, None], scores)
    noticed = np.isfinite(drop)
    drop = np.where(noticed, drop, 0.0)
    above = np.clip(np.ceil(drop * ONSET_RUNGS - 1e-9).astype(np.int64) - 1, 0, ONSET_RUNGS - 1)
    upper_drop = (above + 1.0) / ONSET_RUNGS
    upper_day = np.take_along_axis(crossing, above[..., None], axis=-1)[..., 0]
    use_rung = (upper_drop <= peak) & (upper_day >= 0.0)
    upper_drop = np.where(use_rung, upper_drop, peak)
    upper_day = np.where(use_rung, upper_day, trough_day)
    lower_drop = above / ONSET_RUNGS
    lower_day = np.where(above > 0, np.take_along_axis(crossing, np.maximum(above - 1, 0)[..., None], axis=-1)[..., 0],
                         treatment_day)
    span = np.maximum(upper_drop - lower_drop, 1e-12)
    day = lower_day + np.clip((drop - lower_drop) / span, 0.0, 1.0) * (upper_day - lower_day)
    return np.where(noticed, np.maximum(np.ceil(day - 1e-9), 1.0), np.inf)


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def step_peak(start, start_slope, end, end_slope, length):  # pragma: no cover - compiled
    """Largest value over a step of the cubic (Hermite) through the values and slopes at its
    ends (``length`` days; slopes per day): a smooth course's peak between step ends, to O(h^4)
    (the ends alone would miss it by O(h^2))."""
    top = max(start, end)
    if not (start_slope > 0.0 and end_slope < 0.0):
        return top
    # p(s) = start + length*start_slope*s + a*s^2 + b*s^3 on s in [0, 1]; p'(s) = 0 between the ends
    a = 3.0 * (end - start) - length * (2.0 * start_slope + end_slope)
    b = 2.0 * (start - end) + length * (start_slope + end_slope)
    c = length * start_slope
    if abs(b) < 1e-12 * (abs(a) + abs(c)):
        s = -c / (2.0 * a)
    else:
        root = np.sqrt(max(4.0 * a * a - 12.0 * b * c, 0.0))
        s = (-2.0 * a - root) / (6.0 * b)  # the root where p'' = -root < 0: the maximum
    if 0.0 < s < 1.0:
        top = max(top, start + c * s + a * s * s + b * s * s * s)
    return top


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def dynamic_target_mm(strain_ratio, area_strength, film, onset_spread):  # pragma: no cover - compiled
    """:func:`neuromod.model.skin.dynamic_target_depth` of one area (mm): the line depth that full
    contraction at ``area_strength`` drives towards (softplus written as ``np.logaddexp(0, z)``
    computes it)."""
    z = (strain_ratio * area_strength - 1.0) / onset_spread
    softplus = z + np.log1p(np.exp(-z)) if z > 0.0 else np.log1p(np.exp(z))
    return film * np.sqrt(onset_spread * softplus)


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def follow_lag(x, start_goal, half_goal, end_goal, factors, q, col):  # pragma: no cover - compiled
    """A first-order lag ``x`` after one step of level ``q`` under a goal quadratic over the step
    (:func:`skin_step_factors`; ``col`` the lag's first column)."""
    return (factors[q, col] * x + factors[q, col + 1] * start_goal + factors[q, col + 2] * half_goal
            + factors[q, col + 3] * end_goal)


@njit(cache=True, fastmath=True, parallel=True, error_model="numpy")
def _step_kernel(levels, ticks_per_day, output_ticks, treatment_ticks, first_level, lag_half, lag_end, chain_rates,
                 coefficients, doses, inverse_half_block, profile_power, c, weights, untouched, strain0, static0,
                 deepen_per_day, skin_c, factors, window_end, group_of,
                 depth, area_strength, baseline, crossing, trough, trough_day, max_blocked,
                 taken):  # pragma: no cover - compiled
    """The course on the integrator's own steps; output_ticks: day 0, then the visits."""
    n_patients, n_muscles = doses.shape[0], doses.shape[2]
    n_scored = weights.shape[0]
    film, memory_share, onset_spread, turnover = skin_c[0], skin_c[1], skin_c[2], skin_c[3]
    level_ticks = level_tick_counts(levels, ticks_per_day)
    start = start_tick(output_ticks, treatment_ticks)
    for block in prange((n_patients + PATIENTS_PER_BLOCK - 1) // PATIENTS_PER_BLOCK):
        # one allocation of every work array per block of patients, reset for each patient to the
        # state patient_workspace and np.zeros / np.ones would give it (the same arithmetic after)
        w = patient_workspace(block * PATIENTS_PER_BLOCK, levels, chain_rates, n_muscles)
        lagged, maturity, loss, occ_start, occ_half, occ_end = (w.lagged, w.maturity, w.loss, w.occ_start, w.occ_half,
                                                                w.occ_end)
        ratio_half, ratio_end, strength_half, decay = w.ratio_half, w.ratio_end, w.strength_half, w.decay
        factor_half, factor_end, unit_half, unit_end = w.factor_half, w.factor_end, w.unit_half, w.unit_end
        force = np.ones(n_muscles)
        last_blocked = np.zeros(n_muscles)  # blocked fraction and its slope (1/day) at the last step end
        last_slope = np.zeros(n_muscles)
        block_end = np.zeros(n_muscles)  # blocked fraction and its slope at the end of the step just taken
        slope_end = np.zeros(n_muscles)
        peak = np.zeros(n_muscles)  # each muscle's largest blocked fraction so far
        fold = np.empty(n_scored)
        memory = np.empty(n_scored)
        static = np.empty(n_scored)
        previous = np.empty(n_scored)  # area strength at the start of the step
        goal = np.empty(n_scored)  # dynamic target depth at the start of the step
        rung = np.zeros(n_scored, dtype=np.int64)  # each area's next onset rung not yet crossed
        n_rungs = crossing.shape[2]
        for p in range(block * PATIENTS_PER_BLOCK, min(n_patients, (block + 1) * PATIENTS_PER_BLOCK)):
            if p > block * PATIENTS_PER_BLOCK:  # the block's first patient has the fresh arrays
                patient_tables(p, levels, chain_rates, factor_half, factor_end)
                for m in range(n_muscles):
                    lagged[m] = 0.0
                    maturity[m] = 0.0
                    loss[m] = 0.0
                    occ_start[m] = 0.0
                    occ_half[m] = 0.0
                    occ_end[m] = 0.0
                    ratio_half[m] = 0.0
                    ratio_end[m] = 0.0
                    strength_half[m] = 0.0
                    force[m] = 1.0
                    last_blocked[m] = 0.0
                    last_slope[m] = 0.0
                    block_end[m] = 0.0
                    slope_end[m] = 0.0
                    peak[m] = 0.0
                decay[:, :] = 0.0
                unit_half[:] = 0.0
                unit_end[:] = 0.0
            for a in range(n_scored):  # untreated at the start: every muscle at full strength
                now = untouched[a]
                for m in range(n_muscles):
                    now += weights[a, m]
                target = dynamic_target_mm(strain0[p, a], now, film, onset_spread)
                fold[a] = (1.0 - memory_share) * target
                memory[a] = memory_share * target
                static[a] = static0[p, a]
                baseline[p, a] = static[a] + target
                previous[a] = now
                goal[a] = target
                rung[a] = 0
                trough[p, a] = now
                trough_day[p, a] = start / ticks_per_day
            level = 0
            given = 0
            t = start
            steps = 0
            for o in range(1, output_ticks.size):
                while t < output_ticks[o]:
                    began = t
                    t, level, given, tries = step(
                        p, t, output_ticks[o], level, given, levels, level_ticks, treatment_ticks, first_level,
                        lag_half, lag_end, coefficients, doses, inverse_half_block, profile_power, c, lagged, maturity,
                        loss, occ_start, occ_half, occ_end, ratio_half, ratio_end, decay, factor_half, factor_end,
                        unit_half, unit_end, strength_half)
                    steps += tries
                    q = 0  # the level of the step just taken, from its length in ticks
                    while level_ticks[q] != t - began:
                        q += 1
                    h = factors[q, STEP_DAYS]
                    for m in range(n_muscles):  # branch-free, so that it vectorises
                        blocked = blocked_fraction(lagged[m], maturity[m], c[1], c[2])
                        force[m] = strength(blocked, loss[m])
                        block_end[m] = blocked
                        slope_end[m] = c[1] * (((occ_start[m] - lagged[m]) / turnover) * (1.0 - c[2] * maturity[m])
                                               - c[2] * lagged[m] * sprout_rate(lagged[m], maturity[m], c[3], c[4]))
                    for m in range(n_muscles):  # the peak within the step, from values and slopes at its ends
                        top = block_end[m]
                        if last_slope[m] > 0.0 and slope_end[m] < 0.0:  # a peak inside the step: rare
                            top = step_peak(last_blocked[m], last_slope[m], block_end[m], slope_end[m], h)
                        peak[m] = max(peak[m], top)
                        last_blocked[m] = block_end[m]
                        last_slope[m] = slope_end[m]
                    for a in range(n_scored):
                        now = untouched[a]
                        half = untouched[a]
                        for m in range(n_muscles):
                            now += weights[a, m] * force[m]
                            half += weights[a, m] * strength_half[m]
                        target = dynamic_target_mm(strain0[p, a], now, film, onset_spread)
                        half_target = dynamic_target_mm(strain0[p, a], half, film, onset_spread)
                        # the lags, exact for a goal quadratic over the step (skin_step_factors)
                        end_goal = (1.0 - memory_share) * target
                        fold[a] = follow_lag(fold[a], (1.0 - memory_share) * goal[a], (1.0 - memory_share) * half_target,
                                             end_goal, factors, q, FOLD_FADE if end_goal < fold[a] else RISE)
                        end_goal = memory_share * target
                        memory[a] = follow_lag(memory[a], memory_share * goal[a], memory_share * half_target, end_goal,
                                               factors, q, MEMORY_FADE if end_goal < memory[a] else RISE)
                        fold_now = min(max(previous[a], 0.0), 1.0)
                        repair = (1.0 - fold_now) * static[a] * factors[q, REPAIR]
                        static[a] = static[a] + deepen_per_day[p] * fold_now * h - repair
                        # onset rungs: when the strength first fell to each rung, located on the broken
                        # line through the step's start, middle and end; and the window's trough
                        if t <= window_end:
                            if now < trough[p, a]:
                                trough[p, a] = now
                                trough_day[p, a] = t / ticks_per_day
                            while rung[a] < n_rungs and now <= 1.0 - (rung[a] + 1.0) / n_rungs:
                                level_strength = 1.0 - (rung[a] + 1.0) / n_rungs
                                when = began / ticks_per_day
                                if previous[a] > level_strength and half <= level_strength:
                                    when += 0.5 * h * (previous[a] - level_strength) / (previous[a] - half)
                                elif previous[a] > level_strength:
                                    when += 0.5 * h + 0.5 * h * (half - level_strength) / (half - now)
                                crossing[p, a, rung[a]] = when
                                rung[a] += 1
                        previous[a] = now
                        goal[a] = target
                for a in range(n_scored):
                    depth[p, a, o - 1] = static[a] + (fold[a] + memory[a])
                    area_strength[p, a, o - 1] = previous[a]
            for m in range(n_muscles):  # each group's largest block: the largest of its muscles' (exact)
                if group_of[m] >= 0 and peak[m] > max_blocked[p, group_of[m]]:
                    max_blocked[p, group_of[m]] = peak[m]
            taken[p] = steps


@njit(cache=True, fastmath=True, parallel=True, error_model="numpy")
def _visit_kernel(levels, ticks_per_day, grid_ticks, treatment_ticks, first_level, lag_half, lag_end, chain_rates,
                  coefficients, doses, inverse_half_block, profile_power, c, weights, untouched, strain0, static0,
                  deepen_per_day, skin_c, factors, grid, is_day, visit_index, window_end, group_of,
                  depth, area_strength, baseline, crossing, trough, trough_day, max_blocked,
                  taken):  # pragma: no cover - compiled
    n_patients, n_muscles = doses.shape[0], doses.shape[2]
    n_scored = weights.shape[0]
    film, memory_share, onset_spread = skin_c[0], skin_c[1], skin_c[2]
    level_ticks = level_tick_counts(levels, ticks_per_day)
    start = start_tick(grid_ticks, treatment_ticks)
    for p in prange(n_patients):
        w = patient_workspace(p, levels, chain_rates, n_muscles)
        lagged, maturity, loss, occ_start, occ_half, occ_end = (w.lagged, w.maturity, w.loss, w.occ_start, w.occ_half,
                                                                w.occ_end)
        ratio_half, ratio_end, strength_half, decay = w.ratio_half, w.ratio_end, w.strength_half, w.decay
        factor_half, factor_end, unit_half, unit_end = w.factor_half, w.factor_end, w.unit_half, w.unit_end
        force = np.ones(n_muscles)
        fold = np.empty(n_scored)
        memory = np.empty(n_scored)
        static = np.empty(n_scored)
        previous = np.empty(n_scored)  # area strength at the previous grid point
        rung = np.zeros(n_scored, dtype=np.int64)  # each area's next onset rung not yet crossed
        n_rungs = crossing.shape[2]
        day_strength = np.empty(n_scored)  # area strength at the last whole day, and that day
        last_whole_day = 0.0
        level = 0
        given = 0
        t = start
        steps = 0
        next_visit = 0
        for g in range(grid_ticks.size):
            if grid_ticks[g] > t:
                t, level, given, taken_now = advance(
                    p, t, grid_ticks[g], level, given, levels, level_ticks, treatment_ticks, first_level, lag_half,
                    lag_end, coefficients, doses, inverse_half_block, profile_power, c, lagged, maturity, loss,
                    occ_start, occ_half, occ_end, ratio_half, ratio_end, decay, factor_half, factor_end, unit_half,
                    unit_end, strength_half)
                steps += taken_now
                for m in range(n_muscles):
                    blocked = blocked_fraction(lagged[m], maturity[m], c[1], c[2])
                    force[m] = strength(blocked, loss[m])
                    if is_day[g] and group_of[m] >= 0:
                        max_blocked[p, group_of[m]] = max(max_blocked[p, group_of[m]], blocked)
            for a in range(n_scored):
                now = untouched[a]
                for m in range(n_muscles):
                    now += weights[a, m] * force[m]
                target = dynamic_target_mm(strain0[p, a], now, film, onset_spread)
                if g == 0:
                    fold[a] = (1.0 - memory_share) * target
                    memory[a] = memory_share * target
                    static[a] = static0[p, a]
                    baseline[p, a] = static[a] + target
                    trough[p, a] = now
                    trough_day[p, a] = grid[g]
                    day_strength[a] = now
                else:
                    goal = (1.0 - memory_share) * target
                    fold[a] = goal + (fold[a] - goal) * (factors[0, g] if goal < fold[a] else factors[1, g])
                    goal = memory_share * target
                    memory[a] = goal + (memory[a] - goal) * (factors[2, g] if goal < memory[a] else factors[1, g])
                    fold_now = min(max(previous[a], 0.0), 1.0)
                    repair = (1.0 - fold_now) * static[a] * factors[3, g]
                    static[a] = static[a] + deepen_per_day[p] * fold_now * factors[4, g] - repair
                    if is_day[g] and grid_ticks[g] <= window_end:  # the rungs (on the daily broken line), trough
                        if now < trough[p, a]:
                            trough[p, a] = now
                            trough_day[p, a] = grid[g]
                        while rung[a] < n_rungs and now <= 1.0 - (rung[a] + 1.0) / n_rungs:
                            level_strength = 1.0 - (rung[a] + 1.0) / n_rungs
                            when = grid[g]
                            if day_strength[a] > level_strength:
                                when = last_whole_day + (grid[g] - last_whole_day) * (
                                    (day_strength[a] - level_strength) / (day_strength[a] - now))
                            crossing[p, a, rung[a]] = when
                            rung[a] += 1
                    if is_day[g]:
                        day_strength[a] = now
                previous[a] = now
                if next_visit < visit_index.size and g == visit_index[next_visit]:
                    depth[p, a, next_visit] = static[a] + (fold[a] + memory[a])
                    area_strength[p, a, next_visit] = now
            if is_day[g]:
                last_whole_day = grid[g]
            if next_visit < visit_index.size and g == visit_index[next_visit]:
                next_visit += 1
        taken[p] = steps
