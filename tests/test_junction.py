import numpy as np
import pytest
from scipy.integrate import solve_ivp

from neuromod.model.junction import (
    LIGHT_CHAIN,
    JunctionRates,
    light_chain_course,
    occupancy,
    unit_response,
)
from neuromod.model.kinetics import muscle_course


def junction_response(days, treatment_days, doses, half_block_units, rates, junction, profile=None):
    """The junction's states from the integrator (muscle parameters do not feed back)."""
    from neuromod.reference.parameters import default_parameters

    return muscle_course(days, treatment_days, doses, half_block_units, rates, junction,
                         default_parameters().muscle, profile)


def chain_rhs(rates):
    outflow, gain = rates.chain()
    k = [float(np.asarray(v)) for v in outflow]
    g = [float(np.asarray(v)) for v in gain]

    def rhs(_, x):
        dx = [-k[0] * x[0]]
        for j in range(1, len(k)):
            dx.append(g[j - 1] * x[j - 1] - k[j] * x[j])
        return dx

    return rhs


def test_bateman_solution_matches_numerical_integration(params):
    """The closed form agrees with LSODA on the same ODEs (relative error < 1e-6)."""
    rates = JunctionRates.from_parameters(params.junction)
    days = np.linspace(0, 200, 201)
    exact = unit_response(days, *rates.chain(), LIGHT_CHAIN)
    numeric = solve_ivp(chain_rhs(rates), (0, 200), [1, 0, 0, 0, 0], method="LSODA", t_eval=days,
                        rtol=1e-10, atol=1e-14).y[LIGHT_CHAIN]
    np.testing.assert_allclose(exact[1:], numeric[1:], rtol=1e-6)


def test_light_chain_rises_within_days_and_decays_with_its_half_life(params):
    rates = JunctionRates.from_parameters(params.junction)
    days = np.arange(0, 201.0)
    lc = unit_response(days, *rates.chain(), LIGHT_CHAIN)
    assert abs(lc[0]) < 1e-12
    assert 2 <= int(np.argmax(lc)) <= 10  # peak of active light chain within days
    half_life = params.junction.light_chain_half_life_days
    later = unit_response(np.array([150.0, 150.0 - half_life]), *rates.chain(), LIGHT_CHAIN)
    assert later[0] / later[1] == pytest.approx(0.5, rel=0.01)


def test_superposition_of_repeat_doses(params):
    rates = JunctionRates.from_parameters(params.junction)
    days = np.arange(0, 300.0)
    doses = np.array([[[2.0], [3.0]]])  # one patient, two treatments, one muscle
    both = light_chain_course(days, np.array([0.0, 120.0]), doses, rates)[0, 0]
    first = light_chain_course(days, np.array([0.0]), doses[:, :1], rates)[0, 0]
    second = light_chain_course(days - 120.0, np.array([0.0]), doses[:, 1:], rates)[0, 0]
    np.testing.assert_allclose(both, first + second, rtol=1e-12)


def test_blocked_fraction_is_monotone_in_dose_and_bounded(params):
    rates = JunctionRates.from_parameters(params.junction)
    days = np.arange(0, 181.0)
    doses = np.linspace(0.0, 10.0, 11)[:, None, None]
    state = junction_response(days, np.array([0.0]), doses, np.full((11, 1), 0.2), rates, params.junction)
    peak = state.blocked_fraction[:, 0].max(axis=1)
    assert peak[0] == 0.0
    assert np.all(np.diff(peak) > 0)
    assert peak[-1] <= params.junction.max_blocked_fraction
    # more toxin, longer block: the day block falls below 0.4 moves later with dose
    ends = [days[np.flatnonzero(b > 0.4)[-1]] if (b > 0.4).any() else 0 for b in state.blocked_fraction[:, 0]]
    assert all(a <= b for a, b in zip(ends, ends[1:])) and ends[-1] > ends[2]


def test_occupancy_is_half_at_the_half_block_amount(params):
    out = np.empty(3)
    even = np.ones((1, 3))
    occupancy(np.array([1.0, 0.0, -1.0]), even, params.junction.hill_coefficient, out)
    np.testing.assert_allclose(out, [0.5, 0.0, 0.0])
    # all the toxin on half the muscle at twice the density: that half is blocked 80 %, the rest not
    occupancy(np.ones(3), np.array([[0.0] * 3, [2.0**2] * 3]), 2.0, out)
    np.testing.assert_allclose(out, 0.5 * 0.8)


def test_sprouts_restore_function_during_block_and_retract_after(params):
    """Block eases a little during the plateau as sprouts mature (peak effect, then wear-off)."""
    rates = JunctionRates.from_parameters(params.junction)
    days = np.arange(0, 366.0)
    state = junction_response(days, np.array([0.0]), np.array([[[3.0]]]), np.array([[0.1]]), rates,
                              params.junction)
    maturity = state.sprout_maturity[0, 0]
    assert maturity[3] < maturity[30] < 1.0
    assert maturity[365] < maturity.max()
    blocked = state.blocked_fraction[0, 0]
    assert blocked[7] > blocked[45]


def test_a_muscle_dosed_at_one_corner_is_blocked_only_there(params):
    """Same units on a tenth of the muscle: the block saturates at about a tenth of its endplates."""
    rates = JunctionRates.from_parameters(params.junction)
    days = np.arange(0, 61.0)
    doses = np.array([[[5.0, 5.0]]])  # one patient, one treatment, two muscles
    corner = np.zeros(10)
    corner[-1] = 10.0
    profile = np.vstack([np.ones(10), corner])
    state = junction_response(days, np.array([0.0]), doses, np.array([[0.05, 0.05]]), rates, params.junction,
                              profile)
    even_peak, corner_peak = state.blocked_fraction[0].max(axis=1)
    assert even_peak > 0.8 * params.junction.max_blocked_fraction
    assert corner_peak == pytest.approx(0.1 * params.junction.max_blocked_fraction, rel=0.1)
