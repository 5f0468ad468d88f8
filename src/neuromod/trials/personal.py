"""Personal predictions: the population model conditioned on one patient's own follow-ups.

What pharmacometric tools call empirical Bayes (NONMEM's POSTHOC, Monolix's conditional
distributions). The *prior* is the population model for patients like this one: virtual twins
with this patient's covariates and baseline grades and the unexplained between-person variation
of the virtual trials (:func:`neuromod.trials.population.draw_effects`: toxin sensitivity, light-
chain persistence, absorption, the strength drop the patient notices, the dose reaching danger
muscles, and the baseline line depths within the rating noise of the recorded baseline grades).
The *likelihood* of each follow-up is the rater model of the virtual trials: an investigator sees
a line of depth ``d`` with Gaussian noise ``scores.rater_sd_mm`` (the visit's shared deviation and
the investigator's own, :func:`neuromod.model.scores.rater_noise`) and grades it against the FWS
cut-points (ordinal probit, :func:`neuromod.model.scores.grade_log_probability`); a patient
rating themselves sees ``subject_depth_bias * d`` with the subject's total noise; both see lines
shallower just after an injection (``expectation_bias``, fading over ``expectation_days`` since the
latest treatment), as in :func:`neuromod.trials.trial.simulate_chunk`. "Noticed an effect by day
t" is the trial diary's rule: the area's strength has dropped by the patient's own threshold.

Method (chosen by measurement, ``benchmarks/personal.py``): importance sampling from the prior,
each twin run by the population engine (:func:`neuromod.model.simulate.run_model`), with the
effective sample size (ESS) as the diagnostic. When the ESS falls below :data:`MIN_ESS_FRACTION`
of the particles (many or surprising observations), the fallback is sequential Monte Carlo with
adaptive tempering: the likelihood is brought in by powers ``beta`` chosen so that each step
keeps half the ESS, the particles are resampled and moved by random-walk Metropolis steps on
the standard-normal random effects (a few engine runs each). With no observations the weights
are equal and the answer is the population's.

Everything here is a model estimate for planning and education, not medical advice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from neuromod.model.patient import with_product
from neuromod.model.scores import expected_score, grade_log_probability, onset_drop, onset_window_end, rater_noise
from neuromod.model.simulate import (
    DISCLAIMER,
    area_landmarks,
    plan_injections,
    run_model,
)
from neuromod.model.skin import dynamic_target_depth
from neuromod.model.spread import SpreadResult, spread
from neuromod.reference.anatomy import FaceMap, load_face_map
from neuromod.reference.parameters import ModelParameters, default_parameters
from neuromod.schemas.history import History, Observation
from neuromod.schemas.plan import Plan
from neuromod.trials.population import (
    Cohort,
    RandomEffects,
    cohort_from_effects,
    expectation_factor,
    draw_effects,
    subset,
)

FloatArray = npt.NDArray[np.float64]

#: Virtual twins for a command-line prediction (< 2 s on 2 cores, benchmarks/personal.py);
#: :data:`API_PARTICLES` for an API call (< 0.5 s).
DEFAULT_PARTICLES = 400
API_PARTICLES = 200
#: Below this share of the particles, the importance weights are too uneven and the tempered
#: SMC fallback runs. Measured (benchmarks/personal.py, 200 virtual patients drawn from the
#: population): it ran for 49 of them, where importance sampling alone gave the same coverage
#: and a slightly larger wear-off error (10.4 vs 9.9 days); a history the population finds
#: surprising (examples/histories/long_lasting.yaml) leaves importance sampling with an ESS of
#: about 1, and there the fallback is what gives a posterior at all.
MIN_ESS_FRACTION = 0.2
#: Metropolis moves after each tempering step, and the most tempering steps (bounded time).
MOVES_PER_STEP = 2
MAX_TEMPERING_STEPS = 12
#: Muscles receiving less than this (onabotulinumtoxinA units, summed over treatments) keep
#: full strength in the personal runs: as in benchmarks/population.py, they get < 1e-4 U of
#: active light chain; measured effect on line depth < 1e-5 mm, for half the engine time.
MIN_MUSCLE_UNITS = 1e-3
#: assumption: a patient's recollection of whether they had noticed an effect by a given day is
#: wrong about 1 time in 50; keeps one mistaken diary answer from ruling out twins that fit the
#: graded follow-ups.
ONSET_REPORT_ERROR = 0.02
#: Bound on particles x simulated days (time and memory of one prediction; a ten-year history
#: runs with fewer particles rather than without bound).
MAX_PARTICLE_DAYS = 600_000
#: Stand-in wear-off day of a twin whose effect lasts past the horizon (kept finite for quantiles).
NOT_WORN_OFF = 1e9
BANDS = (("p05", 0.05), ("p25", 0.25), ("median", 0.5), ("p75", 0.75), ("p95", 0.95))


# -- small statistics ---------------------------------------------------------------------
def weighted_quantiles(values: FloatArray, weights: FloatArray, quantiles: FloatArray) -> FloatArray:
    """Quantiles of ``values`` (particles on axis 0) under normalized ``weights``, interpolated
    between the mid-points of the sorted weights (equal weights: the usual sample quantiles)."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, axis=0)
    sorted_values = np.take_along_axis(values, order, axis=0)
    w = np.asarray(weights, dtype=float)[order]
    cumulative = np.cumsum(w, axis=0) - 0.5 * w
    cumulative /= np.sum(w, axis=0)
    flat_values = sorted_values.reshape(values.shape[0], -1)
    flat_cum = cumulative.reshape(values.shape[0], -1)
    out = np.empty((len(quantiles), flat_values.shape[1]))
    for j in range(flat_values.shape[1]):
        out[:, j] = np.interp(quantiles, flat_cum[:, j], flat_values[:, j])
    return out.reshape((len(quantiles),) + values.shape[1:])


def effective_sample_size(log_weights: FloatArray) -> float:
    """Kish's effective sample size of (unnormalized) log importance weights."""
    w = np.exp(log_weights - np.max(log_weights))
    return float(w.sum() ** 2 / np.sum(w**2))


def systematic_resample(weights: FloatArray, rng: np.random.Generator, n: int | None = None) -> npt.NDArray[np.int64]:
    """Indices of ``n`` particles drawn in proportion to ``weights`` (systematic resampling)."""
    n = weights.size if n is None else n
    cumulative = np.cumsum(weights / weights.sum())
    cumulative[-1] = 1.0
    return np.searchsorted(cumulative, (rng.random() + np.arange(n)) / n)


# -- the twins and their likelihood ---------------------------------------------------------
@dataclass(frozen=True)
class Course:
    """What the likelihood and the prediction need from one engine run of the twins.

    days: (n_days,) from day 0; contraction_mm, rest_mm, strength: (n, n_areas, n_days) line depths
    at maximum contraction and at rest, and the area's residual strength.
    """

    days: FloatArray
    contraction_mm: FloatArray
    rest_mm: FloatArray
    strength: FloatArray


@dataclass(frozen=True)
class _Setup:
    """One history prepared for the engine."""

    history: History
    areas: list[str]
    area_index: list[int]
    treatment_days: FloatArray
    doses: FloatArray  # (1, n_treatments, n_muscles) ona units
    danger_columns: list[int]
    profile: FloatArray
    muscles: npt.NDArray[np.int64]
    treated_areas: list[list[int]]  # per treatment: face-map indices of the areas it targets
    face_map: FaceMap
    params: ModelParameters


#: Spread results of recent sessions (the spread stage takes ~0.3 s; histories repeat plans, and
#: an API serves the same plans again): key -> (result, face map, parameters), the last two kept
#: so that the ids in the key stay theirs.
_SPREAD_CACHE: dict[tuple, tuple] = {}
_SPREAD_CACHE_SIZE = 64


def session_spread(plan: Plan, face_map: FaceMap, params: ModelParameters) -> SpreadResult:
    """The spread stage of one session's plan (cached by the plan's injections, dilution and product)."""
    key = (plan.model_dump_json(include={"product", "vial_units", "saline_ml", "injections", "areas"}),
           id(face_map), id(params))
    if key not in _SPREAD_CACHE:
        if len(_SPREAD_CACHE) >= _SPREAD_CACHE_SIZE:
            _SPREAD_CACHE.pop(next(iter(_SPREAD_CACHE)))
        result = spread(face_map, plan_injections(plan.points(face_map), plan), plan.product_info.spread_factor,
                        params.spread)
        _SPREAD_CACHE[key] = (result, face_map, params)
    return _SPREAD_CACHE[key][0]


def _prepare(history: History, face_map: FaceMap, params: ModelParameters) -> _Setup:
    doses, treated, profile = [], [], None
    for treatment in history.treatments:
        plan = treatment.plan
        points = plan.points(face_map)
        result = session_spread(plan, face_map, params)
        doses.append(result.dose_per_muscle)
        profile = result.profile  # the last session's dose profile (the one predicted)
        areas = {p.area for p in points}
        treated.append([a for a, name in enumerate(face_map.areas) if name in areas])
    dose_array = np.array(doses)[None, :, :]
    muscles = np.flatnonzero(dose_array[0].sum(axis=0) >= MIN_MUSCLE_UNITS)
    observed = {o.area for o in history.observations if o.area is not None}
    targeted = {face_map.areas[a] for areas in treated for a in areas}
    areas = [a for a in face_map.areas if a in observed | targeted]
    if not areas:  # explicit x/y points only: the areas whose muscles the last session reaches most
        weights = face_map.area_weights(params.skin.area_share)
        reach = weights @ (doses[-1] / max(float(doses[-1].max()), 1e-12))
        areas = [face_map.areas[int(np.argmax(reach))]]
    danger = [j for j, r in enumerate(face_map.regions) if r.danger in ("eyelid_ptosis", "brow_ptosis")]
    return _Setup(history, areas, [face_map.areas.index(a) for a in areas],
                  np.asarray(history.treatment_days, dtype=float), dose_array, danger, profile, muscles,
                  treated, face_map, params)


def _run(setup: _Setup, cohort: Cohort, last_day: int) -> Course:
    """The twins' course from day 0 to ``last_day`` (daily), through the population engine."""
    days = np.arange(0.0, float(last_day) + 1.0)
    n = cohort.patients.count
    doses = np.repeat(setup.doses, n, axis=0)
    doses[:, :, setup.danger_columns] *= cohort.danger_multiplier[:, None, None]
    given = setup.treatment_days <= last_day
    # the product's onset and persistence scale the patient's kinetics: those of the last session's
    # product (the one predicted), as the dose profile is the last session's
    treated = with_product(cohort.patients, setup.history.treatments[-1].plan.product_info)
    output = run_model(days, setup.treatment_days[given], doses[:, given], treated, setup.face_map,
                       setup.params, setup.profile, muscles=setup.muscles)
    pick = setup.area_index
    return Course(days, output.contraction_depth_mm[:, pick], output.rest_depth_mm[:, pick],
                  output.area_strength[:, pick])


def twin_course(history: History, cohort: Cohort, last_day: int, params: ModelParameters | None = None,
                face_map: FaceMap | None = None) -> Course:
    """The course of virtual patients (``cohort``, e.g. from
    :func:`neuromod.trials.population.cohort_from_effects`) treated as in ``history``, from day 0
    to ``last_day``, for the treated and observed areas (``history_areas``): the same runs the
    posterior is built from (validation benchmarks draw known patients with it)."""
    params = params or default_parameters()
    return _run(_prepare(history, face_map or load_face_map(), params), cohort, last_day)


def history_areas(history: History, face_map: FaceMap | None = None) -> list[str]:
    """The areas a personal prediction covers: those treated or observed (face-map order)."""
    return _prepare(history, face_map or load_face_map(), default_parameters()).areas


def _latest_treatment(setup: _Setup, day: float) -> int:
    """Index of the latest treatment on or before ``day``."""
    return int(np.searchsorted(setup.treatment_days, day, side="right") - 1)


def _rater_view(setup: _Setup, day: int) -> float:
    """The raters' expectation factor on line depth ``day`` days from the first treatment."""
    since = day - setup.treatment_days[_latest_treatment(setup, day)]
    return float(expectation_factor(since, setup.params))


def rating_log_probability(depth_mm: FloatArray, grade: int, rater: str, params: ModelParameters) -> FloatArray:
    """log P(a ``rater`` gives FWS ``grade`` | true line depth ``depth_mm``): the rater model of the
    virtual trials (:func:`neuromod.trials.population.investigator_grades`, ``subject_grades``).

    One rating carries the rater's whole noise: the persistent impression of the face, the visit's
    shared deviation and the rater's own. A patient's ratings are scored as independent given the
    twin's depth; the persistent part makes one rater's grades of one face agree more than that,
    so a long history counts somewhat more than it should (a twin's baseline depth offset,
    :class:`neuromod.trials.population.RandomEffects`, absorbs much of a rater's stable impression)."""
    sd = rater_noise(params).total_sd_mm(rater)  # one rating: persistent, shared and own parts
    if rater == "self":
        return grade_log_probability(params.population.subject_depth_bias * depth_mm, grade, params.scores, sd)
    return grade_log_probability(depth_mm, grade, params.scores, sd)


def _log_likelihood(setup: _Setup, course: Course, cohort: Cohort, observations: list[Observation]) -> FloatArray:
    """(n,) log-likelihood of the observations for each twin."""
    params = setup.params
    total = np.zeros(course.contraction_mm.shape[0])
    for obs in observations:
        day = int(obs.day)
        view = _rater_view(setup, day)
        if obs.area is not None:
            a = setup.areas.index(obs.area)
            for grade, depth in ((obs.fws_contraction, course.contraction_mm), (obs.fws_rest, course.rest_mm)):
                if grade is not None:
                    total += rating_log_probability(depth[:, a, day] * view, grade, obs.rater, params)
        if obs.onset_noticed is not None:
            k = _latest_treatment(setup, day)
            start = int(setup.treatment_days[k])
            if obs.area is not None:
                columns = [setup.areas.index(obs.area)]
            else:
                columns = [setup.areas.index(setup.face_map.areas[a]) for a in setup.treated_areas[k]
                           if setup.face_map.areas[a] in setup.areas] or list(range(len(setup.areas)))
            # noticed by ``day``: the largest drop since the treatment has reached the twin's share of
            # that treatment's peak (model.scores.onset_drop; the peak within its window, as in trials)
            end = int(onset_window_end(setup.treatment_days, k))
            peak = (1.0 - course.strength[:, columns, start + 1: end + 1]).reshape(total.size, -1).max(
                axis=1, initial=0.0)
            drop = 1.0 - course.strength[:, columns, start + 1: day + 1] if day > start else np.zeros((total.size, 1, 1))
            noticed = drop.reshape(total.size, -1).max(axis=1, initial=0.0) >= onset_drop(peak, cohort.onset_threshold,
                                                                                          params.scores)
            agrees = noticed == bool(obs.onset_noticed)
            total += np.log(np.where(agrees, 1.0 - ONSET_REPORT_ERROR, ONSET_REPORT_ERROR))
    return total


# -- the random effects as one vector --------------------------------------------------------
_SCALARS = ("half_block", "light_chain_decay", "availability", "onset_threshold", "danger_dose")


def _to_vector(effects: RandomEffects, columns: list[int]) -> FloatArray:
    parts = [getattr(effects, name)[:, None] for name in _SCALARS]
    return np.hstack(parts + [effects.contraction_depth[:, columns], effects.rest_depth[:, columns]])


def _from_vector(vector: FloatArray, template: RandomEffects, columns: list[int]) -> RandomEffects:
    k = len(_SCALARS)
    contraction, rest = template.contraction_depth.copy(), template.rest_depth.copy()
    contraction[:, columns] = vector[:, k: k + len(columns)]
    rest[:, columns] = vector[:, k + len(columns):]
    return RandomEffects(*(vector[:, i].copy() for i in range(k)), contraction, rest)


def _take(effects: RandomEffects, index: npt.NDArray[np.int64]) -> RandomEffects:
    return RandomEffects(*(getattr(effects, f)[index] for f in effects.__dataclass_fields__))


# -- the prediction ------------------------------------------------------------------------
@dataclass(frozen=True)
class Diagnostic:
    """How the posterior was obtained, and how trustworthy the particle approximation is.

    ess: effective sample size of the final weights (particles when equally weighted);
    prior_ess: ESS of plain importance sampling from the prior (the quantity that picks the
    method); tempering_steps and acceptance: of the SMC fallback (0 and None without it).
    """

    method: str
    particles: int
    observations: int
    ess: float
    prior_ess: float
    tempering_steps: int = 0
    acceptance: float | None = None

    def to_json(self) -> dict:
        return {"method": self.method, "particles": self.particles, "observations": self.observations,
                "ess": round(self.ess, 1), "ess_fraction": round(self.ess / self.particles, 4),
                "prior_ess": round(self.prior_ess, 1), "tempering_steps": self.tempering_steps,
                "mh_acceptance": None if self.acceptance is None else round(self.acceptance, 3)}


@dataclass(frozen=True)
class ParameterSummary:
    """One personal parameter: the population prior's median and the posterior's 5/50/95 %."""

    name: str
    unit: str
    prior_median: float
    posterior_median: float
    posterior_p05: float
    posterior_p95: float


@dataclass(frozen=True)
class AreaPrediction:
    """One area's predicted course on ``days`` (from the first treatment): bands of the expected
    FWS grade at contraction and at rest (keys p05, p25, median, p75, p95), and the wear-off day of
    the last treatment (keys p05, median, p95; None: not within the horizon)."""

    days: FloatArray
    fws_contraction: dict[str, FloatArray]
    fws_rest: dict[str, FloatArray]
    wear_off_day: dict[str, float | None]


@dataclass(frozen=True)
class PersonalPrediction:
    """A patient's personal prediction (model estimates for planning and education, not medical
    advice). ``areas`` cover the last treatment to the horizon; ``full_days`` and the particle
    arrays the whole history (for plots and predictive checks); ``twins`` are the weighted
    posterior particles (``weights`` normalized)."""

    history: History
    areas: dict[str, AreaPrediction]
    retreat_day: float | None
    parameters: list[ParameterSummary]
    diagnostic: Diagnostic
    full_days: FloatArray
    area_names: list[str]
    contraction_mm: FloatArray
    rest_mm: FloatArray
    weights: FloatArray
    twins: Cohort
    params: ModelParameters
    next_dose: dict | None = None
    notes: list[str] = field(default_factory=list)

    def rating_probabilities(self, day: int, area: str, kind: str = "contraction", rater: str = "investigator") -> FloatArray:
        """(4,) predictive probabilities that a ``rater`` grades ``area`` 0, 1, 2, 3 on ``day``
        (rater noise and posterior uncertainty together): the predictive check of the benchmark."""
        a = self.area_names.index(area)
        depth = (self.contraction_mm if kind == "contraction" else self.rest_mm)[:, a, int(day)]
        since = day - max(t for t in self.history.treatment_days if t <= day)
        depth = depth * expectation_factor(since, self.params)
        return np.array([float(np.sum(self.weights * np.exp(rating_log_probability(depth, g, rater, self.params))))
                         for g in range(4)])

    def band_table(self) -> dict[str, dict]:
        return {area: {"days": p.days, "fws_contraction": p.fws_contraction, "fws_rest": p.fws_rest}
                for area, p in self.areas.items()}

    def to_json(self) -> dict:
        """The documented JSON shape of ``neuromod personalize --json`` (days from the first treatment)."""
        def series(values: FloatArray) -> list[float]:
            return [round(float(v), 4) for v in values]

        out = {
            "areas": {
                area: {
                    "days": [int(d) for d in p.days],
                    "fws_contraction": {k: series(v) for k, v in p.fws_contraction.items()},
                    "fws_rest": {k: series(v) for k, v in p.fws_rest.items()},
                    "wear_off_day": dict(p.wear_off_day),
                }
                for area, p in self.areas.items()
            },
            "retreat_day": self.retreat_day,
            "parameters": {
                s.name: {"unit": s.unit, "prior_median": round(s.prior_median, 5),
                         "posterior_median": round(s.posterior_median, 5),
                         "posterior_p05": round(s.posterior_p05, 5), "posterior_p95": round(s.posterior_p95, 5)}
                for s in self.parameters
            },
            "diagnostic": self.diagnostic.to_json(),
            "observations": [o.model_dump(exclude_none=True, exclude={"date"}) for o in self.history.observations],
            "notes": list(self.notes),
            "first_treatment_date": None if self.history.first_date is None else str(self.history.first_date),
            "disclaimer": DISCLAIMER,
        }
        if self.next_dose is not None:
            out["next_dose"] = self.next_dose
        return out


def _parameter_summaries(setup: _Setup, cohort: Cohort, weights: FloatArray, description_typical: Cohort) -> list[ParameterSummary]:
    p, typical = cohort.patients, description_typical.patients
    rows = [
        ("half_block_scale", "x typical half-block dose (higher: less sensitive)", p.half_block_scale[:, 0],
         float(typical.half_block_scale[0, 0])),
        ("light_chain_decay_scale", "x typical light-chain decay rate (higher: shorter-lasting)",
         p.light_chain_decay_scale[:, 0], 1.0),
        ("availability_scale", "x typical absorption rate (higher: faster onset)", p.availability_scale[:, 0], 1.0),
        ("onset_threshold", "strength drop noticed (fraction)", cohort.onset_threshold,
         float(description_typical.onset_threshold[0])),
    ]
    strain0 = typical.baseline_strain_ratio
    for a, area in zip(setup.area_index, setup.areas):
        contraction = p.baseline_static_mm[:, a] + dynamic_target_depth(p.baseline_strain_ratio[:, a], setup.params.skin)
        prior = float(typical.baseline_static_mm[0, a] + dynamic_target_depth(strain0[0, a], setup.params.skin))
        rows.append((f"contraction_depth_mm.{area}", "mm, baseline line depth at maximum contraction", contraction, prior))
        rows.append((f"rest_depth_mm.{area}", "mm, baseline line depth at rest", p.baseline_static_mm[:, a],
                     float(typical.baseline_static_mm[0, a])))
    out = []
    for name, unit, values, prior in rows:
        q05, q50, q95 = weighted_quantiles(values, weights, np.array([0.05, 0.5, 0.95]))
        out.append(ParameterSummary(name, unit, prior, float(q50), float(q05), float(q95)))
    return out


def _posterior(setup: _Setup, effects: RandomEffects, particles: int, rng: np.random.Generator,
               horizon: int, min_ess_fraction: float) -> tuple[RandomEffects, Cohort, FloatArray, Course, Diagnostic]:
    """Importance sampling from the prior, with tempered SMC when the ESS is poor."""
    history, params = setup.history, setup.params
    observations = history.observations
    cohort = cohort_from_effects(history.patient, effects, setup.face_map.areas, params)
    course = _run(setup, cohort, horizon)
    if not observations:
        weights = np.full(particles, 1.0 / particles)
        return effects, cohort, weights, course, Diagnostic("prior (no observations)", particles, 0,
                                                            float(particles), float(particles))
    log_lik = _log_likelihood(setup, course, cohort, observations)
    prior_ess = effective_sample_size(log_lik) if np.isfinite(log_lik).any() else 0.0
    if prior_ess >= min_ess_fraction * particles:
        w = np.exp(log_lik - log_lik.max())
        return effects, cohort, w / w.sum(), course, Diagnostic("importance_sampling", particles, len(observations),
                                                              prior_ess, prior_ess)
    # tempered SMC on the standard-normal random effects
    columns = setup.area_index
    vector = _to_vector(effects, columns)
    template = effects
    last_observed = max(int(o.day) for o in observations)
    beta, steps, accepted, proposed = 0.0, 0, 0, 0
    while beta < 1.0 and steps < MAX_TEMPERING_STEPS:
        next_beta = _next_temperature(log_lik, beta)
        if steps == MAX_TEMPERING_STEPS - 1:
            next_beta = 1.0
        w = np.exp((next_beta - beta) * (log_lik - log_lik.max()))
        index = systematic_resample(w, rng)
        vector, log_lik, template = vector[index], log_lik[index], _take(template, index)
        beta, steps = next_beta, steps + 1
        spread_scale = np.linalg.cholesky(np.cov(vector.T) + 1e-6 * np.eye(vector.shape[1]))
        step_size = 2.38 / np.sqrt(vector.shape[1])
        for _ in range(MOVES_PER_STEP):
            proposal = vector + step_size * rng.standard_normal(vector.shape) @ spread_scale.T
            moved = _from_vector(proposal, template, columns)
            moved_cohort = cohort_from_effects(history.patient, moved, setup.face_map.areas, params)
            proposal_lik = _log_likelihood(setup, _run(setup, moved_cohort, last_observed), moved_cohort, observations)
            log_ratio = (beta * (proposal_lik - log_lik) - 0.5 * np.sum(proposal**2 - vector**2, axis=1))
            accept = np.log(rng.random(particles)) < log_ratio
            vector[accept], log_lik[accept] = proposal[accept], proposal_lik[accept]
            accepted += int(accept.sum())
            proposed += particles
            rate = accept.mean()
            step_size *= 1.3 if rate > 0.35 else (0.6 if rate < 0.15 else 1.0)
    effects = _from_vector(vector, template, columns)
    cohort = cohort_from_effects(history.patient, effects, setup.face_map.areas, params)
    course = _run(setup, cohort, horizon)
    weights = np.full(particles, 1.0 / particles)
    return effects, cohort, weights, course, Diagnostic("tempered_smc", particles, len(observations), float(particles),
                                                        prior_ess, steps, accepted / max(proposed, 1))


def _next_temperature(log_lik: FloatArray, beta: float) -> float:
    """The next tempering power: the ESS of the incremental weights is half the particles."""
    target = 0.5 * log_lik.size
    if effective_sample_size((1.0 - beta) * log_lik) >= target:
        return 1.0
    low, high = beta, 1.0
    for _ in range(40):
        mid = 0.5 * (low + high)
        if effective_sample_size((mid - beta) * log_lik) >= target:
            low = mid
        else:
            high = mid
    return max(low, beta + 1e-4)


def personalize(
    history: History,
    days_ahead: int = 180,
    particles: int = DEFAULT_PARTICLES,
    seed: int = 0,
    params: ModelParameters | None = None,
    face_map: FaceMap | None = None,
    min_ess_fraction: float = MIN_ESS_FRACTION,
) -> PersonalPrediction:
    """The personal prediction of ``history``: posterior over the patient's random effects and
    the predicted course of each treated or observed area from the last treatment to
    ``days_ahead`` days after it (see the module docstring).

    particles: virtual twins (1000 on the command line; :data:`API_PARTICLES` answers an API call
    in well under 0.5 s); seed: the twins' draws (same seed, same answer); min_ess_fraction: the
    share of particles below which importance sampling hands over to tempered SMC (0: never,
    1: always when there are observations; the benchmark compares them).
    """
    params = params or default_parameters()
    face_map = face_map or load_face_map()
    if not 1 <= days_ahead <= 730:
        raise ValueError(f"days_ahead: must be 1-730 days after the last treatment, got {days_ahead}")
    setup = _prepare(history, face_map, params)
    last_treatment = int(setup.treatment_days[-1])
    horizon = max(last_treatment + days_ahead, history.last_day)
    particles = int(max(50, min(particles, MAX_PARTICLE_DAYS // (horizon + 1))))
    rng = np.random.default_rng(seed)
    effects = draw_effects(particles, len(face_map.areas), rng, skin=True)
    effects, cohort, weights, course, diagnostic = _posterior(setup, effects, particles, rng, horizon,
                                                              min_ess_fraction)
    n_areas = len(face_map.areas)
    none = RandomEffects(*(np.zeros(1) for _ in _SCALARS), np.zeros((1, n_areas)), np.zeros((1, n_areas)))
    typical = cohort_from_effects(history.patient, none, face_map.areas, params)  # the population's typical twin
    window = slice(last_treatment, last_treatment + days_ahead + 1)
    days = course.days[window]
    quantiles = np.array([q for _, q in BANDS])
    fws_c = expected_score(course.contraction_mm, params.scores)
    fws_r = expected_score(course.rest_mm, params.scores)
    areas: dict[str, AreaPrediction] = {}
    notes: list[str] = []
    without_effect: set[str] = set()
    for a, area in enumerate(setup.areas):
        bands_c = weighted_quantiles(fws_c[:, a, window], weights, quantiles)
        bands_r = weighted_quantiles(fws_r[:, a, window], weights, quantiles)
        landmarks = [area_landmarks(days, fws_c[p, a, window], course.strength[p, a, window], params.scores)
                     for p in range(particles)]
        wear = np.array([w if w is not None else NOT_WORN_OFF for _, _, w in landmarks])
        wear_q = weighted_quantiles(wear, weights, np.array([0.05, 0.5, 0.95]))
        wear_q = np.where(wear_q > days[-1], np.inf, wear_q)
        no_effect = float(np.sum(weights[[peak is None for _, peak, _ in landmarks]]))
        if no_effect > 0.5:
            wear_q = np.full(3, np.inf)
            without_effect.add(area)
            notes.append(f"{area}: most twins show no effect of the last session (FWS improves by <= 0.05); "
                         "no wear-off day")
        areas[area] = AreaPrediction(
            days,
            {name: bands_c[i] for i, (name, _) in enumerate(BANDS)},
            {name: bands_r[i] for i, (name, _) in enumerate(BANDS)},
            {name: (float(round(v, 1)) if np.isfinite(v) else None) for name, v in zip(("p05", "median", "p95"), wear_q)},
        )
    treated = [face_map.areas[a] for a in setup.treated_areas[-1] if face_map.areas[a] in areas]
    medians = [m for m in (areas[a].wear_off_day["median"] for a in treated or list(areas)) if m is not None]
    label = history.treatments[-1].plan.product_info.min_retreat_days
    if not medians:
        retreat = None
        if not set(treated or areas) <= without_effect:
            notes.append(f"the median wear-off falls after the horizon (day {last_treatment + days_ahead}); "
                         "no re-treatment day within it")
    else:  # when the first treated area wears off, never sooner than the label interval
        retreat = float(max(min(medians), last_treatment + label))
        if min(medians) < last_treatment + label:
            notes.append(f"effect predicted to wear off before the label interval ({label:g} days) has passed; "
                         f"re-treatment suggested at the label interval")
    if diagnostic.method == "importance_sampling" and diagnostic.ess < 100:
        notes.append(f"few effective twins (ESS {diagnostic.ess:.0f}); intervals are approximate")
    return PersonalPrediction(
        history=history, areas=areas, retreat_day=retreat,
        parameters=_parameter_summaries(setup, cohort, weights, typical), diagnostic=diagnostic,
        full_days=course.days, area_names=setup.areas, contraction_mm=course.contraction_mm, rest_mm=course.rest_mm,
        weights=weights, twins=cohort, params=params, notes=notes,
    )


def posterior_twins(prediction: PersonalPrediction, n: int, seed: int = 0) -> Cohort:
    """``n`` equally weighted virtual twins drawn from the posterior (for the dose planner)."""
    index = systematic_resample(prediction.weights, np.random.default_rng(seed), n)
    return subset(prediction.twins, index)


def suggest_next_dose(prediction: PersonalPrediction, goal: str = "none_mild", hold_until: int | None = None,
                      n: int = 400, face_map: FaceMap | None = None) -> dict:
    """The smallest next-session dose in the label pattern meeting ``goal`` for this patient: the
    planner (:func:`neuromod.trials.planner.plan_dose`) fed the posterior twins instead of a
    fresh population cohort. ``hold_until``: days after the next session."""
    from neuromod.reference.clinical import load_planning
    from neuromod.trials.planner import plan_dose

    face_map = face_map or load_face_map()
    last = prediction.history.treatments[-1].plan
    areas = [a for a in dict.fromkeys(p.area for p in last.points(face_map)) if a in load_planning().reference_ona_units]
    if not areas:
        return {"plan": None, "explanation": "the last session targets no label area; no label-pattern dose to suggest"}
    result = plan_dose(prediction.history.patient, areas, last.product, goal, hold_until=hold_until, n=n,
                       params=prediction.params, face_map=face_map, cohort=posterior_twins(prediction, n))
    if result.plan is None:
        return {"plan": None, "explanation": result.explanation}
    chosen = result.chosen
    return {"plan": {"product": last.product, "areas": dict(chosen.areas)}, "scale_of_label_pattern": chosen.scale,
            "goal": goal, "hold_until": hold_until,
            "goal_rate_day30": chosen.goal_rate, "held_rate": chosen.held_rate or None,
            "explanation": f"smallest label-pattern dose with >= 80 % posterior probability of {goal} at day 30"
                           + (f" and >= 50 % still on day {hold_until}" if hold_until else "")}


def with_next_dose(prediction: PersonalPrediction, goal: str, hold_until: int | None) -> PersonalPrediction:
    """The prediction with its ``next_dose`` filled in (:func:`suggest_next_dose`)."""
    return replace(prediction, next_dose=suggest_next_dose(prediction, goal, hold_until))
