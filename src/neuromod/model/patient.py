"""Stage 6 — patients: who is treated, as arrays the model stages consume.

A patient is a vector of model parameters and a population is a matrix of them: every
array in :class:`Patients` has the patient as its leading axis. This module turns a
patient's description (age, sex, smoking, sun exposure, baseline scores per area) into
that vector; :mod:`neuromod.trials.population` draws many of them with random effects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from neuromod.model.scores import depth_for_score
from neuromod.model.skin import strain_ratio_for_depth
from neuromod.reference.anatomy import FaceMap
from neuromod.reference.parameters import ModelParameters
from neuromod.reference.products import Product
from neuromod.schemas.patient import (
    BaselineScores,
    PatientDescription,
    Smoking,
    SunExposure,
)

FloatArray = npt.NDArray[np.float64]

@dataclass(frozen=True)
class Patients:
    """Model parameters of n patients (leading axis). Shapes:

    half_block_scale, light_chain_decay_scale, availability_scale, deepening_factor: (n, 1)
    baseline_strain_ratio, baseline_static_mm: (n, n_areas)
    """

    half_block_scale: FloatArray
    light_chain_decay_scale: FloatArray
    availability_scale: FloatArray
    deepening_factor: FloatArray
    baseline_strain_ratio: FloatArray
    baseline_static_mm: FloatArray

    @property
    def count(self) -> int:
        return self.half_block_scale.shape[0]


def deepening_factor(age: FloatArray, smoking: FloatArray, sun: FloatArray, params: ModelParameters) -> FloatArray:
    """Multiplier of static-line deepening from age (years), smoking and sun factors."""
    decades = np.maximum(np.asarray(age, dtype=float) - params.patient.reference_age_years, 0.0) / 10.0
    return (1.0 + params.skin.age_deepening_per_decade * decades) * smoking * sun


def smoking_factor(smoking: Smoking, params: ModelParameters) -> float:
    return {"never": 1.0, "former": params.patient.former_smoker_factor,
            "current": params.skin.smoking_deepening_factor}[smoking]


def sun_factor(sun: SunExposure, params: ModelParameters) -> float:
    return {"low": 1.0, "moderate": params.patient.moderate_sun_factor,
            "high": params.skin.sun_deepening_factor}[sun]


def baseline_skin(
    rest_scores: FloatArray, contraction_scores: FloatArray, params: ModelParameters
) -> tuple[FloatArray, FloatArray]:
    """(strain ratio, static depth in mm) that explain baseline grades at rest and contraction.

    A recorded grade ``g`` means the depth whose expected grade is ``g``
    (:func:`neuromod.model.scores.depth_for_score`). For a whole grade that is the centre of its
    band in the ordinal-probit sense: raters err symmetrically about the true depth, so the depth
    equally far from the band's two cut-points (grade 2: midway between the 1|2 and 2|3
    cut-points, 0.16 mm) is the one most often graded ``g`` and the one where the expected grade
    is flat. A half grade (2.5) is a cut-point itself, where the expected grade is steepest; the
    typical patient (``patient.default_baseline_contraction``) is therefore a whole grade, so a
    line a few per cent shallower than at baseline does not already score better (docs/course.md).
    """
    static = depth_for_score(np.asarray(rest_scores, dtype=float), params.scores)
    at_contraction = depth_for_score(np.maximum(contraction_scores, rest_scores), params.scores)
    return strain_ratio_for_depth(at_contraction - static, params.skin), static


def baseline_grades(
    description: PatientDescription, areas: list[str], params: ModelParameters
) -> tuple[FloatArray, FloatArray]:
    """(rest, contraction) grades per area, filling unlisted areas with the defaults."""
    default = BaselineScores(
        rest=params.patient.default_baseline_rest,
        contraction=params.patient.default_baseline_contraction,
    )
    scores = [description.baseline.get(area, default) for area in areas]
    return np.array([s.rest for s in scores]), np.array([s.contraction for s in scores])


def describe_patient(
    description: PatientDescription, areas: list[str], params: ModelParameters
) -> Patients:
    """The model parameters of one described patient (n = 1), without random effects."""
    rest, contraction = baseline_grades(description, areas, params)
    strain_ratio, static = baseline_skin(rest, contraction, params)
    male = description.sex == "male"
    deepening = deepening_factor(
        description.age,
        smoking_factor(description.smoking, params),
        sun_factor(description.sun_exposure, params),
        params,
    )
    one = np.ones((1, 1))
    return Patients(
        half_block_scale=one * (params.patient.male_half_block_factor if male else 1.0),
        light_chain_decay_scale=one.copy(),
        availability_scale=one.copy(),
        deepening_factor=one * deepening,
        baseline_strain_ratio=strain_ratio[None, :],
        baseline_static_mm=static[None, :],
    )



def half_block_units(face_map: FaceMap, patients: Patients, params: ModelParameters) -> FloatArray:
    """(n_patients, n_muscles) active light chain (ona units) that blocks half of each muscle."""
    typical = face_map.typical_units()
    return params.junction.half_block_fraction_of_typical_dose * typical[None, :] * patients.half_block_scale


def with_product(patients: Patients, product: Product) -> Patients:
    """``patients`` as treated with ``product``: its toxin becomes available at the junction
    ``availability_factor`` times as fast (onset) and its light chain loses activity
    ``persistence_factor`` times as slowly (duration), on top of each patient's own scales.

    The one place product kinetics enter (``data/products.csv``, 1 for onabotulinumtoxinA): the
    trials (:func:`neuromod.trials.trial.simulate_chunk`), ``simulate``, the planner and personal
    predictions (with the last session's product) call it.
    """
    return replace(patients,
                   availability_scale=patients.availability_scale * product.availability_factor,
                   light_chain_decay_scale=patients.light_chain_decay_scale / product.persistence_factor)


def repeat_patient(patients: Patients, n: int) -> Patients:
    """``n`` copies of the first patient of ``patients`` (leading axis n)."""
    return Patients(*(np.repeat(getattr(patients, f)[:1], n, axis=0) for f in patients.__dataclass_fields__))
