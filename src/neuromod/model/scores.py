"""Stage 5 — clinical scores: wrinkle depth to the 4-point Facial Wrinkle Scale (FWS).

FWS grades: 0 none, 1 mild, 2 moderate, 3 severe. A rater sees a line of depth ``d``
(mm) with Gaussian noise and grades it against three cut-points (ordinal probit), so the
expected score is ``sum_k Phi((d - c_k) / sd)``, a continuous 0-3 value. The inverse maps a
recorded baseline score back to the depth that explains it.

Each rater's error has a part that stays with the face and a part that changes at every visit.
The persistent part (``scores.persistent_noise_fraction`` of the variance) is the rater's stable
impression of this face: how its lines read in that rater's eyes (skin tone and texture, the
usual frown, the clinic's light), the same at baseline and every follow-up, so it moves which
faces enrol but not their change from baseline. The visit-to-visit part is shared at one visit:
the frown (or smile) effort that day, the light, the day's face make the lines look deeper or
shallower to both the investigator and the subject. :class:`RaterNoise` splits each rater's
noise into these parts, keeping each rater's total (``scores.rater_sd_mm``,
``population.subject_sd_mm``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from neuromod.reference.parameters import ModelParameters, ScoreParameters

FloatArray = npt.NDArray[np.float64]

# -- the standard normal distribution function, without SciPy ------------------------------
# SciPy's special functions cost `neuromod simulate` ~0.2 s of imports for one function. These are
# the rational approximations SciPy's ``ndtr`` itself evaluates (Cephes Math Library 2.8, S. L.
# Moshier, ndtr.c: erf on |x| < 1, erfc from exp(-x^2) P(x)/Q(x) below 8 and R(x)/S(x) above;
# relative error ~1e-16), in the same order of operations: equal to ``scipy.special.ndtr``
# bit for bit on 3 million points in [-40, 40] (tests/test_aot.py checks to 1e-15).
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)
_ERFC_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
           6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_ERFC_S = (2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
           1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
#: exp(-x^2) underflows to 0 beyond this x^2 (log of the largest double).
_MAX_LOG = 7.09782712893383996843e2


_SQRT_HALF = float(np.sqrt(0.5))


def _polynomial(x: FloatArray, coefficients: tuple[float, ...], monic: bool = False) -> FloatArray:
    """Horner's rule, highest power first; ``monic``: a leading coefficient 1 not listed."""
    value = x + coefficients[0] if monic else coefficients[0] * x + coefficients[1]
    for c in coefficients[1 if monic else 2:]:
        value = value * x + c
    return value


def _erf_inner(x: FloatArray) -> FloatArray:
    """erf(x) for |x| <= 1."""
    squared = x * x
    return x * _polynomial(squared, _ERF_T) / _polynomial(squared, _ERF_U, monic=True)


def _erfc_positive(x: FloatArray) -> FloatArray:
    """erfc(x) for x >= 0 (1-d), each entry by the one approximation its range uses."""
    out = np.empty_like(x)
    low, near = x < 1.0, x < 8.0
    out[low] = 1.0 - _erf_inner(x[low])
    middle = near & ~low
    xm = x[middle]
    out[middle] = (np.exp(-xm * xm) * _polynomial(xm, _ERFC_P)) / _polynomial(xm, _ERFC_Q, monic=True)
    far = ~near  # and NaN
    xf = x[far]
    out[far] = np.where(xf * xf > _MAX_LOG, 0.0,
                        (np.exp(-xf * xf) * _polynomial(xf, _ERFC_R)) / _polynomial(xf, _ERFC_S, monic=True))
    return out


def _normal_cdf_scalar(a: float) -> float:
    """:func:`normal_cdf` of one number in Python floats (a NumPy call per operation costs ~1 us;
    ``math.exp`` is the C library's, as Cephes')."""
    x = a * _SQRT_HALF
    z = abs(x)
    if z < _SQRT_HALF:
        return 0.5 + 0.5 * _erf_inner(x)
    if z < 1.0:
        erfc = 1.0 - _erf_inner(z)
    elif z < 8.0:
        erfc = (math.exp(-z * z) * _polynomial(z, _ERFC_P)) / _polynomial(z, _ERFC_Q, monic=True)
    elif z * z > _MAX_LOG:
        erfc = 0.0
    else:  # and NaN
        erfc = (math.exp(-z * z) * _polynomial(z, _ERFC_R)) / _polynomial(z, _ERFC_S, monic=True)
    upper = 0.5 * erfc
    return 1.0 - upper if x > 0 else upper


def normal_cdf(value: npt.ArrayLike) -> FloatArray:
    """Phi(value), the standard normal distribution function: ``scipy.special.ndtr`` itself where
    SciPy is loaded already (a trial, a calibration: 5-7x faster on large arrays), else the same
    approximations in NumPy (see above; the two agree to the last bit)."""
    special = sys.modules.get("scipy.special")
    return special.ndtr(value) if special is not None else numpy_normal_cdf(value)


def numpy_normal_cdf(value: npt.ArrayLike) -> FloatArray:
    """:func:`normal_cdf` without SciPy: Cephes' approximations (see above), each entry by the one
    its range uses; NumPy float64 for a scalar, an array of ``value``'s shape otherwise."""
    a = np.asarray(value, dtype=float)
    if a.ndim == 0:
        return np.float64(_normal_cdf_scalar(float(a)))
    x = np.ravel(a) * _SQRT_HALF
    z = np.abs(x)
    result = np.empty_like(x)
    inner = z < _SQRT_HALF
    result[inner] = 0.5 + 0.5 * _erf_inner(x[inner])
    outer = ~inner
    with np.errstate(over="ignore", invalid="ignore"):  # exp(-x^2) underflows far out, as in Cephes
        upper = 0.5 * _erfc_positive(z[outer])
    result[outer] = np.where(x[outer] > 0, 1.0 - upper, upper)
    return result.reshape(a.shape) if a.ndim else result[0]


@dataclass(frozen=True)
class RaterNoise:
    """The rating noise, on the depth scale (mm).

    Per face and rater, the same at every visit: investigator_persistent_sd_mm and
    subject_persistent_sd_mm (``scores.persistent_noise_fraction`` of each rater's variance; the
    subject's on the perceived scale). Per visit: shared_sd_mm, the visit's deviation of the
    depth seen at maximum contraction, the same for the investigator and the subject
    (``scores.shared_noise_fraction`` of the investigator's visit-to-visit variance);
    investigator_sd_mm: the investigator's own part; subject_sd_mm: the subject's own part, on
    the perceived scale (where the shared deviation appears times ``subject_depth_bias``); the
    subject's own variance is what the subject's visit-to-visit variance leaves after the shared
    part, and 0 where the shared part alone exceeds it.
    """

    shared_sd_mm: float
    investigator_sd_mm: float
    subject_sd_mm: float
    subject_depth_bias: float
    investigator_persistent_sd_mm: float
    subject_persistent_sd_mm: float

    @property
    def investigator_visit_sd_mm(self) -> float:
        """The investigator's noise that changes from visit to visit: shared and own."""
        return float(np.hypot(self.shared_sd_mm, self.investigator_sd_mm))

    @property
    def subject_visit_sd_mm(self) -> float:
        """The subject's noise that changes from visit to visit, on the perceived scale."""
        return float(np.hypot(self.subject_depth_bias * self.shared_sd_mm, self.subject_sd_mm))

    @property
    def investigator_total_sd_mm(self) -> float:
        """All the noise in one investigator rating: persistent, shared and own (= ``scores.rater_sd_mm``)."""
        return float(np.hypot(self.investigator_persistent_sd_mm, self.investigator_visit_sd_mm))

    @property
    def subject_total_sd_mm(self) -> float:
        """All the noise in one subject rating on the perceived scale (``population.subject_sd_mm``,
        or more where the shared part alone exceeds the subject's visit-to-visit share)."""
        return float(np.hypot(self.subject_persistent_sd_mm, self.subject_visit_sd_mm))

    def total_sd_mm(self, rater: str) -> float:
        """The noise of one rating by ``rater`` (``investigator`` or ``self``), for the likelihood of
        one recorded grade (:func:`grade_log_probability`)."""
        return self.subject_total_sd_mm if rater == "self" else self.investigator_total_sd_mm


def rater_noise(params: ModelParameters) -> RaterNoise:
    """The persistent, shared and own parts of the raters' noise (see :class:`RaterNoise`)."""
    scores, pop = params.scores, params.population
    persistent = scores.persistent_noise_fraction
    visit_sd = np.sqrt(1.0 - persistent) * scores.rater_sd_mm
    shared = np.sqrt(scores.shared_noise_fraction) * visit_sd
    own = np.sqrt(1.0 - scores.shared_noise_fraction) * visit_sd
    subject_visit_variance = (1.0 - persistent) * pop.subject_sd_mm**2
    subject_own = np.sqrt(max(subject_visit_variance - (pop.subject_depth_bias * shared) ** 2, 0.0))
    return RaterNoise(float(shared), float(own), float(subject_own), pop.subject_depth_bias,
                      float(np.sqrt(persistent) * scores.rater_sd_mm), float(np.sqrt(persistent) * pop.subject_sd_mm))


def grade_probabilities(depth_mm: FloatArray, params: ScoreParameters, sd_mm: float | None = None) -> FloatArray:
    """P(grade >= k) for k = 1, 2, 3; shape ``depth_mm.shape + (3,)``."""
    sd = params.rater_sd_mm if sd_mm is None else sd_mm
    cut = np.asarray(params.cutpoints_mm)
    return normal_cdf((np.asarray(depth_mm)[..., None] - cut) / sd)


def expected_score(depth_mm: FloatArray, params: ScoreParameters) -> FloatArray:
    """Expected FWS grade (0-3, continuous) of a line ``depth_mm`` deep."""
    return grade_probabilities(depth_mm, params).sum(axis=-1)


def depth_for_score(score: FloatArray, params: ScoreParameters) -> FloatArray:
    """Depth (mm) whose expected FWS grade is ``score`` (0-3); inverse of :func:`expected_score`."""
    table_depth, table_score = _score_table(params)
    clipped = np.clip(score, table_score[0], table_score[-1])
    return np.maximum(np.interp(clipped, table_score, table_depth), 0.0)


@lru_cache(maxsize=64)
def _score_table(params: ScoreParameters) -> tuple[FloatArray, FloatArray]:
    """(depths, expected grades) on 4001 points spanning the cut-points +- 6 rater SDs, for
    :func:`depth_for_score`; memoised per score parameters (frozen, hashable): building it costs
    12,003 normal distribution values, ~0.9 ms of each warm ``simulate`` (two calls); read-only."""
    cut = np.asarray(params.cutpoints_mm)
    lo, hi = cut[0] - 6 * params.rater_sd_mm, cut[-1] + 6 * params.rater_sd_mm
    table_depth = np.linspace(min(lo, 0.0), hi, 4001)
    table_score = expected_score(table_depth, params)
    table_depth.flags.writeable = table_score.flags.writeable = False
    return table_depth, table_score


def grade(observed_depth_mm: FloatArray, params: ScoreParameters) -> npt.NDArray[np.int64]:
    """Integer FWS grade (0-3) of an observed (already noisy) depth: cut-points passed (NaN: 0).

    One comparison per cut-point added into the grades in place: the same integers as summing a
    (..., 3) comparison over its short last axis, ~10x faster on a trial chunk's arrays (a NumPy
    reduction over a length-3 axis pays per output element; measured 48 against 519 us for
    1,000 x 14 depths)."""
    observed = np.asarray(observed_depth_mm)
    grades = np.zeros(observed.shape, dtype=np.int64)
    for cut in params.cutpoints_mm:
        grades += observed > cut
    return grades[()] if grades.ndim == 0 else grades


def grade_log_probability(
    depth_mm: FloatArray, observed_grade: int, params: ScoreParameters, sd_mm: float | None = None
) -> FloatArray:
    """log P(a rater gives ``observed_grade`` | line ``depth_mm`` deep): the ordinal probit of
    :func:`grade_probabilities` (Gaussian noise ``sd_mm``, default the investigator's, against the
    cut-points), for the likelihood of a recorded grade. Computed from the nearer tail of the
    normal distribution, so grades far from the depth keep their (tiny) probability instead of
    rounding to zero."""
    from scipy.special import log_ndtr

    sd = params.rater_sd_mm if sd_mm is None else sd_mm
    edges = (-np.inf,) + tuple(params.cutpoints_mm) + (np.inf,)
    depth = np.asarray(depth_mm, dtype=float)
    low = (edges[observed_grade] - depth) / sd  # standardized bin edges around the depth
    high = (edges[observed_grade + 1] - depth) / sd
    # P = Phi(high) - Phi(low); above the depth's bin use the upper tail: Phi(-low) - Phi(-high)
    upper = low > 0
    a = np.where(upper, -high, low)
    b = np.where(upper, -low, high)
    log_b = log_ndtr(b)
    with np.errstate(divide="ignore"):
        return log_b + np.log1p(-np.exp(log_ndtr(a) - log_b))


# -- noticing the effect (onset) -----------------------------------------------------------------
#: Days after a treatment within which its largest effect, the one a subject's noticing is measured
#: against, is looked for (or up to the next treatment): the effect peaks at 2-4 weeks (science.md;
#: calibration_trials.csv) and 60 days also cover the slowest subject's plateau.
ONSET_PEAK_WINDOW_DAYS = 60.0


def onset_window_end(treatment_days: npt.ArrayLike, treatment: int = 0) -> float:
    """The last day (inclusive) on which treatment number ``treatment`` of the
    increasing ``treatment_days`` can have its peak effect: :data:`ONSET_PEAK_WINDOW_DAYS` after
    it, or the next treatment's day if sooner."""
    days = np.asarray(treatment_days, dtype=float)
    end = float(days[treatment]) + ONSET_PEAK_WINDOW_DAYS
    return min(end, float(days[treatment + 1])) if treatment + 1 < days.size else end


def onset_drop(peak_drop: npt.ArrayLike, relative_drop: npt.ArrayLike, params: ScoreParameters) -> FloatArray:
    """The strength drop (fraction of the area's untreated strength) at which a subject first
    notices the effect of a treatment whose largest drop is ``peak_drop``; inf where never.

    A subject notices once the effect has reached a share ``relative_drop`` of its own peak
    (``scores.onset_strength_drop`` for the median subject, ``population.onset_threshold_sd``
    spreading it), and never an effect whose peak stays below ``scores.onset_least_drop``: what is
    noticed is a change of the subject's own frown, so someone with a small effect notices it as it
    comes, as the diaries' near-everyone by day 4 says (calibration_trials.csv ona-gl-onset-d1..d4:
    98 % by day 4), rather than never (an absolute threshold above their peak). Shapes broadcast.
    """
    peak = np.asarray(peak_drop, dtype=float)
    drop = np.maximum(np.asarray(relative_drop, dtype=float) * peak, params.onset_least_drop)
    return np.where(drop <= peak, drop, np.inf)


def onset_index(days: FloatArray, strength: FloatArray, relative_drop: float, params: ScoreParameters,
                window_end_day: float | None = None) -> int | None:
    """Index of the first of ``days`` (a daily course from a treatment on, ``strength`` the area's
    residual expression there) on which a subject noticing at ``relative_drop`` of the peak
    (:func:`onset_drop`) has noticed the effect; None if never. The peak is looked for up to
    ``window_end_day`` (default: :data:`ONSET_PEAK_WINDOW_DAYS` after ``days[0]``; callers with a
    next treatment pass :func:`onset_window_end`), as the trial kernel reads it."""
    end = days[0] + ONSET_PEAK_WINDOW_DAYS if window_end_day is None else window_end_day
    drop = 1.0 - np.asarray(strength, dtype=float)
    window = drop[np.asarray(days) <= end]
    threshold = float(onset_drop(window.max(initial=0.0), relative_drop, params))
    found = np.flatnonzero(drop >= threshold) if math.isfinite(threshold) else np.empty(0, dtype=np.int64)
    return int(found[0]) if found.size else None
