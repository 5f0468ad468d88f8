"""Stage 3 — muscle: force from the blocked fraction, and disuse atrophy ("retraining").

Force at maximum voluntary contraction is carried by the fibres whose endplates still
transmit; the safety factor of transmission is already folded into the junction's steep
block curve, so here force falls in proportion to the blocked fraction. A blocked muscle
also loses bulk: atrophy approaches ``atrophy_max_fraction * blocked_fraction`` with a
time constant of weeks (masseter: -33 % at 3 months, nadir ~77 days) and is regained
more slowly once transmission returns (time constant 57 days against 40: fitted to the
masseter's published return after one injection, 46 % of the maximal thinning left 12 weeks
after it, data/published/mechanism.csv masseter-lower-third-12wk/-24wk; the muscle's EMG
recovers months before its bulk, masseter-contour-return, so late in a course strength is
lost to atrophy rather than to blocked endplates):

    dA/dt = k_build * max(A_max * blocked - A, 0) - k_regain * max(A - A_max * blocked, 0)

Scalar equations compiled with numba; :mod:`neuromod.model.kinetics` integrates them with the junction's.
"""

from __future__ import annotations

from neuromod.model._jit import njit


@njit(cache=True, fastmath=True, error_model="numpy")
def atrophy_rate(loss: float, blocked: float, max_fraction: float, build_rate: float, regain_rate: float) -> float:
    """dA/dt (1/day) of the fractional loss of bulk ``A`` (0 = none) under ``blocked`` endplates:
    towards ``max_fraction * blocked`` at ``build_rate`` while below it, at ``regain_rate`` above."""
    target = max_fraction * blocked
    return (build_rate if target > loss else regain_rate) * (target - loss)


@njit(cache=True, fastmath=True, error_model="numpy")
def strength(blocked: float, loss: float) -> float:
    """Force at maximum contraction relative to the untreated muscle (0-1)."""
    return (1.0 - blocked) * (1.0 - loss)
