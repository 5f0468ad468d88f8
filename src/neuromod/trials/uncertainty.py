"""Intervals for every endpoint of a virtual trial: the calibration's parameter uncertainty and
the trial's own Monte Carlo error, side by side (``docs/trials.md``, "Intervals").

* **Parameter interval**: ``K`` parameter sets drawn from the calibration's Laplace posterior
  (``data/calibrated.yaml``'s ``uncertainty``: the fitted log parameters jointly normal, SDs
  ``log_sd``, correlation ``correlation``; draws clipped to the fit's bounds), each run as the same
  trial with the same seed (common random numbers: the same virtual subjects), so the spread
  between draws is the parameters', not sampling's. Draws run ``subjects_per_draw`` subjects per
  arm (the first chunks of the trial's own subjects); each draw's shift from the point
  parameters on those subjects is added to the point estimate, and the interval is the empirical
  2.5-97.5 % quantiles of the shifted values (no interpolation), widened to include the point
  estimate; a median not reached within the follow-up counts as later than every visit (a bound
  that is not reached is null).
* **Monte Carlo interval**: percentages, the 95 % Wilson interval of the count in the arm's
  ``n`` subjects (for the mean endpoints ``fraction_of_max_effect_by_day`` and
  ``residual_expression_pct``, values in 0-1 per subject, the Wilson interval is conservative: a
  variable in [0, 1] with mean p has variance at most p (1 - p)); a share of the maximal effect
  outside 0-100 % (an arm whose mean improvement is negative at a visit, as a placebo arm's can be
  once its expectation has faded) is not clipped: its intervals are widened to include it, and
  the parameter interval is not bounded to 0-100 for it; medians in days, the visits on
  either side of the median (onset: the days on either side), the resolution it is read at.

Model estimates for planning and education, not medical advice.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tqdm import tqdm

from neuromod.reference.parameters import (
    ModelParameters,
    ParameterUncertainty,
    apply_overrides,
    default_parameters,
    parameter_uncertainty,
    parameter_value,
)
from neuromod.trials.calibrate import FITTED, wilson_interval
from neuromod.trials.trial import CHUNK, TrialSpec, run_trial, with_subjects

#: parameter sets drawn by default (``trial --parameter-draws``): enough for a first look at the
#: spread at ~9 times one chunk's cost; more for publication-grade quantiles.
DEFAULT_DRAWS = 8
#: subjects per arm of each draw by default (one chunk: the trial's first 1000 subjects).
DEFAULT_DRAW_SUBJECTS = CHUNK
LEVEL = 0.95
#: the random stream of the parameter draws: (trial seed, this word).
DRAW_STREAM = 104729


def draw_parameters(params: ModelParameters, uncertainty: ParameterUncertainty, draws: int,
                    seed: int) -> list[ModelParameters]:
    """``draws`` parameter sets from the Laplace posterior around ``params`` (log-normal, clipped
    to the calibration's bounds), reproducible from ``seed``."""
    names = [n for n in uncertainty.names if n in FITTED]
    index = [uncertainty.names.index(n) for n in names]
    sd = np.asarray(uncertainty.log_sd)[index]
    correlation = np.asarray(uncertainty.correlation)[np.ix_(index, index)]
    covariance = correlation * np.outer(sd, sd)
    centre = np.log([parameter_value(params, n) for n in names])
    rng = np.random.default_rng([seed, DRAW_STREAM])
    x = rng.multivariate_normal(centre, covariance, size=draws, method="eigh")
    low, high = np.log([FITTED[n][0] for n in names]), np.log([FITTED[n][1] for n in names])
    x = np.clip(x, low, high)
    return [apply_overrides(params, dict(zip(names, np.exp(row).tolist()))) for row in x]


def _quantile_interval(point: float | None, values: list[float | None], bounded: bool) -> list[float | None]:
    """[low, high]: the 2.5-97.5 % quantiles of ``values`` widened to include ``point``; None
    (not reached) counts as later than every visit, and a bound that is not reached is null."""
    numbers = np.array([math.inf if v is None else v for v in values], dtype=float)
    centre = math.inf if point is None else point
    tail = (1 - LEVEL) / 2
    low = min(centre, float(np.quantile(numbers, tail, method="inverted_cdf")))
    high = max(centre, float(np.quantile(numbers, 1 - tail, method="inverted_cdf")))
    if bounded:
        low, high = max(low, 0.0), min(high, 100.0)
    # rounded outwards to 2 decimals, so the printed interval still contains the point estimate
    return [None if math.isinf(low) else math.floor(round(low * 100, 6)) / 100,
            None if math.isinf(high) else math.ceil(round(high * 100, 6)) / 100]


def _shifted(point: float | None, reference: float | None, draw: float | None) -> float | None:
    """A draw's value moved onto the point estimate's subjects: point + (draw - reference)."""
    if draw is None:
        return None
    if point is None or reference is None:
        return draw
    return point + (draw - reference)


def _median_mc(value: float | None, visits: list[int], daily: bool) -> list[float | None]:
    """The resolution a median is read at: the visits (or days, for a diary) on either side."""
    days = list(range(0, max(visits) + 2)) if daily else sorted(visits)
    if value is None:
        return [float(days[-1]), None]
    below = [d for d in days if d < value]
    above = [d for d in days if d > value]
    return [float(below[-1]) if below else 0.0, float(above[0]) if above else None]


#: Endpoints that are ratios of arm means, not shares of subjects: they can leave 0-100 %.
RATIO_ENDPOINTS = ("fraction_of_max_effect_by_day",)


def _pct_mc(pct: float, n: int) -> list[float]:
    """The Wilson interval of ``pct`` on ``n`` (a ratio endpoint outside 0-100 %: that of the
    nearest bound, widened to include ``pct``)."""
    low, high = wilson_interval(min(max(pct, 0.0), 100.0), n)
    return [round(min(low, pct), 2), round(max(high, pct), 2)]  # endpoints are printed to 2 decimals


def _intervals(point: Any, reference: Any, draws: list[Any], n: int, visits: list[int], name: str,
               with_parameters: bool) -> dict[str, Any]:
    """The intervals of one endpoint (a per-visit mapping, a median or a rate)."""
    if isinstance(point, dict):
        return {day: _intervals(point[day], reference[day], [d[day] for d in draws], n, visits, name,
                                with_parameters) for day in point}
    median = name.startswith("median")
    out: dict[str, Any] = {}
    if with_parameters:
        values = [_shifted(point, reference, d) for d in draws]
        out["parameter"] = _quantile_interval(point, values, bounded=not median and name not in RATIO_ENDPOINTS)
    else:
        out["parameter"] = None
    out["monte_carlo"] = _median_mc(point, visits, "onset" in name) if median else _pct_mc(point, n)
    return out


def trial_with_intervals(
    spec: TrialSpec,
    draws: int = DEFAULT_DRAWS,
    subjects_per_draw: int = DEFAULT_DRAW_SUBJECTS,
    params: ModelParameters | None = None,
    uncertainty: ParameterUncertainty | None = None,
    progress: bool | None = None,
    chunk_runner=None,
) -> dict[str, Any]:
    """:func:`run_trial`'s document with intervals beside every endpoint (module docstring).

    ``draws`` 0 returns :func:`run_trial`'s document unchanged. Otherwise each arm gains
    ``intervals`` (mirroring ``areas`` and ``adverse_events_pct``: per endpoint, and per visit
    where the endpoint is per visit, ``{"parameter": [low, high], "monte_carlo": [low, high]}``)
    and the document an ``intervals`` summary (level, draws, subjects per draw, what was varied).
    ``uncertainty``: default the packaged fit's; without one, ``parameter`` is null.
    """
    params = params or default_parameters()
    result = run_trial(spec, params=params, progress=progress, chunk_runner=chunk_runner)
    if draws == 0:
        return result
    uncertainty = uncertainty if uncertainty is not None else parameter_uncertainty()
    n_draw = min(subjects_per_draw, spec.subjects_per_arm)
    runs: list[dict[str, Any]] = []
    reference = result
    if uncertainty is not None:
        small = with_subjects(spec, n_draw, "--draw-subjects")
        sets = draw_parameters(params, uncertainty, draws, spec.seed)
        bar = tqdm(total=len(sets) + (n_draw < spec.subjects_per_arm), desc="parameter draws", unit="draw",
                   disable=progress is False if progress is not None else None, leave=False)
        if n_draw < spec.subjects_per_arm:
            reference = run_trial(small, params=params, progress=False, chunk_runner=chunk_runner)
            bar.update()
        for drawn in sets:
            runs.append(run_trial(small, params=drawn, progress=False, chunk_runner=chunk_runner))
            bar.update()
        bar.close()
    with_parameters = uncertainty is not None
    visits = list(spec.follow_up_days)
    for arm, data in result["arms"].items():
        ref_arm, draw_arms = reference["arms"][arm], [run["arms"][arm] for run in runs]
        data["intervals"] = {
            "areas": {area: {name: _intervals(value, ref_arm["areas"][area][name],
                                              [d["areas"][area][name] for d in draw_arms], data["n"], visits, name,
                                              with_parameters)
                             for name, value in endpoints.items()}
                      for area, endpoints in data["areas"].items()},
            "adverse_events_pct": {name: _intervals(value, ref_arm["adverse_events_pct"][name],
                                                    [d["adverse_events_pct"][name] for d in draw_arms], data["n"],
                                                    visits, name, with_parameters)
                                   for name, value in data["adverse_events_pct"].items()},
        }
    result["intervals"] = {
        "level": LEVEL,
        "parameter_draws": draws if with_parameters else 0,
        "subjects_per_draw": n_draw if with_parameters else 0,
        "parameters_varied": [n for n in uncertainty.names if n in FITTED] if with_parameters else [],
        "parameter_method": (uncertainty.method + "; draws rerun with the trial's seed (common random numbers)"
                             if with_parameters else
                             "none: data/calibrated.yaml has no uncertainty (refit with neuromod calibrate)"),
        "monte_carlo_method": ("percentages: 95 % Wilson interval on the arm's n (conservative for the mean "
                               "endpoints); medians: the visits (onset: days) on either side"),
    }
    return result
