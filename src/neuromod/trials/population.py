"""Populations: many patients at once, with covariates, random effects and raters.

Every parameter that varies between people is a log-normal random effect around the
typical value, shifted by covariates: sex (men: more muscle, a larger half-block amount),
age (static lines deepen), smoking and sun (faster deepening), and an unexplained part.
Trials enrol by baseline severity at maximum contraction as the investigator grades it,
so people whose lines are near a cut-point enter by rating noise and later "improve"
without toxin (regression to the mean: the placebo arm's few per cent).

A cohort is a :class:`neuromod.model.patient.Patients` matrix plus what the raters and the
adverse-event rules need. Arrays have the patient as their leading axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from neuromod.model.patient import (
    Patients,
    baseline_grades,
    baseline_skin,
    deepening_factor,
    describe_patient,
)
from neuromod.model.scores import depth_for_score, grade, rater_noise
from neuromod.model.skin import strain_ratio_for_depth
from neuromod.reference.parameters import ModelParameters
from neuromod.schemas.patient import PatientDescription
from neuromod.schemas.trial import PopulationSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: assumption: smoking mix of US aesthetic-trial volunteers (never, former, current).
SMOKING_MIX = (0.65, 0.2, 0.15)
#: assumption: sun-exposure mix (low, moderate, high).
SUN_MIX = (0.3, 0.5, 0.2)
#: Baseline grade of an area a trial does not score: not rated at enrolment (:class:`Cohort`).
NOT_RATED = -1


@dataclass(frozen=True)
class Cohort:
    """An enrolled cohort: model parameters plus raters' and safety inputs.

    baseline_inv, baseline_subj: (n, n_areas) integer FWS grades at contraction (day 0), rated
    for the trial's scored areas only (:func:`enrol`; :data:`NOT_RATED` elsewhere, and NaN in the
    patients' ``baseline_strain_ratio`` and ``baseline_static_mm`` there: a trial neither grades
    nor simulates the lines of the areas it does not score);
    baseline_shared_mm: (n, n_areas) the enrolment visit's deviation both raters saw
    (:func:`visit_deviations`; 0 where no baseline was rated); persistent_inv_mm,
    persistent_subj_mm: (n, n_areas) each rater's stable impression of each face, the same at
    every visit (:func:`rater_persistence`; 0 where no baseline was rated); expectation_scale: (n,)
    each subject's factor (mean 1) on the raters' expectation effect (:func:`expectation_factor`);
    onset_threshold: (n,) strength drop each subject notices; danger_multiplier: (n,) factor on the units reaching danger muscles;
    female, age: (n,) covariates.
    """

    patients: Patients
    baseline_inv: IntArray
    baseline_subj: IntArray
    baseline_shared_mm: FloatArray
    persistent_inv_mm: FloatArray
    persistent_subj_mm: FloatArray
    expectation_scale: FloatArray
    onset_threshold: FloatArray
    danger_multiplier: FloatArray
    female: npt.NDArray[np.bool_]
    age: FloatArray


def expectation_factor(days_since_treatment: FloatArray, params: ModelParameters,
                       scale: FloatArray | float = 1.0) -> FloatArray:
    """The factor (0-1) on the line depth both raters see ``days_since_treatment`` days after the
    latest treatment (placebo included): in a blinded trial any injection makes the lines look
    shallower, fading with time, ``1 - scale * expectation_bias * exp(-days / expectation_days)``;
    ``scale``: the subject's own factor (mean 1, log-SD ``population.expectation_sd``; 1 for the
    typical subject). Shapes broadcast; never below 0."""
    pop = params.population
    decay = np.exp(-np.asarray(days_since_treatment, dtype=float) / pop.expectation_days)
    return np.maximum(1.0 - np.asarray(scale) * pop.expectation_bias * decay, 0.0)


def expectation_scales(normals: FloatArray, params: ModelParameters) -> FloatArray:
    """Subjects' factors on the expectation effect from their standard normals ``normals`` (drawn
    from the caller's stream, the same draws for every value of the SD): log-normal with mean 1
    and log-SD ``population.expectation_sd``."""
    sd = params.population.expectation_sd
    return np.exp(sd * normals - 0.5 * sd**2)


def visit_deviations(shape: tuple[int, ...], rng: np.random.Generator, params: ModelParameters) -> FloatArray:
    """Each visit's deviation (mm) of the depth seen at maximum contraction, shared by the
    investigator and the subject (frown effort, light, the day's face): (n, n_areas[, n_visits]).

    Drawn as standard normals times the shared SD (:func:`neuromod.model.scores.rater_noise`), from
    the caller's own stream, so every value of ``scores.shared_noise_fraction`` sees the same draws
    and the other draws of a cohort do not move (common random numbers).
    """
    return rater_noise(params).shared_sd_mm * rng.standard_normal(shape)


@dataclass(frozen=True)
class RaterPersistence:
    """Each rater's stable impression of each face (mm, on each rater's scale), added to every
    rating of it, baseline and follow-ups alike (:class:`neuromod.model.scores.RaterNoise`):
    investigator_mm, subject_mm: (n, n_areas)."""

    investigator_mm: FloatArray
    subject_mm: FloatArray


def rater_persistence(shape: tuple[int, ...], rng: np.random.Generator, params: ModelParameters) -> RaterPersistence:
    """Draw the raters' persistent impressions of ``shape`` (n, n_areas) faces: standard normals
    times each rater's persistent SD, from the caller's own stream (the visits' stream), so every
    value of ``scores.persistent_noise_fraction`` sees the same draws (common random numbers)."""
    noise = rater_noise(params)
    investigator, subject = rng.standard_normal(shape), rng.standard_normal(shape)
    return RaterPersistence(noise.investigator_persistent_sd_mm * investigator, noise.subject_persistent_sd_mm * subject)


def investigator_grades(depth_mm: FloatArray, rng: np.random.Generator | None, params: ModelParameters,
                        shared_mm: FloatArray | None = None, persistent_mm: FloatArray | None = None,
                        own_normals: FloatArray | None = None) -> IntArray:
    """Investigator's FWS grades of lines ``depth_mm`` deep.

    shared_mm: the visit's deviation both raters see (:func:`visit_deviations`), to which the
    investigator's persistent impression of the face ``persistent_mm`` (:func:`rater_persistence`;
    None: 0) and own noise are added; None: a rating on its own, with the investigator's whole
    noise (``scores.rater_sd_mm``) drawn here. own_normals: the standard normals behind the own
    noise, drawn by the caller from the same stream (a whole enrolment batch, graded after its
    selection); None: drawn here from ``rng``. Either way the own noise is ``sd * z``, the numbers
    ``rng.normal(0, sd)`` gives (``tests/test_trial_draws.py`` checks the bits).
    """
    noise = rater_noise(params)
    if shared_mm is None:
        return grade(depth_mm + rng.normal(0.0, noise.investigator_total_sd_mm, np.shape(depth_mm)), params.scores)
    seen = _own_noise(noise.investigator_sd_mm, np.shape(depth_mm), rng, own_normals)
    # depth + shared + persistent + own, summed in that order as before, in one buffer
    seen += depth_mm + shared_mm if persistent_mm is None else (depth_mm + shared_mm) + persistent_mm
    return grade(seen, params.scores)


def _own_noise(sd_mm: float, shape: tuple[int, ...], rng: np.random.Generator | None,
               own_normals: FloatArray | None) -> FloatArray:
    """A rater's own noise ``sd_mm * z`` in a fresh array: ``z`` the caller's standard normals, or
    drawn here from ``rng`` (the numbers and stream position of ``rng.normal(0, sd_mm, shape)``)."""
    normals = rng.standard_normal(shape) if own_normals is None else np.array(own_normals, dtype=float)
    normals *= sd_mm
    return normals


def perceived_depth(depth_mm: FloatArray, rng: np.random.Generator | None, params: ModelParameters,
                    shared_mm: FloatArray | None = None, persistent_mm: FloatArray | None = None,
                    own_normals: FloatArray | None = None) -> FloatArray:
    """The depth a subject perceives: biased towards deeper (``subject_depth_bias``), with the
    visit's shared deviation ``shared_mm``, the subject's persistent impression of the face
    ``persistent_mm`` (None: 0) and own noise, or (``shared_mm`` None) the subject's whole noise
    (``population.subject_sd_mm``) drawn here. own_normals: as in :func:`investigator_grades`."""
    noise = rater_noise(params)
    bias = params.population.subject_depth_bias
    if shared_mm is None:
        noisy = bias * depth_mm + rng.normal(0.0, noise.subject_total_sd_mm, np.shape(depth_mm))
        return np.maximum(noisy, 0.0)
    seen = bias * (depth_mm + shared_mm)
    if persistent_mm is not None:
        seen += persistent_mm
    seen += _own_noise(noise.subject_sd_mm, np.shape(depth_mm), rng, own_normals)
    return np.maximum(seen, 0.0, out=seen)


def subject_grades(depth_mm: FloatArray, rng: np.random.Generator | None, params: ModelParameters,
                   shared_mm: FloatArray | None = None, persistent_mm: FloatArray | None = None,
                   own_normals: FloatArray | None = None) -> IntArray:
    """The subject's own FWS grades of lines ``depth_mm`` deep (``shared_mm``, ``persistent_mm``,
    ``own_normals`` as in :func:`perceived_depth`)."""
    return grade(perceived_depth(depth_mm, rng, params, shared_mm, persistent_mm, own_normals), params.scores)


def _included(spec: PopulationSpec, baseline_inv: IntArray, scored_areas: list[int]) -> npt.NDArray[np.int64]:
    """Rows of a batch meeting the inclusion rule (see :func:`enrol`)."""
    if spec.baseline == "moderate_or_severe" and scored_areas:
        return np.flatnonzero((baseline_inv[:, scored_areas] >= 2).all(axis=1))
    return np.arange(baseline_inv.shape[0])


def _draw(spec: PopulationSpec, n: int, n_areas: int, rng: np.random.Generator, params: ModelParameters,
          visit_rng: np.random.Generator, scored_areas: list[int], wanted: int) -> Cohort:
    """Draw ``n`` people and enrol the first ``wanted`` who meet the inclusion rule.

    Every random number of the ``n`` is drawn, in a fixed order, so the streams move on as they
    always have; what only the enrolled need (their skin, rate and rater factors, the subject's
    baseline grade) is computed from their rows alone, and the baseline lines and grades only for
    the scored areas (the others' are :data:`NOT_RATED` / NaN, see :class:`Cohort`). Those are
    elementwise, so they are the numbers computing all ``n`` and every area and keeping the enrolled
    and the scored would give, for a fraction of the work (about one in ten is excluded for the
    glabella, a batch draws twice the subjects still needed, and a trial scores 1-2 of 9 areas).
    """
    pop = params.population
    female = rng.random(n) < spec.female_fraction(params)
    age = rng.uniform(spec.age[0], spec.age[1], n)
    smoking = rng.choice([1.0, params.patient.former_smoker_factor, params.skin.smoking_deepening_factor],
                         size=n, p=SMOKING_MIX)
    sun = rng.choice([1.0, params.patient.moderate_sun_factor, params.skin.sun_deepening_factor], size=n, p=SUN_MIX)
    decades = (age - 45.0) / 10.0
    rated = list(scored_areas)  # the areas whose lines are rated at enrolment (see Cohort)
    static_normals = rng.standard_normal((n, n_areas))[:, rated]
    static = (pop.static_depth_median_mm * pop.static_depth_age_factor_per_decade ** decades[:, None]
              * np.exp(pop.static_depth_sd * static_normals))
    dynamic = pop.dynamic_depth_median_mm * np.exp(pop.dynamic_depth_sd * rng.standard_normal((n, n_areas))[:, rated])
    half_block, light_chain, availability = (rng.standard_normal(n) for _ in range(3))
    contraction = static + dynamic
    shared = visit_deviations((n, n_areas), visit_rng, params)
    persistent = rater_persistence((n, n_areas), visit_rng, params)
    investigator_own = rng.standard_normal((n, n_areas))  # the investigator's baseline rating of every area
    baseline_inv = investigator_grades(contraction, None, params, shared[:, rated], persistent.investigator_mm[:, rated],
                                       investigator_own[:, rated])
    subject_own = rng.standard_normal((n, n_areas))  # the subject's baseline rating, graded for the enrolled
    expectation = visit_rng.standard_normal(n)  # expectation_scales' normals
    onset, danger = rng.standard_normal(n), rng.standard_normal(n)
    keep = _included(spec, baseline_inv, list(range(len(rated))))[:wanted]
    female, age, contraction = female[keep], age[keep], contraction[keep]
    shared = shared[keep]
    patients = Patients(
        half_block_scale=(np.where(female, 1.0, params.patient.male_half_block_factor)
                          * np.exp(pop.half_block_sd * half_block[keep]))[:, None],
        light_chain_decay_scale=np.exp(pop.light_chain_decay_sd * light_chain[keep])[:, None],
        availability_scale=np.exp(pop.availability_sd * availability[keep])[:, None],
        deepening_factor=deepening_factor(age, smoking[keep], sun[keep], params)[:, None],
        baseline_strain_ratio=_all_areas(strain_ratio_for_depth(dynamic[keep], params.skin), rated, n_areas, np.nan),
        baseline_static_mm=_all_areas(static[keep], rated, n_areas, np.nan),
    )
    persistent_subj = persistent.subject_mm[keep]
    baseline_subj = subject_grades(contraction, None, params, shared[:, rated], persistent_subj[:, rated],
                                   subject_own[keep][:, rated])
    return Cohort(
        patients=patients,
        baseline_inv=_all_areas(baseline_inv[keep], rated, n_areas, NOT_RATED),
        baseline_subj=_all_areas(baseline_subj, rated, n_areas, NOT_RATED),
        baseline_shared_mm=shared,
        persistent_inv_mm=persistent.investigator_mm[keep],
        persistent_subj_mm=persistent_subj,
        expectation_scale=expectation_scales(expectation[keep], params),
        onset_threshold=params.scores.onset_strength_drop * np.exp(pop.onset_threshold_sd * onset[keep]),
        danger_multiplier=np.exp(pop.danger_dose_sd * danger[keep]),
        female=female,
        age=age,
    )


def _all_areas(scored: npt.NDArray, rated: list[int], n_areas: int, fill: float) -> npt.NDArray:
    """(n, n_areas) with the columns ``rated`` from ``scored`` (n, len(rated)) and ``fill`` elsewhere."""
    full = np.full((scored.shape[0], n_areas), fill, dtype=scored.dtype)
    full[:, rated] = scored
    return full


def _select(cohort: Cohort, keep: npt.NDArray[np.int64]) -> Cohort:
    p = cohort.patients
    return Cohort(
        patients=Patients(*(getattr(p, f)[keep] for f in p.__dataclass_fields__)),
        **{f: getattr(cohort, f)[keep] for f in cohort.__dataclass_fields__ if f != "patients"},
    )


def subset(cohort: Cohort, index: npt.NDArray[np.int64]) -> Cohort:
    """The cohort's patients at ``index`` (repeats allowed: resampled virtual twins)."""
    return _select(cohort, np.asarray(index))


def enrol(
    spec: PopulationSpec,
    n: int,
    n_areas: int,
    scored_areas: list[int],
    rng: np.random.Generator,
    params: ModelParameters,
    visit_rng: np.random.Generator | None = None,
) -> Cohort:
    """Draw people until ``n`` meet the inclusion rule on every scored area.

    ``moderate_or_severe``: the investigator grades the scored areas 2 or 3 at maximum
    contraction at baseline (as in the pivotal trials). The baseline lines and grades are those of
    the scored areas only (the others :data:`NOT_RATED` / NaN, :class:`Cohort`). visit_rng: the
    stream of the visits' shared rating deviations (:func:`visit_deviations`; default ``rng``),
    kept apart from ``rng`` so that the cohort's other draws do not depend on the shared noise.
    """
    visit_rng = rng if visit_rng is None else visit_rng
    chosen: list[Cohort] = []
    total = 0
    while total < n:
        batch = _draw(spec, max(2 * (n - total), 64), n_areas, rng, params, visit_rng, scored_areas, n - total)
        chosen.append(batch)
        total += batch.female.size
    if len(chosen) == 1:
        return chosen[0]
    first = chosen[0]
    return Cohort(
        patients=Patients(*(np.concatenate([getattr(c.patients, f) for c in chosen])
                            for f in first.patients.__dataclass_fields__)),
        **{f: np.concatenate([getattr(c, f) for c in chosen]) for f in first.__dataclass_fields__ if f != "patients"},
    )


@dataclass(frozen=True)
class RandomEffects:
    """The standard-normal draws behind n virtual patients' unexplained variation.

    half_block, light_chain_decay, availability, onset_threshold, danger_dose: (n,), each scaled
    by its log-SD in ``params.population``; contraction_depth, rest_depth: (n, n_areas) offsets of
    the baseline line depths in units of the investigator's rating noise (``scores.rater_sd_mm``):
    a recorded baseline grade is one noisy rating of the true depth. :func:`cohort_like` keeps
    them at zero (the depths that explain the recorded grades); personal predictions
    (:mod:`neuromod.trials.personal`) draw them.
    """

    half_block: FloatArray
    light_chain_decay: FloatArray
    availability: FloatArray
    onset_threshold: FloatArray
    danger_dose: FloatArray
    contraction_depth: FloatArray
    rest_depth: FloatArray

    @property
    def count(self) -> int:
        return self.half_block.shape[0]


def draw_effects(n: int, n_areas: int, rng: np.random.Generator, skin: bool = False) -> RandomEffects:
    """``n`` patients' random effects; with ``skin`` the baseline depths vary too (drawn after
    the others, so the first five are the same draws either way)."""
    half_block, light_chain, availability = (rng.standard_normal(n) for _ in range(3))
    onset, danger = rng.standard_normal(n), rng.standard_normal(n)
    if skin:
        contraction, rest = rng.standard_normal((n, n_areas)), rng.standard_normal((n, n_areas))
    else:
        contraction, rest = np.zeros((n, n_areas)), np.zeros((n, n_areas))
    return RandomEffects(half_block, light_chain, availability, onset, danger, contraction, rest)


def cohort_from_effects(
    description: PatientDescription, effects: RandomEffects, areas: list[str], params: ModelParameters
) -> Cohort:
    """Virtual patients like the described one (same covariates and baseline grades) with the
    given random effects."""
    typical = describe_patient(description, areas, params)
    pop = params.population
    n = effects.count
    rest, contraction = baseline_grades(description, areas, params)
    strain, static = baseline_skin(rest, contraction, params)
    if np.any(effects.contraction_depth) or np.any(effects.rest_depth):
        noise = rater_noise(params).investigator_total_sd_mm
        static_0 = depth_for_score(np.asarray(rest, dtype=float), params.scores)
        contraction_0 = depth_for_score(np.maximum(contraction, rest), params.scores)
        static = np.maximum(static_0[None, :] + noise * effects.rest_depth, 0.0)
        at_contraction = np.maximum(contraction_0[None, :] + noise * effects.contraction_depth, static)
        strain = strain_ratio_for_depth(at_contraction - static, params.skin)
    else:
        strain, static = np.repeat(strain[None, :], n, axis=0), np.repeat(static[None, :], n, axis=0)
    ones = np.ones((n, 1))
    patients = Patients(
        half_block_scale=typical.half_block_scale * np.exp(pop.half_block_sd * effects.half_block[:, None]),
        light_chain_decay_scale=np.exp(pop.light_chain_decay_sd * effects.light_chain_decay[:, None]),
        availability_scale=np.exp(pop.availability_sd * effects.availability[:, None]),
        deepening_factor=typical.deepening_factor * ones,
        baseline_strain_ratio=strain,
        baseline_static_mm=static,
    )
    grades = np.repeat(np.round(contraction).astype(np.int64)[None, :], n, axis=0)
    return Cohort(
        patients=patients,
        baseline_inv=grades,
        baseline_subj=grades.copy(),
        baseline_shared_mm=np.zeros(grades.shape),
        persistent_inv_mm=np.zeros(grades.shape),
        persistent_subj_mm=np.zeros(grades.shape),
        expectation_scale=np.ones(n),
        onset_threshold=params.scores.onset_strength_drop * np.exp(pop.onset_threshold_sd * effects.onset_threshold),
        danger_multiplier=np.exp(pop.danger_dose_sd * effects.danger_dose),
        female=np.full(n, description.sex == "female"),
        age=np.full(n, float(description.age)),
    )


def cohort_like(description: PatientDescription, n: int, areas: list[str], rng: np.random.Generator, params: ModelParameters) -> Cohort:
    """``n`` virtual patients like the described one: the same covariates and baseline grades,
    with the unexplained between-person variation (random effects) drawn afresh."""
    return cohort_from_effects(description, draw_effects(n, len(areas), rng), areas, params)
