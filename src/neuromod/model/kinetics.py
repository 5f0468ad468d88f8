"""The junction and muscle equations integrated for many patients at once.

The toxin chain is linear, so active light chain is known exactly at any time from its
closed form (:func:`neuromod.model.junction.bateman_terms`, superposed over treatments). Three
non-linear states per muscle remain: the lagged occupancy ``O`` and sprout maturity ``S``
(:mod:`neuromod.model.junction`) and the loss of bulk ``A`` (:mod:`neuromod.model.muscle`). Each step
``[t, t + h]``:

* evaluates occupancy exactly at ``t + h/2`` and ``t + h`` (from the light chain);
* advances ``O`` with an exponential integrator, exact when occupancy follows the quadratic
  through ``t``, ``t + h/2`` and ``t + h`` (local error O(h^4));
* advances ``S`` and ``A`` with the classical fourth-order Runge-Kutta method, using ``O`` at
  the same three points.

Step sizes adapt per patient: a step is rejected and halved while occupancy at mid-step departs
from the straight line between its ends by more than :data:`CURVATURE_TOLERANCE` (relative to
its value, or to :data:`CURVATURE_FLOOR` where smaller), and doubled where it is below
:data:`GROWTH_FRACTION` of that. Steps are powers
of two of a day (:data:`FINEST_STEP_DAYS` to ``max_step_days``), aligned to multiples of
themselves, so output and treatment days (multiples of the finest step) are always step ends
and the step weights are tabulated once. One thread integrates one patient, all muscles
together: a patient's light-chain time factors serve every muscle, and the states live in
registers rather than in (patients x muscles x steps) arrays, so memory grows with the outputs
asked for, not with the steps taken.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from neuromod.model._jit import SERIAL_BATCH_PATIENTS, njit, prange, run_kernel
from neuromod.model.junction import (
    LIGHT_CHAIN,
    JunctionRates,
    bateman_terms,
    blocked_fraction,
    occupancy,
    sprout_rate,
)
from neuromod.model.muscle import atrophy_rate, strength
from neuromod.reference.parameters import JunctionParameters, MuscleParameters

FloatArray = npt.NDArray[np.float64]

#: Finest step (days, 2^-12: ~21 s). Output and treatment days must be multiples of it.
FINEST_STEP_DAYS = 2.0**-12
#: Longest step (days) when outputs are daily; sparse outputs may allow longer ones.
MAX_STEP_DAYS = 1.0
#: First step after a treatment (days): block starts building within hours.
FIRST_STEP_DAYS = 2.0**-6
#: Largest accepted departure of mid-step occupancy from the chord between its ends, relative
#: to occupancy (or to :data:`CURVATURE_FLOOR` where smaller). The quadrature error of ``O``
#: scales with it to the power 3/2; this value keeps blocked fraction and strength within 1e-4
#: (relative) of a stiff solver at tight tolerances (``tests/test_kinetics.py``).
CURVATURE_TOLERANCE = 0.01
#: Occupancy below which the curvature test is absolute (departure / floor): while under half a
#: percent of a muscle's endplates are occupied, its steep relative rise (occupancy ~ t^8 in the
#: first hour) needs no relative accuracy. Was 1e-3 (issue 10: 5e-3 saved ~12 % of the trial's
#: steps within 2.1e-5 of LSODA at the stop-16 fit, but at the stop-17 fit the sensitive patient
#: with availability 1 reached 2.0e-4, beyond the 1e-4 contract; 4e-3 gives 2.1e-5 there, so
#: 2.5e-3 keeps a margin of a factor 2 in the floor; 1e-2 reached 2.3e-4 at a blocked fraction of
#: 2e-3 (relative down to 1e-3)).
CURVATURE_FLOOR = 2.5e-3
#: The step is doubled (where aligned) after one whose departure was below this fraction of the
#: tolerance: departure scales as h^2, so a doubled step is predicted at 4x it, within the
#: tolerance. Was 1/8 (a 2x margin: steps sat a level too short through the months of wear-off);
#: 1/4 costs ~0.5 rejected steps per subject and saves ~20 % of the steps.
GROWTH_FRACTION = 0.25
#: Exponential factors below this are set to zero (their terms have died out; avoids slow
#: subnormal arithmetic).
NEGLIGIBLE_FACTOR = 1e-250


@dataclass(frozen=True)
class MuscleCourse:
    """Junction and muscle states at the output days; arrays (n_patients, n_muscles, n_days).
    ``steps``: (n_patients,) integration steps each patient took (rejected ones included)."""

    days: FloatArray
    blocked_fraction: FloatArray
    sprout_maturity: FloatArray
    atrophy: FloatArray
    strength: FloatArray
    steps: npt.NDArray[np.int64]


def step_levels(max_step_days: float) -> FloatArray:
    """The allowed step lengths (days), longest first: ``max_step_days / 2**k`` down to the finest."""
    top = np.log2(max_step_days)
    if top != np.round(top) or not FINEST_STEP_DAYS <= max_step_days <= 64:
        raise ValueError(f"max_step_days: must be a power of two between {FINEST_STEP_DAYS} and 64, got {max_step_days}")
    return 2.0 ** np.arange(top, np.log2(FINEST_STEP_DAYS) - 0.5, -1.0)


def lag_weights(steps: FloatArray, turnover_days: float) -> tuple[FloatArray, FloatArray]:
    """((n_steps, 4), (n_steps, 4)) weights of ``O`` at mid-step and at step end:
    ``O(s) = w0 O(0) + w1 occ(0) + w2 occ(h/2) + w3 occ(h)`` for ``dO/dt = (occ - O) / tau``
    with occupancy quadratic through the three points (integrals by 24-point Gauss-Legendre,
    exact to rounding for these smooth integrands)."""
    nodes, weights = np.polynomial.legendre.leggauss(24)
    tables = []
    for fraction in (0.5, 1.0):
        table = np.empty((np.size(steps), 4))
        for i, h in enumerate(np.atleast_1d(steps)):
            s = fraction * h
            u = 0.5 * s * (nodes + 1.0)
            kernel = np.exp(-(s - u) / turnover_days) / turnover_days * 0.5 * s * weights
            x = u / h
            basis = [2.0 * (x - 0.5) * (x - 1.0), -4.0 * x * (x - 1.0), 2.0 * x * (x - 0.5)]
            table[i] = [np.exp(-s / turnover_days)] + [float(np.sum(kernel * b)) for b in basis]
        tables.append(table)
    return tables[0], tables[1]


def _on_finest_grid(values: FloatArray, name: str) -> npt.NDArray[np.int64]:
    ticks = np.asarray(values, dtype=float) / FINEST_STEP_DAYS
    if np.any(np.abs(ticks - np.round(ticks)) > 1e-6):
        raise ValueError(f"{name}: must be multiples of {FINEST_STEP_DAYS} day")
    return np.round(ticks).astype(np.int64)


@dataclass(frozen=True)
class KineticInputs:
    """The arrays the compiled integrator takes, prepared once per call (see :func:`muscle_course`).

    Ticks are multiples of :data:`FINEST_STEP_DAYS`; per-patient arrays are C-contiguous with
    the patient as their leading axis; ``constants`` packs the junction and muscle parameters
    in the order :func:`_stage` and :func:`_advance` read them.
    """

    levels: FloatArray
    ticks_per_day: int
    output_ticks: npt.NDArray[np.int64]
    treatment_ticks: npt.NDArray[np.int64]
    first_level: int
    lag_half: FloatArray
    lag_end: FloatArray
    chain_rates: FloatArray
    coefficients: FloatArray
    doses: FloatArray
    inverse_half_block: FloatArray
    profile_power: FloatArray
    constants: FloatArray

    @property
    def arguments(self) -> tuple:
        """The fields in the order the compiled kernels take them."""
        return (self.levels, self.ticks_per_day, self.output_ticks, self.treatment_ticks, self.first_level,
                self.lag_half, self.lag_end, self.chain_rates, self.coefficients, self.doses,
                self.inverse_half_block, self.profile_power, self.constants)


@lru_cache(maxsize=64)
def _lag_tables(levels: tuple[float, ...], turnover_days: float) -> tuple[FloatArray, FloatArray]:
    """:func:`lag_weights` memoised: every chunk of a trial (and every calibration evaluation
    with the same turnover) shares the same tables."""
    return lag_weights(np.asarray(levels), turnover_days)


def _writable(values: npt.ArrayLike) -> FloatArray:
    """C-contiguous, writable float64 (a copy only where needed). Numba compiles, caches and
    loads one version per signature, and read-only arrays (a broadcast view that happens to be
    contiguous, e.g. for one patient) are a different signature: loading a second one from the
    cache costs a cold ``simulate`` ~0.1-0.3 s."""
    return np.require(values, dtype=np.float64, requirements=("C", "W"))


def kinetic_inputs(
    days: FloatArray,
    treatment_days: FloatArray,
    doses: FloatArray,
    half_block_units: FloatArray,
    rates: JunctionRates,
    junction: JunctionParameters,
    muscle: MuscleParameters,
    profile: FloatArray | None = None,
    max_step_days: float = MAX_STEP_DAYS,
    tolerance: float = CURVATURE_TOLERANCE,
) -> KineticInputs:
    """Validate the arguments of :func:`muscle_course` and lay them out for the compiled integrator."""
    days = np.asarray(days, dtype=float)
    if days.size == 0 or np.any(np.diff(days) <= 0):
        raise ValueError("days: must be a non-empty increasing sequence")
    treatments = np.asarray(treatment_days, dtype=float)
    doses = np.asarray(doses, dtype=float)
    order = np.argsort(treatments, kind="stable")
    treatments, doses = treatments[order], doses[:, order]
    n_patients, _, n_muscles = doses.shape
    levels = step_levels(max_step_days)
    lag_half, lag_end = _lag_tables(tuple(levels.tolist()), float(junction.release_turnover_days))
    output_ticks = _on_finest_grid(days, "days")
    treatment_ticks = _on_finest_grid(treatments, "treatment_days")
    n_terms, n_treatments = LIGHT_CHAIN + 1, treatments.size
    chain_rates, coefficients = bateman_terms(*rates.by_treatment(treatments, junction).chain(), LIGHT_CHAIN)
    shape = (n_patients, n_treatments, n_terms)
    chain_rates = _writable(np.broadcast_to(chain_rates, shape))
    coefficients = _writable(np.broadcast_to(coefficients, shape))
    if profile is None:
        profile = np.ones((n_muscles, 1))
    profile_power = np.ascontiguousarray((np.asarray(profile, dtype=float) ** junction.hill_coefficient).T)
    inverse_half_block = _writable(np.broadcast_to(1.0 / np.asarray(half_block_units, dtype=float),
                                                   (n_patients, n_muscles)))
    constants = np.array([
        junction.hill_coefficient, junction.max_blocked_fraction, junction.sprout_transmission_share,
        junction.sprout_maturation_rate_per_day, np.log(2.0) / junction.sprout_retraction_half_life_days,
        muscle.atrophy_max_fraction, muscle.atrophy_rate_per_day, muscle.atrophy_recovery_rate_per_day,
        tolerance, CURVATURE_FLOOR, GROWTH_FRACTION,
    ])
    first_level = int(np.argmin(np.abs(levels - min(FIRST_STEP_DAYS, max_step_days))))
    return KineticInputs(levels, round(1.0 / FINEST_STEP_DAYS), output_ticks, treatment_ticks, first_level,
                         lag_half, lag_end, chain_rates, coefficients, _writable(doses),
                         inverse_half_block, profile_power, constants)


def muscle_course(
    days: FloatArray,
    treatment_days: FloatArray,
    doses: FloatArray,
    half_block_units: FloatArray,
    rates: JunctionRates,
    junction: JunctionParameters,
    muscle: MuscleParameters,
    profile: FloatArray | None = None,
    max_step_days: float = MAX_STEP_DAYS,
    tolerance: float = CURVATURE_TOLERANCE,
) -> MuscleCourse:
    """Blocked fraction, sprouts, atrophy and strength of every patient's muscles at ``days``.

    days: (n_days,) increasing output days; treatment_days: (n_treatments,) days of injection
    (before ``days[0]``: the integration starts there); doses: (n_patients, n_treatments,
    n_muscles) onabotulinumtoxinA-equivalent units each muscle receives at each treatment;
    half_block_units: (n_patients, n_muscles) active light chain that blocks half of each
    muscle when spread evenly; rates: per-patient rates (arrays broadcasting to
    (n_patients, 1)); profile: (n_muscles, n_bins) dose profile from the spread stage (None:
    even); max_step_days: longest step (a power of two; longer steps suit sparse outputs).
    """
    inputs = kinetic_inputs(days, treatment_days, doses, half_block_units, rates, junction, muscle, profile,
                            max_step_days, tolerance)
    n_patients, _, n_muscles = inputs.doses.shape
    days = np.asarray(days, dtype=float)
    out = np.zeros((4, n_patients, n_muscles, days.size))
    out[3] = 1.0  # full strength until the integration says otherwise
    taken = np.zeros(n_patients, dtype=np.int64)
    run_kernel(_integrate, *inputs.arguments, out, taken, ahead_of_time=n_patients <= SERIAL_BATCH_PATIENTS)
    return MuscleCourse(days, out[0], out[1], out[2], out[3], taken)


@njit(cache=True, fastmath=True, error_model="numpy")
def _stage(occupied, maturity, loss, c):
    """(dS/dt, dA/dt) for one muscle at one Runge-Kutta stage."""
    blocked = blocked_fraction(occupied, maturity, c[1], c[2])
    return sprout_rate(occupied, maturity, c[3], c[4]), atrophy_rate(loss, blocked, c[5], c[6], c[7])


#: One patient's states and work space for :func:`step` (see :func:`patient_workspace`).
PatientWorkspace = namedtuple("PatientWorkspace", [
    "lagged", "maturity", "loss", "occ_start", "occ_half", "occ_end", "ratio_half", "ratio_end", "strength_half",
    "decay", "factor_half", "factor_end", "unit_half", "unit_end"])


@njit(cache=True, fastmath=True, error_model="numpy")
def start_tick(output_ticks, treatment_ticks):  # pragma: no cover - compiled
    """The tick the integration starts at: the first output, or an earlier first treatment."""
    start = output_ticks[0]
    if treatment_ticks.size > 0 and treatment_ticks[0] < start:
        start = treatment_ticks[0]
    return start


@njit(cache=True, fastmath=True, error_model="numpy")
def patient_tables(p, levels, chain_rates, factor_half, factor_end):  # pragma: no cover - compiled
    """Patient ``p``'s light-chain factors over half and whole steps of every level, into the tables."""
    n_treatments, n_terms = chain_rates.shape[1], chain_rates.shape[2]
    for q in range(levels.size):
        for k in range(n_treatments):
            for i in range(n_terms):
                factor_half[q, k, i] = np.exp(-chain_rates[p, k, i] * 0.5 * levels[q])
                factor_end[q, k, i] = np.exp(-chain_rates[p, k, i] * levels[q])


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def patient_workspace(p, levels, chain_rates, n_muscles):  # pragma: no cover - compiled
    """Patient ``p``'s :class:`PatientWorkspace`, allocated once per patient by every kernel.

    ``lagged``, ``maturity``, ``loss`` (the states), ``occ_start``, ``occ_half``, ``occ_end``,
    ``ratio_half``, ``ratio_end`` and ``strength_half``: each (n_muscles,), zero (untreated);
    ``decay`` (n_treatments, n_terms) zero (no treatment given yet); ``factor_half``,
    ``factor_end``: the light-chain factor tables of :func:`patient_tables`; ``unit_half``,
    ``unit_end`` (n_treatments,): work space. Each its own allocation, not rows of one array:
    the compiler then knows they do not overlap and vectorises the per-muscle loops (the trial
    kernel ran 18 % faster per step than with rows of one (9, n_muscles) array)."""
    n_treatments, n_terms = chain_rates.shape[1], chain_rates.shape[2]
    factor_half = np.empty((levels.size, n_treatments, n_terms))
    factor_end = np.empty((levels.size, n_treatments, n_terms))
    patient_tables(p, levels, chain_rates, factor_half, factor_end)
    return PatientWorkspace(np.zeros(n_muscles), np.zeros(n_muscles), np.zeros(n_muscles), np.zeros(n_muscles),
                            np.zeros(n_muscles), np.zeros(n_muscles), np.zeros(n_muscles), np.zeros(n_muscles),
                            np.zeros(n_muscles), np.zeros((n_treatments, n_terms)), factor_half, factor_end,
                            np.zeros(n_treatments), np.zeros(n_treatments))


@njit(cache=True, fastmath=True, error_model="numpy")
def level_tick_counts(levels, ticks_per_day):  # pragma: no cover - compiled
    """Length of each step level in ticks."""
    level_ticks = np.empty(levels.size, dtype=np.int64)
    for q in range(levels.size):
        level_ticks[q] = np.int64(levels[q] * ticks_per_day + 0.5)
    return level_ticks


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def step(p, t, target, level, given, levels, level_ticks, treatment_ticks, first_level, lag_half, lag_end,
         coefficients, doses, inverse_half_block, profile_power, c, lagged, maturity, loss, occ_start, occ_half,
         occ_end, ratio_half, ratio_end, decay, factor_half, factor_end, unit_half, unit_end,
         strength_half):  # pragma: no cover
    """One accepted step of patient ``p`` from tick ``t`` (``t < target``) towards tick ``target``.

    Applies the treatments due at ``t``, then takes the longest step the error control accepts
    that ends neither beyond ``target`` nor beyond the next treatment. ``lagged``, ``maturity``,
    ``loss`` (the states) and ``occ_start`` (occupancy at ``t``), each (n_muscles,), and
    ``decay`` (exp(-rate * time since each treatment)) carry the patient between calls; the
    other arrays are work space, except ``strength_half``, left holding each muscle's strength at
    the middle of the step taken (from ``O`` there and the cubic through sprouts' and loss's values
    and slopes at the step's ends: the skin's mid-step point). ``level`` is the current step level and ``given`` the
    treatments already applied. Returns ``(t, level, given, tries)``: the new tick (the step
    taken is ``levels[level]`` days long unless the level was lowered after it: callers take
    the difference of ticks), the level for the next step, treatments applied, and the tries
    this step cost (rejected ones included). Inlined into its callers.
    """
    n_treatments, n_muscles = doses.shape[1], doses.shape[2]
    n_terms = coefficients.shape[2]
    finest = levels.size - 1
    hill, tolerance = c[0], c[8]
    tries = 0
    while given < n_treatments and treatment_ticks[given] <= t:
        decay[given, :] = 1.0
        given += 1
        level = max(level, first_level)
    boundary = target
    if given < n_treatments:
        boundary = min(boundary, treatment_ticks[given])
    while level < finest and (t % level_ticks[level] != 0 or t + level_ticks[level] > boundary):
        level += 1
    while True:
        tries += 1
        for k in range(given):
            half = 0.0
            full = 0.0
            for i in range(n_terms):
                term = coefficients[p, k, i] * decay[k, i]
                half += term * factor_half[level, k, i]
                full += term * factor_end[level, k, i]
            unit_half[k] = half
            unit_end[k] = full
        for m in range(n_muscles):
            light_half = 0.0
            light_end = 0.0
            for k in range(given):
                light_half += doses[p, k, m] * unit_half[k]
                light_end += doses[p, k, m] * unit_end[k]
            ratio_half[m] = light_half * inverse_half_block[p, m]
            ratio_end[m] = light_end * inverse_half_block[p, m]
        occupancy(ratio_half, profile_power, hill, occ_half)
        occupancy(ratio_end, profile_power, hill, occ_end)
        worst = 0.0
        for m in range(n_muscles):
            chord = 0.5 * (occ_start[m] + occ_end[m])
            worst = max(worst, abs(occ_half[m] - chord) / max(chord, c[9]))
        if worst <= tolerance or level == finest:
            break
        level += 1
    h = levels[level]
    for m in range(n_muscles):
        o0 = lagged[m]
        o_half = (lag_half[level, 0] * o0 + lag_half[level, 1] * occ_start[m]
                  + lag_half[level, 2] * occ_half[m] + lag_half[level, 3] * occ_end[m])
        o_end = (lag_end[level, 0] * o0 + lag_end[level, 1] * occ_start[m]
                 + lag_end[level, 2] * occ_half[m] + lag_end[level, 3] * occ_end[m])
        s0 = maturity[m]
        a0 = loss[m]
        ds1, da1 = _stage(o0, s0, a0, c)
        ds2, da2 = _stage(o_half, s0 + 0.5 * h * ds1, a0 + 0.5 * h * da1, c)
        ds3, da3 = _stage(o_half, s0 + 0.5 * h * ds2, a0 + 0.5 * h * da2, c)
        ds4, da4 = _stage(o_end, s0 + h * ds3, a0 + h * da3, c)
        s1 = s0 + h / 6.0 * (ds1 + 2.0 * ds2 + 2.0 * ds3 + ds4)
        a1 = a0 + h / 6.0 * (da1 + 2.0 * da2 + 2.0 * da3 + da4)
        # mid-step sprouts and loss: the cubic (Hermite) through the ends' values and slopes
        s_half = 0.5 * (s0 + s1) + 0.125 * h * (ds1 - ds4)
        a_half = 0.5 * (a0 + a1) + 0.125 * h * (da1 - da4)
        strength_half[m] = strength(blocked_fraction(o_half, s_half, c[1], c[2]), a_half)
        maturity[m] = s1
        loss[m] = a1
        lagged[m] = o_end
        occ_start[m] = occ_end[m]
    for k in range(given):
        for i in range(n_terms):
            value = decay[k, i] * factor_end[level, k, i]
            decay[k, i] = value if value > NEGLIGIBLE_FACTOR else 0.0
    t += level_ticks[level]
    if worst < c[10] * tolerance and level > 0 and t % level_ticks[level - 1] == 0:
        level -= 1
    return t, level, given, tries


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def advance(p, t, target, level, given, levels, level_ticks, treatment_ticks, first_level, lag_half, lag_end,
            coefficients, doses, inverse_half_block, profile_power, c, lagged, maturity, loss, occ_start, occ_half,
            occ_end, ratio_half, ratio_end, decay, factor_half, factor_end, unit_half, unit_end,
            strength_half):  # pragma: no cover
    """Integrate patient ``p`` from tick ``t`` to tick ``target`` (a step end: an output day) by
    :func:`step` after step. Returns ``(t, level, given, steps)`` with ``t == target``; the
    arguments as :func:`step`'s. Inlined into its callers (no per-call overhead at every output day).
    """
    steps = 0
    while t < target:
        t, level, given, tries = step(
            p, t, target, level, given, levels, level_ticks, treatment_ticks, first_level, lag_half, lag_end,
            coefficients, doses, inverse_half_block, profile_power, c, lagged, maturity, loss, occ_start, occ_half,
            occ_end, ratio_half, ratio_end, decay, factor_half, factor_end, unit_half, unit_end, strength_half)
        steps += tries
    return t, level, given, steps


@njit(cache=True, fastmath=True, parallel=True, error_model="numpy")
def _integrate(levels, ticks_per_day, output_ticks, treatment_ticks, first_level, lag_half, lag_end, chain_rates,
               coefficients, doses, inverse_half_block, profile_power, c, out, taken):  # pragma: no cover - compiled
    n_patients, n_muscles = doses.shape[0], doses.shape[2]
    level_ticks = level_tick_counts(levels, ticks_per_day)
    start = start_tick(output_ticks, treatment_ticks)
    for p in prange(n_patients):
        w = patient_workspace(p, levels, chain_rates, n_muscles)
        lagged, maturity, loss, occ_start, occ_half, occ_end = (w.lagged, w.maturity, w.loss, w.occ_start, w.occ_half,
                                                                w.occ_end)
        ratio_half, ratio_end, strength_half, decay = w.ratio_half, w.ratio_end, w.strength_half, w.decay
        factor_half, factor_end, unit_half, unit_end = w.factor_half, w.factor_end, w.unit_half, w.unit_end
        given = 0
        next_output = 0
        while next_output < output_ticks.size and output_ticks[next_output] <= start:
            next_output += 1  # outputs at the start: the untreated state already in ``out``
        level = 0
        t = start
        steps = 0
        for o in range(next_output, output_ticks.size):
            t, level, given, taken_now = advance(
                p, t, output_ticks[o], level, given, levels, level_ticks, treatment_ticks, first_level, lag_half,
                lag_end, coefficients, doses, inverse_half_block, profile_power, c, lagged, maturity, loss, occ_start,
                occ_half, occ_end, ratio_half, ratio_end, decay, factor_half, factor_end, unit_half, unit_end,
                strength_half)
            steps += taken_now
            for m in range(n_muscles):
                blocked = blocked_fraction(lagged[m], maturity[m], c[1], c[2])
                out[0, p, m, o] = blocked
                out[1, p, m, o] = maturity[m]
                out[2, p, m, o] = loss[m]
                out[3, p, m, o] = strength(blocked, loss[m])
        taken[p] = steps


def patient_ode(
    doses_per_muscle: FloatArray,
    half_block_units: FloatArray,
    rates: JunctionRates,
    treatment_days: FloatArray,
    junction: JunctionParameters,
    muscle: MuscleParameters,
    profile: FloatArray | None = None,
):
    """The same model as one ODE system for a general-purpose solver (e.g. SciPy's ``solve_ivp``).

    Each treatment's toxin has its own chain (its light chain decays at its own rate,
    :meth:`JunctionRates.by_treatment`); the muscle sees their sum. Returns
    ``(rhs, depots, observe)``: ``rhs(t, y)`` for the state ``y`` of shape
    ((5 * n_treatments + 3) * n_muscles,), ordered ``[depot, free, bound, internalised, light
    chain]`` per treatment, then ``[O, S, A]``, each block per muscle; treatment ``k`` adds
    ``doses_per_muscle`` to ``y[depots[k]]``; ``observe(y)`` gives (blocked fraction, strength),
    each (n_muscles, ...). One patient: rates are scalars. Used to check :func:`muscle_course`
    and as the SciPy peer in ``benchmarks/population.py``.
    """
    n_muscles = np.asarray(doses_per_muscle).size
    n_treatments = np.size(treatment_days)
    per_treatment = rates.by_treatment(treatment_days, junction)
    decay = np.ravel(per_treatment.light_chain_decay)[-n_treatments:]
    outflow, gain = (np.array([float(np.ravel(r)[0]) for r in rs]) for rs in rates.chain())
    profile_power = (np.ones((n_muscles, 1)) if profile is None else np.asarray(profile, dtype=float)) ** junction.hill_coefficient
    inverse_half_block = 1.0 / np.asarray(half_block_units, dtype=float).reshape(n_muscles)
    n = junction.hill_coefficient
    max_block, share = junction.max_blocked_fraction, junction.sprout_transmission_share
    mature, retract = junction.sprout_maturation_rate_per_day, np.log(2.0) / junction.sprout_retraction_half_life_days
    tau = junction.release_turnover_days
    chain = 5 * n_treatments

    def blocked_of(lagged, maturity):
        return max_block * lagged * (1.0 - share * maturity)

    def rhs(_t, y):
        x = y.reshape(chain + 3, n_muscles)
        dx = np.empty_like(x)
        light = np.zeros(n_muscles)
        for k in range(n_treatments):
            c = 5 * k
            dx[c] = -outflow[0] * x[c]
            for j in range(1, LIGHT_CHAIN + 1):
                rate = decay[k] if j == LIGHT_CHAIN else outflow[j]
                dx[c + j] = gain[j - 1] * x[c + j - 1] - rate * x[c + j]
            light += x[c + LIGHT_CHAIN]
        ratio = np.maximum(light, 0.0) * inverse_half_block
        occupied = 1.0 - np.mean(1.0 / (1.0 + profile_power * (ratio**n)[:, None]), axis=1)
        lagged, maturity, loss = x[chain], x[chain + 1], x[chain + 2]
        dx[chain] = (occupied - lagged) / tau
        dx[chain + 1] = mature * lagged * (1.0 - maturity) - retract * (1.0 - lagged) * maturity
        target = muscle.atrophy_max_fraction * blocked_of(lagged, maturity)
        dx[chain + 2] = np.where(target > loss, muscle.atrophy_rate_per_day, muscle.atrophy_recovery_rate_per_day) * (target - loss)
        return dx.ravel()

    def observe(y):
        x = y.reshape((chain + 3, n_muscles) + y.shape[1:])
        blocked = blocked_of(x[chain], x[chain + 1])
        return blocked, (1.0 - blocked) * (1.0 - x[chain + 2])

    depots = [slice(5 * k * n_muscles, (5 * k + 1) * n_muscles) for k in range(n_treatments)]
    return rhs, depots, observe


def relative_error(values: FloatArray, reference: FloatArray, floor: float = 1e-3) -> float:
    """Largest ``|values - reference| / max(|reference|, floor)``: relative error, measured in
    absolute terms below ``floor`` (a blocked fraction of 1e-3 is a thousandth of the endplates).
    The agreement measure of ``tests/test_kinetics.py`` and ``benchmarks/population.py``."""
    values, reference = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    return float(np.max(np.abs(values - reference) / np.maximum(np.abs(reference), floor)))
