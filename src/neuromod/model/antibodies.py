"""Neutralizing antibodies: the rare patient whose later treatments stop working.

Each treatment can induce neutralizing antibodies with a probability that grows with the
antigen load of that cycle (onabotulinumtoxinA-equivalent units, times the product's
immunogenicity: complexing proteins raise it) and with a short interval since the previous
treatment (boosting), higher in men (published/safety.csv). Once a patient has antibodies,
every later dose is mostly neutralized (secondary non-response). Shapes: leading axis patients.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from neuromod.reference.parameters import AntibodyParameters

FloatArray = npt.NDArray[np.float64]


def seroconversion_probability(
    ona_units: FloatArray, treatment_days: FloatArray, immunogenicity: float, male: FloatArray | bool,
    params: AntibodyParameters,
) -> FloatArray:
    """(n_patients, n_treatments) probability that each treatment induces antibodies.

    ona_units: (n_treatments,) or (n_patients, n_treatments) units per treatment.
    """
    days = np.asarray(treatment_days, dtype=float)
    intervals = np.diff(days, prepend=-np.inf)
    booster = np.where(np.isfinite(intervals), (90.0 / np.maximum(intervals, 1.0)) ** params.interval_exponent, 1.0)
    load = (np.asarray(ona_units, dtype=float) / params.reference_ona_units) ** params.dose_exponent
    sex = np.where(np.asarray(male, dtype=bool), params.male_factor, 1.0)
    p = params.rate_per_treatment * immunogenicity * np.atleast_2d(load) * booster * np.reshape(sex, (-1, 1))
    return np.clip(p, 0.0, 1.0)


def cumulative_risk(probability: FloatArray) -> FloatArray:
    """(n_patients,) probability of having antibodies after all treatments."""
    return 1.0 - np.prod(1.0 - probability, axis=-1)


def neutralize(doses: FloatArray, probability: FloatArray, rng: np.random.Generator,
               params: AntibodyParameters) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Draw who seroconverts after which treatment and cut their later doses.

    doses: (n_patients, n_treatments, n_muscles); probability: (n_patients, n_treatments).
    Returns (doses actually active, (n_patients,) whether antibodies developed).
    """
    converts = rng.random(probability.shape) < probability
    # antibodies raised by treatment k act on treatments k+1, k+2, ...
    protected = np.cumsum(converts, axis=1) > 0
    acting = np.concatenate([np.zeros_like(protected[:, :1]), protected[:, :-1]], axis=1)
    factor = np.where(acting, 1.0 - params.neutralized_fraction, 1.0)
    return doses * factor[:, :, None], protected[:, -1]
