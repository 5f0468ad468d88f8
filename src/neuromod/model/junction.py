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
releasing until they turn over, so the effective occupancy ``O`` lags the instantaneous one
with a time constant of a day or two (clinical onset over days 1-4):

    dO/dt = (occupancy - O) / release_turnover_days

Blocked endplates grow sprouts that restore part of their function (Meunier 2003,
Rogozhin 2008). Sprout maturity ``S`` (0-1) grows while endplates are blocked and
retracts as the parent terminal returns:

    dS/dt = k_mature * O * (1 - S) - k_retract * (1 - O) * S
    blocked_fraction = max_block * O * (1 - sprout_share * S)

This module holds the chain's closed form and the scalar equations; :mod:`neuromod.model.kinetics`
integrates the lag, the sprouts and the muscle's atrophy for many patients at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from neuromod.model._jit import njit
from neuromod.reference.parameters import JunctionParameters

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

    def by_treatment(self, treatment_days: FloatArray, params: JunctionParameters) -> "JunctionRates":
        """The rates of each treatment's toxin: light-chain decay gains a last axis (n_treatments).

        Terminals remodelled by earlier injections clear a new dose's light-chain activity more
        slowly (Rogozhin 2008): decay / (1 + repeat_slowing_per_injection * memory), memory
        being the earlier injections weighted by exp(-days since / repeat_memory_days). Each
        dose keeps its own rate, so doses still add up (superposition).
        """
        memory = repeat_memory(treatment_days, params.repeat_memory_days)
        decay = np.asarray(self.light_chain_decay)[..., None] / (1.0 + params.repeat_slowing_per_injection * memory)
        if decay.ndim > 1 and decay.shape[-2] == 1:
            decay = decay[..., 0, :]  # (n_patients, 1) -> (n_patients, n_treatments)
        return replace(self, light_chain_decay=decay)

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


def repeat_memory(treatment_days: FloatArray, memory_days: float) -> FloatArray:
    """(n_treatments,) earlier injections remembered at each treatment: sum of exp(-gap / memory_days)."""
    days = np.asarray(treatment_days, dtype=float)
    gap = days[:, None] - days[None, :]
    return np.where(gap > 0, np.exp(-np.where(gap > 0, gap, 0.0) / memory_days), 0.0).sum(axis=1)


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


def bateman_terms(
    outflow: list[FloatArray], gain: list[FloatArray], compartment: int
) -> tuple[FloatArray, FloatArray]:
    """(rates, coefficients), each (..., compartment + 1): the unit response of ``compartment``
    is ``sum_i coefficients_i * exp(-rates_i * t)``.

    Bateman's solution of the chain ``x_j' = gain_{j-1} x_{j-1} - outflow_j x_j``:
    ``x_j(t) = prod_{i<j} gain_i * sum_{i<=j} exp(-k_i t) / prod_{l<=j, l!=i} (k_l - k_i)``.
    """
    rates = _separate(outflow[: compartment + 1])
    prefactor = 1.0
    for g in gain[:compartment]:
        prefactor = prefactor * np.asarray(g)
    coefficients = []
    for i, k_i in enumerate(rates):
        denominator = 1.0
        for l, k_l in enumerate(rates):
            if l != i:
                denominator = denominator * (k_l - k_i)
        coefficients.append(prefactor / denominator)
    shape = np.broadcast_shapes(*(np.shape(r) for r in rates + coefficients))
    return (np.stack([np.broadcast_to(r, shape) for r in rates], axis=-1),
            np.stack([np.broadcast_to(c, shape) for c in coefficients], axis=-1))


def unit_response(
    elapsed_days: FloatArray, outflow: list[FloatArray], gain: list[FloatArray], compartment: int
) -> FloatArray:
    """Amount in ``compartment`` ``elapsed_days`` after one unit entered the depot
    (:func:`bateman_terms`). Rates broadcast against each other; ``elapsed_days`` is appended
    as the last axis. Zero for negative elapsed time.
    """
    rates, coefficients = bateman_terms(outflow, gain, compartment)
    t = np.asarray(elapsed_days, dtype=float)
    terms = coefficients[..., None] * np.exp(-rates[..., None] * np.maximum(t, 0.0))
    return np.where(t >= 0.0, terms.sum(axis=-2), 0.0)


def light_chain_course(
    days: FloatArray, treatment_days: FloatArray, doses: FloatArray, rates: JunctionRates
) -> FloatArray:
    """Active light chain (ona units) at ``days``: (n_patients, n_muscles, n_days).

    doses: (n_patients, n_treatments, n_muscles) units each muscle receives at each treatment;
    rates: per treatment (:meth:`JunctionRates.by_treatment`; light-chain decay's last axis is
    the treatment) or the same for every treatment.
    """
    days = np.asarray(days, dtype=float)
    treatments = np.asarray(treatment_days, dtype=float)
    decay = np.asarray(rates.light_chain_decay)
    light_chain = np.zeros(doses.shape[:1] + doses.shape[2:] + days.shape)
    for k, start in enumerate(treatments):
        own = decay[..., k:k + 1] if decay.ndim and decay.shape[-1] == treatments.size else decay
        outflow, gain = replace(rates, light_chain_decay=own).chain()
        light_chain += doses[:, k, :, None] * unit_response(days - start, outflow, gain, LIGHT_CHAIN)
    return light_chain


# -- the junction's equations, one endplate population at a time --------------------------
# Scalar functions compiled with numba: :mod:`neuromod.model.kinetics` calls them inside its
# integration loop, and they can be called from Python as well.


@njit(cache=True, fastmath=True, error_model="numpy")
def occupancy(ratio: FloatArray, profile_power: FloatArray, hill_coefficient: float, out: FloatArray) -> FloatArray:
    """Fraction of each muscle's endplates whose release is below firing threshold (0-1), into ``out``.

    ratio: (n_muscles,) active light chain over the half-block amount ``L / L50``;
    profile_power: (n_bins, n_muscles) the dose profile raised to the Hill coefficient,
    ``q_k ** n`` (all ones: toxin spread evenly). Occupancy is the mean over profile bins of
    ``1 - 1 / (1 + (q_k L / L50)^n)``. Bins outer, muscles inner: the inner loop vectorises.
    """
    n_bins, n_muscles = profile_power.shape
    out[:] = 0.0
    squared = hill_coefficient == 2.0
    for k in range(n_bins):
        for m in range(n_muscles):
            r = max(ratio[m], 0.0)
            powered = r * r if squared else r**hill_coefficient
            out[m] += 1.0 / (1.0 + profile_power[k, m] * powered)
    for m in range(n_muscles):
        out[m] = 1.0 - out[m] / n_bins
    return out


@njit(cache=True, fastmath=True, error_model="numpy")
def sprout_rate(occupied: float, maturity: float, maturation_rate: float, retraction_rate: float) -> float:
    """dS/dt (1/day): sprouts mature while endplates are blocked and retract as they return."""
    return maturation_rate * occupied * (1.0 - maturity) - retraction_rate * (1.0 - occupied) * maturity


@njit(cache=True, fastmath=True, error_model="numpy")
def blocked_fraction(occupied: float, maturity: float, max_blocked: float, sprout_share: float) -> float:
    """Share of the muscle's endplates not transmitting: block less what sprouts restore."""
    return max_blocked * occupied * (1.0 - sprout_share * maturity)
