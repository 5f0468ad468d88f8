"""SBML export: one patient's junction and muscle model under a plan, for any SBML tool.

``neuromod export-sbml PLAN -o model.xml`` writes SBML Level 3 Version 2 with, per muscle that
the plan reaches: one toxin chain per treatment (depot -> free -> bound -> internalised -> light
chain, the light chain decaying at that treatment's rate ``k_lc_<k>``, slower after earlier
injections) as rate rules, treatment ``k`` as an event adding that muscle's units to its depot
``D<k>_<muscle>``, active light chain ``L_<muscle>`` as their sum, the dose-
profile occupancy as an assignment rule, the release lag, sprout maturity and atrophy as rate
rules, and ``blocked_<muscle>`` / ``strength_<muscle>`` as assignment rules. Symbols follow
:mod:`neuromod.model.junction` and :mod:`neuromod.model.muscle`; time is in days.

These are the ODEs neuromod integrates (:mod:`neuromod.model.kinetics`), so an SBML simulator
(libRoadRunner, COPASI, tellurium) and neuromod agree to the accuracy of their integrators.
"""

from __future__ import annotations

from pathlib import Path

import libsbml
import numpy as np

from neuromod.model.junction import JunctionRates
from neuromod.model.patient import describe_patient
from neuromod.model.simulate import half_block_units, plan_injections
from neuromod.model.spread import spread
from neuromod.reference.anatomy import FaceMap, load_face_map
from neuromod.reference.parameters import ModelParameters, default_parameters
from neuromod.schemas.plan import Plan


def _check(code: int, what: str) -> None:
    if code != libsbml.LIBSBML_OPERATION_SUCCESS:
        raise RuntimeError(f"SBML: could not {what} ({libsbml.OperationReturnValue_toString(code)})")


def _parameter(model: libsbml.Model, sid: str, value: float, constant: bool = True) -> None:
    p = model.createParameter()
    _check(p.setId(sid), f"name {sid}")
    _check(p.setValue(float(value)), f"set {sid}")
    _check(p.setConstant(constant), f"set {sid} constant")


def _rule(rule: libsbml.Rule, sid: str, formula: str) -> None:
    rule.setVariable(sid)
    math = libsbml.parseL3Formula(formula)
    if math is None:
        raise RuntimeError(f"SBML: bad formula for {sid}: {formula}")
    rule.setMath(math)


def _rate(model: libsbml.Model, sid: str, formula: str) -> None:
    """``d sid / dt = formula``."""
    _rule(model.createRateRule(), sid, formula)


def _assign(model: libsbml.Model, sid: str, formula: str) -> None:
    """``sid = formula`` at all times (a new non-constant parameter)."""
    _parameter(model, sid, 0.0, constant=False)
    _rule(model.createAssignmentRule(), sid, formula)


def plan_to_sbml(plan: Plan, params: ModelParameters | None = None, face_map: FaceMap | None = None,
                 min_units: float = 0.0) -> tuple[str, list[str]]:
    """(SBML document text, SBML ids of the exported muscles) for the plan's patient.

    Exports the muscles receiving more than ``min_units`` ona-equivalent units per treatment.
    Each muscle's units per treatment are the parameter ``dose_<muscle>`` and its half-block
    amount ``L50_<muscle>``; with ``k_depot``, ``k_avail`` and ``k_lc_<k>`` they are what differs
    between patients, so one document serves a population (set them, then reset and simulate).
    """
    params = params or default_parameters()
    face_map = face_map or load_face_map()
    result = spread(face_map, plan_injections(plan.points(face_map), plan), plan.product_info.spread_factor,
                    params.spread)
    patients = describe_patient(plan.patient, face_map.areas, params)
    l50 = half_block_units(face_map, patients, params)[0]
    rates = JunctionRates.from_parameters(params.junction, patients.light_chain_decay_scale,
                                          patients.availability_scale)
    treatments = np.asarray(plan.treatment_days, dtype=float)
    outflow, gain = rates.by_treatment(treatments, params.junction).chain()
    j, m = params.junction, params.muscle

    document = libsbml.SBMLDocument(3, 2)
    model = document.createModel()
    model.setId("neuromod_plan")
    model.setName(f"neuromod junction and muscle model: {plan.product}, one patient")
    model.setTimeUnits("dimensionless")
    for sid, value in (
        ("k_depot", float(np.ravel(outflow[0])[0])), ("k_avail", float(np.ravel(gain[0])[0])),
        ("k_bind", float(np.ravel(outflow[1])[0])), ("k_transloc", float(np.ravel(outflow[2])[0])),
        ("k_lytic", float(np.ravel(outflow[3])[0])),
        *((f"k_lc_{k + 1}", float(rate)) for k, rate in enumerate(np.ravel(outflow[4]))),
        ("hill_n", j.hill_coefficient), ("max_block", j.max_blocked_fraction),
        ("tau_release", j.release_turnover_days), ("k_mature", j.sprout_maturation_rate_per_day),
        ("k_retract", np.log(2.0) / j.sprout_retraction_half_life_days), ("sprout_share", j.sprout_transmission_share),
        ("atrophy_max", m.atrophy_max_fraction), ("k_atrophy", m.atrophy_rate_per_day),
        ("k_regain", m.atrophy_recovery_rate_per_day),
    ):
        _parameter(model, sid, value)

    exported = []
    doses = result.dose_per_muscle
    reached = np.flatnonzero(doses > min_units)
    for index in reached:
        key = face_map.regions[index].key
        exported.append(key)
        _parameter(model, f"L50_{key}", l50[index])
        _parameter(model, f"dose_{key}", doses[index])
        for state in ("O", "S", "A"):
            _parameter(model, f"{state}_{key}", 0.0, constant=False)
        for k in range(1, treatments.size + 1):
            for state in ("D", "F", "B", "I", "L"):
                _parameter(model, f"{state}{k}_{key}", 0.0, constant=False)
            _rate(model, f"D{k}_{key}", f"-k_depot * D{k}_{key}")
            _rate(model, f"F{k}_{key}", f"k_avail * D{k}_{key} - k_bind * F{k}_{key}")
            _rate(model, f"B{k}_{key}", f"k_bind * F{k}_{key} - k_transloc * B{k}_{key}")
            _rate(model, f"I{k}_{key}", f"k_transloc * B{k}_{key} - k_lytic * I{k}_{key}")
            _rate(model, f"L{k}_{key}", f"k_lytic * I{k}_{key} - k_lc_{k} * L{k}_{key}")
        _assign(model, f"L_{key}", " + ".join(f"L{k}_{key}" for k in range(1, treatments.size + 1)))
        profile = result.profile[index]
        terms = " + ".join(
            f"(1 - 1 / (1 + pow(piecewise(0, L_{key} < 0, {q:.17g} * L_{key} / L50_{key}), hill_n)))"
            for q in profile
        )
        _assign(model, f"occ_{key}", f"({terms}) / {len(profile)}")
        _rate(model, f"O_{key}", f"(occ_{key} - O_{key}) / tau_release")
        _rate(model, f"S_{key}", f"k_mature * O_{key} * (1 - S_{key}) - k_retract * (1 - O_{key}) * S_{key}")
        _assign(model, f"blocked_{key}", f"max_block * O_{key} * (1 - sprout_share * S_{key})")
        # building at k_atrophy, regaining at k_regain; max() keeps the rate continuous
        _rate(model, f"A_{key}",
              f"k_atrophy * max(atrophy_max * blocked_{key} - A_{key}, 0) - "
              f"k_regain * max(A_{key} - atrophy_max * blocked_{key}, 0)")
        _assign(model, f"strength_{key}", f"(1 - blocked_{key}) * (1 - A_{key})")

    for k, day in enumerate(plan.treatment_days):
        event = model.createEvent()
        event.setId(f"treatment_{k + 1}")
        event.setUseValuesFromTriggerTime(True)
        trigger = event.createTrigger()
        trigger.setInitialValue(False)
        trigger.setPersistent(True)
        trigger.setMath(libsbml.parseL3Formula(f"time >= {float(day) if day > 0 else -1}"))
        for key in exported:
            assignment = event.createEventAssignment()
            assignment.setVariable(f"D{k + 1}_{key}")
            assignment.setMath(libsbml.parseL3Formula(f"D{k + 1}_{key} + dose_{key}"))

    if document.checkInternalConsistency() or document.getNumErrors(libsbml.LIBSBML_SEV_ERROR):
        raise RuntimeError("SBML: inconsistent document: " + document.getErrorLog().toString())
    return libsbml.writeSBMLToString(document), exported


def export_sbml(plan: Plan, path: Path, params: ModelParameters | None = None) -> list[str]:
    """Write the plan's SBML model to ``path``; returns the exported muscle ids."""
    text, exported = plan_to_sbml(plan, params)
    path.write_text(text)
    return exported
