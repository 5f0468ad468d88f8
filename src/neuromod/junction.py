"""Stage 2 — the nerve-muscle junction: from units in a muscle to blocked endplates.

Per muscle, a linear chain of first-order steps carries the toxin (onabotulinumtoxinA-
equivalent units) from the injected tissue to active light chain inside the nerve terminals:

    depot --availability--> free at the junction --binding--> bound
          --translocation--> internalised --lytic step--> active light chain --decay-->
    (depot also loses toxin to clearance)

The three fast steps are Simpson's (1980); the slow availability step in front of them
(Lebeda 2008) makes human onset take days, not hours. Active light chain cleaves SNAP-25
and decays slowly (half-life of weeks: Foran 2003). Because every step of the chain is
linear, it has an exact solution (Bateman's equations) evaluated only at the output days,
and repeat treatments add up (superposition).

Endplate block is a steep function of active light chain (the safety factor of
transmission: release must fall 75-92 % before an endplate fails):

    occupancy = L^n / (L^n + L50^n)

Toxin is not spread evenly over a muscle: the spread stage gives its dose profile ``q_k``
(local dose over mean dose for equal-area groups of cells). The kinetics are linear and the
same in every cell, so the muscle's occupancy is the mean over the groups of the local one,
``mean_k occ(q_k * L / L50)`` — a sheet muscle treated at one corner is blocked only there,
and the edge of a danger muscle fills in as the dose grows.

Block does not follow light chain at once: SNARE complexes assembled before cleavage keep
releasing until they turn over, so the effective occupancy lags the instantaneous one
with a time constant of a day or two (clinical onset over days 1-4).

Blocked endplates grow sprouts that restore part of their function (Meunier 2003,
Rogozhin 2008). Sprout maturity ``S`` (0-1) grows while endplates are blocked and
retracts as the parent terminal returns:

    dS/dt = k_mature * occupancy * (1 - S) - k_retract * (1 - occupancy) * S
    blocked_fraction = max_block * occupancy * (1 - sprout_share * S)

integrated exactly for occupancy held at the mean of each step's end points. Shapes: leading axis patients, then muscles, then time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from neuromod.parameters import JunctionParameters

FloatArray = npt.NDArray[np.float64]

#: Index of each compartment of the chain.
DEPOT, FREE, BOUND, INTERNALISED, LIGHT_CHAIN = range(5)


@dataclass(frozen=True)
class JunctionRates:
    """Per-patient rates (1/day) of the chain; each array broadcasts against (n_patients, n_muscles).

    ``light_chain_decay`` and ``availability`` are where people differ most; the Simpson
    steps are shared.
    """

    availability: FloatArray
    clearance: FloatArray
    binding: FloatArray
    translocation: FloatArray
    lytic: FloatArray
    light_chain_decay: FloatArray

    @classmethod
    def from_parameters(
        cls,
        params: JunctionParameters,
        light_chain_decay_scale: FloatArray | float = 1.0,
        availability_scale: FloatArray | float = 1.0,
    ) -> "JunctionRates":
        """Rates from the parameter set, with optional per-patient multipliers (n_patients, 1)."""
        return cls(
            availability=params.availability_rate_per_day * np.asarray(availability_scale),
            clearance=np.asarray(params.clearance_rate_per_day),
            binding=np.asarray(params.binding_rate_per_day),
            translocation=np.asarray(params.translocation_rate_per_day),
            lytic=np.asarray(params.lytic_rate_per_day),
            light_chain_decay=np.log(2.0)
            / params.light_chain_half_life_days
            * np.asarray(light_chain_decay_scale),
        )

    def chain(self) -> tuple[list[FloatArray], list[FloatArray]]:
        """(outflow rate of each compartment, gain from each compartment into the next)."""
        outflow = [
            self.availability + self.clearance,
            self.binding,
            self.translocation,
            self.lytic,
            self.light_chain_decay,
        ]
        gain = [self.availability, self.binding, self.translocation, self.lytic]
        return outflow, gain


def _separate(rates: list[FloatArray], min_relative_gap: float = 1e-4) -> list[FloatArray]:
    """Nudge rates that coincide (Bateman's formula divides by their differences)."""
    separated: list[FloatArray] = []
    for rate in rates:
        rate = np.asarray(rate, dtype=float)
        for earlier in separated:
            gap = np.abs(rate - earlier) < min_relative_gap * np.maximum(np.abs(rate), 1e-12)
            rate = np.where(gap, rate * (1.0 + 3.0 * min_relative_gap), rate)
        separated.append(rate)
    return separated


def unit_response(
    elapsed_days: FloatArray, outflow: list[FloatArray], gain: list[FloatArray], compartment: int
) -> FloatArray:
    """Amount in ``compartment`` ``elapsed_days`` after one unit entered the depot.

    Bateman's solution of the chain ``x_j' = gain_{j-1} x_{j-1} - outflow_j x_j``:
    ``x_j(t) = prod_{i<j} gain_i * sum_{i<=j} exp(-k_i t) / prod_{l<=j, l!=i} (k_l - k_i)``.
    Rates broadcast against each other; ``elapsed_days`` is appended as the last axis.
    Zero for negative elapsed time.
    """
    rates = _separate(outflow[: compartment + 1])
    t = np.asarray(elapsed_days, dtype=float)
    tt = np.maximum(t, 0.0)
    total = 0.0
    for i, k_i in enumerate(rates):
        denominator = 1.0
        for l, k_l in enumerate(rates):
            if l != i:
                denominator = denominator * (k_l - k_i)
        total = total + np.exp(-np.asarray(k_i)[..., None] * tt) / np.asarray(denominator)[..., None]
    prefactor = 1.0
    for g in gain[:compartment]:
        prefactor = prefactor * np.asarray(g)
    return np.where(t >= 0.0, np.asarray(prefactor)[..., None] * total, 0.0)


@dataclass(frozen=True)
class JunctionState:
    """Junction outputs; arrays of shape (n_patients, n_muscles, n_days)."""

    light_chain: FloatArray
    sprout_maturity: FloatArray
    blocked_fraction: FloatArray


def light_chain_course(
    days: FloatArray, treatment_days: FloatArray, doses: FloatArray, rates: JunctionRates
) -> FloatArray:
    """Active light chain (ona units) at ``days``: (n_patients, n_muscles, n_days).

    doses: (n_patients, n_treatments, n_muscles) units each muscle receives at each treatment.
    """
    days = np.asarray(days, dtype=float)
    outflow, gain = rates.chain()
    light_chain = np.zeros(doses.shape[:1] + doses.shape[2:] + days.shape)
    for k, start in enumerate(np.asarray(treatment_days, dtype=float)):
        light_chain += doses[:, k, :, None] * unit_response(days - start, outflow, gain, LIGHT_CHAIN)
    return light_chain


def occupancy(
    light_chain: FloatArray, half_block_units: FloatArray, params: JunctionParameters,
    profile: FloatArray | None = None,
) -> FloatArray:
    """Fraction of reachable endplates whose release is below firing threshold (0-1).

    profile: (n_muscles, n_bins) local dose / mean dose (see module docstring); None: even.
    Shapes: light_chain (n_patients, n_muscles, n_days), half_block_units broadcastable.
    """
    ratio = np.maximum(light_chain, 0.0) / half_block_units
    if profile is None:
        return _hill(ratio, params.hill_coefficient)
    mean = np.zeros_like(ratio)
    for k in range(profile.shape[-1]):
        mean += _hill(ratio * profile[..., k, None], params.hill_coefficient)
    return mean / profile.shape[-1]


def _hill(ratio: FloatArray, coefficient: float) -> FloatArray:
    """``r^n / (1 + r^n)``, as ``1 - 1/(1 + r^n)`` (squares when n = 2: the hot path)."""
    powered = ratio * ratio if coefficient == 2.0 else ratio**coefficient
    return 1.0 - 1.0 / (1.0 + powered)


def release_lag(days: FloatArray, occupied: FloatArray, params: JunctionParameters) -> FloatArray:
    """Effective occupancy: the instantaneous one seen through SNARE turnover (first-order lag,
    exact for occupancy varying linearly over each step)."""
    days = np.asarray(days, dtype=float)
    source = time_major(occupied)
    lagged = np.zeros_like(source)
    tau = params.release_turnover_days
    for t in range(1, days.size):
        step = days[t] - days[t - 1]
        decay = np.exp(-step / tau)
        ramp = 1.0 - tau / step * (1.0 - decay)
        start, end = source[t - 1], source[t]
        lagged[t] = lagged[t - 1] * decay + start * (1.0 - decay) + (end - start) * ramp
    return np.moveaxis(lagged, 0, -1)


def time_major(values: FloatArray) -> FloatArray:
    """A contiguous copy with time (the last axis) first, for stepping through days."""
    return np.ascontiguousarray(np.moveaxis(values, -1, 0))


def sprout_maturity(days: FloatArray, occupied: FloatArray, params: JunctionParameters) -> FloatArray:
    """Sprout maturity (0-1) at ``days`` from the occupancy course (see module docstring)."""
    days = np.asarray(days, dtype=float)
    mature = params.sprout_maturation_rate_per_day
    retract = np.log(2.0) / params.sprout_retraction_half_life_days
    source = time_major(occupied)
    maturity = np.zeros_like(source)
    for t in range(1, days.size):
        drive = 0.5 * (source[t - 1] + source[t])
        grow, shrink = mature * drive, retract * (1.0 - drive)
        total = grow + shrink
        steady = np.divide(grow, total, out=np.zeros_like(total), where=total > 0)
        maturity[t] = steady + (maturity[t - 1] - steady) * np.exp(-total * (days[t] - days[t - 1]))
    return np.moveaxis(maturity, 0, -1)


def junction_response(
    days: FloatArray,
    treatment_days: FloatArray,
    doses: FloatArray,
    half_block_units: FloatArray,
    rates: JunctionRates,
    params: JunctionParameters,
    profile: FloatArray | None = None,
) -> JunctionState:
    """Light chain, sprouting and blocked fraction at ``days`` (a daily grid).

    days: (n_days,) output days; treatment_days: (n_treatments,) days of injection;
    doses: (n_patients, n_treatments, n_muscles) onabotulinumtoxinA-equivalent units each
    muscle receives at each treatment; half_block_units: (n_patients, n_muscles) active light
    chain (units) that blocks half of the muscle's endplates when spread evenly; profile:
    (n_muscles, n_bins) dose profile from the spread stage (None: even).
    """
    light_chain = light_chain_course(days, treatment_days, doses, rates)
    occupied = release_lag(days, occupancy(light_chain, half_block_units[..., None], params, profile), params)
    maturity = sprout_maturity(days, occupied, params)
    blocked = params.max_blocked_fraction * occupied * (1.0 - params.sprout_transmission_share * maturity)
    return JunctionState(light_chain, maturity, blocked)
