"""SBML export round trip: libRoadRunner runs the exported model and agrees with neuromod.

neuromod solves the toxin chain exactly and integrates the non-linear stages with its own
adaptive steps (:mod:`neuromod.model.kinetics`); the agreement asserted here, 1e-5 absolute on blocked
fraction and strength at every day against CVODE at rtol 1e-8, is that integrator's accuracy
(measured: 9e-8 and 1.6e-6 for the label glabella plan treated twice).
"""

import numpy as np
import pytest

roadrunner = pytest.importorskip("roadrunner")

from neuromod import parse_plan, simulate  # noqa: E402
from neuromod.export.sbml import plan_to_sbml  # noqa: E402


def test_exported_model_is_valid_sbml_with_events_per_treatment():
    import libsbml

    plan = parse_plan({"product": "botox", "areas": {"glabella": 20}, "treatment_days": [0, 120]})
    text, muscles = plan_to_sbml(plan)
    document = libsbml.readSBMLFromString(text)
    assert document.getLevel() == 3
    assert document.getNumErrors(libsbml.LIBSBML_SEV_ERROR) == 0
    model = document.getModel()
    assert model.getNumEvents() == 2
    assert "corrugator_supercilii_left" in muscles and "levator_palpebrae_superioris_left" in muscles
    assert model.getParameter("L50_procerus") is not None


def test_roadrunner_trajectory_matches_neuromod():
    plan = parse_plan({"product": "botox", "areas": {"glabella": 20}, "treatment_days": [0, 120]})
    text, muscles = plan_to_sbml(plan)
    runner = roadrunner.RoadRunner(text)
    runner.integrator.relative_tolerance = 1e-8
    runner.integrator.absolute_tolerance = 1e-12
    selections = ["time"] + [f"blocked_{m}" for m in muscles] + [f"strength_{m}" for m in muscles]
    trajectory = runner.simulate(0, 240, 241, selections=selections)
    ours = simulate(plan, days=240)
    index = [ours.muscles.index(m) for m in muscles]
    blocked = ours.output.blocked_fraction[0, index].T
    strength = ours.output.strength[0, index].T
    n = len(muscles)
    assert np.abs(trajectory[:, 1:1 + n] - blocked).max() < 1e-5
    assert np.abs(trajectory[:, 1 + n:] - strength).max() < 1e-5
    # and the course is a real one: the corrugator is blocked most at ~1-2 weeks, twice
    k = muscles.index("corrugator_supercilii_left")
    assert trajectory[10, 1 + k] > 0.6 and trajectory[130, 1 + k] > 0.6 and trajectory[110, 1 + k] < trajectory[10, 1 + k]
