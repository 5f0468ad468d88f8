"""Stage 3 — muscle: force from the blocked fraction, and disuse atrophy ("retraining").

Force at maximum voluntary contraction is carried by the fibres whose endplates still
transmit; the safety factor of transmission is already folded into the junction's steep
block curve, so here force falls in proportion to the blocked fraction. A blocked muscle
also loses bulk: atrophy approaches ``atrophy_max_fraction * blocked_fraction`` with a
time constant of weeks (masseter: -33 % at 3 months, nadir ~77 days) and is regained
more slowly once transmission returns. Shapes: (n_patients, n_muscles, n_days).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from neuromod.junction import time_major
from neuromod.parameters import MuscleParameters

FloatArray = npt.NDArray[np.float64]


def atrophy(days: FloatArray, blocked_fraction: FloatArray, params: MuscleParameters) -> FloatArray:
    """Fractional loss of muscle bulk at ``days`` (0 = none), driven by the blocked fraction.

    Integrated exactly for the drive held at the mean of each step's end points (second
    order in the step; a daily grid is accurate to ~1e-4 for these time constants).
    """
    days = np.asarray(days, dtype=float)
    target = time_major(params.atrophy_max_fraction * blocked_fraction)
    loss = np.zeros_like(target)
    for t in range(1, days.size):
        dt = days[t] - days[t - 1]
        drive = 0.5 * (target[t - 1] + target[t])
        previous = loss[t - 1]
        rate = np.where(
            drive > previous, params.atrophy_rate_per_day, params.atrophy_recovery_rate_per_day
        )
        loss[t] = drive + (previous - drive) * np.exp(-rate * dt)
    return np.moveaxis(loss, 0, -1)


def strength(blocked_fraction: FloatArray, atrophy_fraction: FloatArray) -> FloatArray:
    """Force at maximum contraction relative to the untreated muscle (0-1)."""
    return (1.0 - blocked_fraction) * (1.0 - atrophy_fraction)
