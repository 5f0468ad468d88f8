"""The population integrator against a stiff general-purpose solver on the same equations.

Reference: SciPy's LSODA at rtol 1e-11 on the full ODE system (:func:`neuromod.model.kinetics.patient_ode`,
toxin chain included). Tolerance stated: relative error at most 1e-4 on blocked fraction and
strength at every output day, relative to the reference value or to 1e-3 where it is smaller
(the benchmark's measure). Measured (step control of issue 10: curvature floor 2.5e-3, steps doubled
below 1/4 of the tolerance; with the stop-17 fit): at most 3.2e-5 over these patients and outputs,
daily and at the sparse visits with steps up to 8 days (a floor of 5e-3 reached 2.0e-4 for the
sensitive patient at availability 1). At the stop-23 fit (light chain 21.7 days, release turnover
1.34 days) daily outputs stay within 1.2e-5 and sparse outputs with 4-day steps within 5.8e-5, but
the trial kernel's 8-day steps reach 1.06e-4 and 1.37e-4 on blocked fraction for the sensitive
patients at availability 1 and 15 (strength 2.8e-5 and 6.0e-5): their tolerance is 2e-4. A depth
error of that relative size (~3e-5 mm) is under a thousandth of the narrowest FWS band (0.04 mm); shortening the step
would change every trial result and so the fit.
"""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from neuromod.model.junction import JunctionRates
from neuromod.model.kinetics import muscle_course, patient_ode, relative_error
from neuromod.model.visit_course import TRIAL_MAX_STEP_DAYS

PROFILE = np.array([
    [0.4, 0.7, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4],          # a treated muscle, fairly even
    [0.01, 0.03, 0.1, 0.3, 0.6, 1.3, 2.0, 3.7],        # a neighbour reached at one edge
    [1e-6, 1e-4, 1e-3, 5e-3, 3e-2, 0.35, 1.0, 6.6],   # a danger muscle at the edge of the field
])
DOSES = np.array([2.0, 0.5, 0.01])
TREATMENTS = np.array([0.0, 120.0])


def reference(days, availability, half_block, params):
    rates = JunctionRates.from_parameters(params.junction, 1.0, availability)
    rhs, depots, observe = patient_ode(DOSES, half_block, rates, TREATMENTS, params.junction, params.muscle, PROFILE)
    state = np.zeros((5 * TREATMENTS.size + 3) * DOSES.size)
    parts = []
    for depot, begin, end in zip(depots, (0.0, 120.0), (120.0, days[-1] + 1e-9)):
        state[depot] += DOSES
        inside = days[(days >= begin) & (days < end)]
        parts.append(solve_ivp(rhs, (begin, end), state, method="LSODA", t_eval=inside, rtol=1e-11, atol=1e-14).y)
        state = solve_ivp(rhs, (inside[-1], end), parts[-1][:, -1], method="LSODA", rtol=1e-11, atol=1e-14).y[:, -1]
    return observe(np.concatenate(parts, axis=1))


@pytest.mark.parametrize("availability", [0.1, 1.0, 15.0])
@pytest.mark.parametrize("sensitivity", [0.01, 0.3])
def test_integrator_matches_lsoda_for_slow_fast_and_sensitive_patients(params, availability, sensitivity):
    days = np.arange(0.0, 241.0)
    half_block = sensitivity * np.array([1.0, 3.0, 0.2])
    blocked, strength = reference(days, availability, half_block, params)
    rates = JunctionRates.from_parameters(params.junction, np.ones((1, 1)), np.full((1, 1), availability))
    course = muscle_course(days, TREATMENTS, np.tile(DOSES, (1, 2, 1)), half_block[None, :], rates,
                           params.junction, params.muscle, PROFILE)
    assert relative_error(course.blocked_fraction[0], blocked) <= 1e-4
    assert relative_error(course.strength[0], strength) <= 1e-4
    assert blocked[0].max() > 0.3  # a real block, twice
    # sparse outputs with long steps, up to the trial kernel's limit: the same values at the days
    # asked for (16-day steps exceed the tolerance: 5.7e-4 for the fast, sensitive patient)
    visits = np.array([0.0, 1.0, 3.0, 14.0, 30.0, 90.0, 120.0, 121.0, 150.0, 240.0])
    steps = course.steps[0]
    for max_step, tolerance in ((4.0, 1e-4), (TRIAL_MAX_STEP_DAYS, 2e-4)):
        sparse = muscle_course(visits, TREATMENTS, np.tile(DOSES, (1, 2, 1)), half_block[None, :], rates,
                               params.junction, params.muscle, PROFILE, max_step_days=max_step)
        assert relative_error(sparse.strength[0], strength[:, visits.astype(int)]) <= tolerance
        assert relative_error(sparse.blocked_fraction[0], blocked[:, visits.astype(int)]) <= tolerance
        assert sparse.steps[0] <= steps + 2  # longer steps allowed: no more work, but for a rejected try or two
        steps = sparse.steps[0]
    assert steps < course.steps[0]


def test_steps_adapt_to_how_fast_block_builds(params):
    """Fast absorption makes block build within hours: that patient takes more steps."""
    days = np.arange(0.0, 61.0)
    availability = np.array([[0.1], [1.0], [20.0]])
    rates = JunctionRates.from_parameters(params.junction, np.ones((3, 1)), availability)
    course = muscle_course(days, TREATMENTS[:1], np.full((3, 1, 1), 2.0), np.full((3, 1), 0.05), rates,
                           params.junction, params.muscle)
    assert course.steps[2] > course.steps[1]
    assert course.blocked_fraction[2, 0, 1] > course.blocked_fraction[1, 0, 1] > course.blocked_fraction[0, 0, 1]


def test_patients_are_independent_of_who_else_is_integrated(params):
    days = np.arange(0.0, 31.0)
    availability = np.exp(np.linspace(-2, 2, 7))[:, None]
    rates = JunctionRates.from_parameters(params.junction, np.ones((7, 1)), availability)
    together = muscle_course(days, TREATMENTS[:1], np.full((7, 1, 2), 2.0), np.full((7, 2), 0.05), rates,
                             params.junction, params.muscle)
    alone = muscle_course(days, TREATMENTS[:1], np.full((1, 1, 2), 2.0), np.full((1, 2), 0.05),
                          JunctionRates.from_parameters(params.junction, np.ones((1, 1)), availability[3:4]),
                          params.junction, params.muscle)
    np.testing.assert_array_equal(together.strength[3], alone.strength[0])


def test_untreated_muscles_keep_full_strength_and_bad_days_are_named(params):
    rates = JunctionRates.from_parameters(params.junction)
    course = muscle_course(np.arange(0.0, 10.0), TREATMENTS[:1], np.zeros((1, 1, 1)), np.full((1, 1), 0.05), rates,
                           params.junction, params.muscle)
    assert np.all(course.strength == 1.0) and np.all(course.blocked_fraction == 0.0)
    with pytest.raises(ValueError, match="days"):
        muscle_course(np.array([0.0, 0.3]), TREATMENTS[:1], np.ones((1, 1, 1)), np.full((1, 1), 0.05), rates,
                      params.junction, params.muscle)
    with pytest.raises(ValueError, match="max_step_days"):
        muscle_course(np.arange(0.0, 10.0), TREATMENTS[:1], np.ones((1, 1, 1)), np.full((1, 1), 0.05), rates,
                      params.junction, params.muscle, max_step_days=3.0)
