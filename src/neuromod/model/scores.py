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

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from neuromod.reference.parameters import ModelParameters, ScoreParameters

FloatArray = npt.NDArray[np.float64]


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
    investigator_persistent_sd_mm: float = 0.0
    subject_persistent_sd_mm: float = 0.0

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
    return ndtr((np.asarray(depth_mm)[..., None] - cut) / sd)


def expected_score(depth_mm: FloatArray, params: ScoreParameters) -> FloatArray:
    """Expected FWS grade (0-3, continuous) of a line ``depth_mm`` deep."""
    return grade_probabilities(depth_mm, params).sum(axis=-1)


def depth_for_score(score: FloatArray, params: ScoreParameters) -> FloatArray:
    """Depth (mm) whose expected FWS grade is ``score`` (0-3); inverse of :func:`expected_score`."""
    cut = np.asarray(params.cutpoints_mm)
    lo, hi = cut[0] - 6 * params.rater_sd_mm, cut[-1] + 6 * params.rater_sd_mm
    table_depth = np.linspace(min(lo, 0.0), hi, 4001)
    table_score = expected_score(table_depth, params)
    clipped = np.clip(score, table_score[0], table_score[-1])
    return np.maximum(np.interp(clipped, table_score, table_depth), 0.0)


def grade(observed_depth_mm: FloatArray, params: ScoreParameters) -> npt.NDArray[np.int64]:
    """Integer FWS grade (0-3) of an observed (already noisy) depth: cut-points passed."""
    cut = np.asarray(params.cutpoints_mm)
    return (np.asarray(observed_depth_mm)[..., None] > cut).sum(axis=-1)


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
