"""The model's parameter set, loaded from the versioned data file ``data/parameters.yaml``.

Every number lives in that file next to its unit and source; this module only gives the
values types and names. Stages receive the sub-set they need (``params.junction`` and so on)
and never read files themselves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from neuromod.reference.files import data_file_exists, read_data_yaml, read_document


@dataclass(frozen=True)
class SpreadParameters:
    """Toxin field around an injection (see :mod:`neuromod.model.spread`)."""

    sigma_ref_mm: float
    reference_units: float
    reference_volume_ml: float
    dose_exponent: float
    volume_exponent: float
    depth_length_mm: float
    tissue_sink_weight: float
    barrier_transmission: dict[str, float]


@dataclass(frozen=True)
class JunctionParameters:
    """Nerve-muscle junction kinetics (see :mod:`neuromod.model.junction`). Rates in 1/day."""

    availability_rate_per_day: float
    clearance_rate_per_day: float
    binding_rate_per_day: float
    translocation_rate_per_day: float
    lytic_rate_per_day: float
    light_chain_half_life_days: float
    half_block_fraction_of_typical_dose: float
    hill_coefficient: float
    max_blocked_fraction: float
    release_turnover_days: float
    sprout_maturation_rate_per_day: float
    sprout_retraction_half_life_days: float
    sprout_transmission_share: float
    repeat_slowing_per_injection: float
    mouse_repeat_slowing_per_injection: float
    repeat_memory_days: float


@dataclass(frozen=True)
class MuscleParameters:
    """Force and disuse atrophy (see :mod:`neuromod.model.muscle`)."""

    atrophy_max_fraction: float
    atrophy_rate_per_day: float
    atrophy_recovery_rate_per_day: float


@dataclass(frozen=True)
class SkinParameters:
    """Dynamic and static lines (see :mod:`neuromod.model.skin`)."""

    film_thickness_mm: float
    onset_strain_spread: float
    fade_time_days: float
    crease_memory_share: float
    crease_memory_fade_days: float
    rise_time_days: float
    static_deepening_mm_per_year: float
    static_repair_time_days: float
    smoking_deepening_factor: float
    sun_deepening_factor: float
    age_deepening_per_decade: float
    #: muscle -> its share of its area's lines (1), overriding ``muscles.csv`` ``area_weight``;
    #: the area's other muscles are rescaled to the rest (see :meth:`FaceMap.area_weights`)
    area_share: dict[str, float]


@dataclass(frozen=True)
class ScoreParameters:
    """Facial Wrinkle Scale raters (see :mod:`neuromod.model.scores`): the depths (mm) that
    separate grades 0|1, 1|2 and 2|3 at maximum contraction, and the raters' noise."""

    none_mild_cut_mm: float
    mild_moderate_cut_mm: float
    moderate_severe_cut_mm: float
    rater_sd_mm: float
    shared_noise_fraction: float
    persistent_noise_fraction: float
    onset_strength_drop: float
    onset_least_drop: float

    @property
    def cutpoints_mm(self) -> tuple[float, float, float]:
        """The three cut-points in increasing order (0|1, 1|2, 2|3), mm."""
        return (self.none_mild_cut_mm, self.mild_moderate_cut_mm, self.moderate_severe_cut_mm)


@dataclass(frozen=True)
class CovariateParameters:
    """Covariate effects and the typical patient's defaults (see :mod:`neuromod.model.patient`)."""

    male_half_block_factor: float
    reference_age_years: float
    former_smoker_factor: float
    moderate_sun_factor: float
    default_baseline_contraction: float
    default_baseline_rest: float


@dataclass(frozen=True)
class PopulationParameters:
    """Between-person variability, baseline lines and raters (see :mod:`neuromod.trials.population`).

    ``*_sd`` values are standard deviations of log-normal random effects.
    """

    fraction_female: float
    half_block_sd: float
    light_chain_decay_sd: float
    availability_sd: float
    onset_threshold_sd: float
    danger_dose_sd: float
    static_depth_median_mm: float
    static_depth_age_factor_per_decade: float
    static_depth_sd: float
    dynamic_depth_median_mm: float
    dynamic_depth_sd: float
    subject_sd_mm: float
    subject_depth_bias: float
    subject_global_improvement: float
    expectation_bias: float
    expectation_days: float
    expectation_sd: float


@dataclass(frozen=True)
class AntibodyParameters:
    """Neutralizing antibodies (see :mod:`neuromod.model.antibodies`)."""

    rate_per_treatment: float
    reference_ona_units: float
    dose_exponent: float
    interval_exponent: float
    male_factor: float
    neutralized_fraction: float


@dataclass(frozen=True)
class ModelParameters:
    """The whole parameter set, one sub-set per stage of the flow."""

    version: int
    spread: SpreadParameters
    junction: JunctionParameters
    muscle: MuscleParameters
    skin: SkinParameters
    scores: ScoreParameters
    patient: CovariateParameters
    population: PopulationParameters
    antibodies: AntibodyParameters

    def replace(self, **changes: dict[str, Any]) -> ModelParameters:
        """A copy with some values changed, e.g. ``replace(junction={"hill_coefficient": 3})``."""
        updated = {
            stage: dataclasses.replace(getattr(self, stage), **values)
            for stage, values in changes.items()
        }
        return dataclasses.replace(self, **updated)


_STAGES = {
    "spread": SpreadParameters,
    "junction": JunctionParameters,
    "muscle": MuscleParameters,
    "skin": SkinParameters,
    "scores": ScoreParameters,
    "patient": CovariateParameters,
    "population": PopulationParameters,
    "antibodies": AntibodyParameters,
}


def _value(entry: Any, where: str) -> Any:
    """Unwrap ``{value, unit, source}``; nested mappings of such entries become dicts."""
    if isinstance(entry, dict) and "value" in entry:
        if not str(entry.get("source", "")).strip():
            raise ValueError(f"parameter {where} has no source")
        value = entry["value"]
        return tuple(value) if isinstance(value, list) else value
    if isinstance(entry, dict):
        return {key: _value(sub, f"{where}.{key}") for key, sub in entry.items()}
    raise ValueError(f"parameter {where} must be a mapping with value, unit and source")


def parse_parameters(document: dict[str, Any]) -> ModelParameters:
    """Build a :class:`ModelParameters` from the parsed YAML document, checking every name."""
    stages = {}
    for stage, cls in _STAGES.items():
        raw = document.get(stage)
        if not isinstance(raw, dict):
            raise ValueError(f"parameters: missing section {stage!r}")
        names = {f.name for f in fields(cls)}
        unknown, missing = set(raw) - names, names - set(raw)
        if unknown or missing:
            raise ValueError(
                f"parameters.{stage}: unknown {sorted(unknown)}, missing {sorted(missing)}"
            )
        stages[stage] = cls(**{k: _value(v, f"{stage}.{k}") for k, v in raw.items()})
    return ModelParameters(version=int(document.get("version", 0)), **stages)


def apply_overrides(params: ModelParameters, values: dict[str, Any]) -> ModelParameters:
    """A copy with ``{"stage.name": value}`` overrides applied (names are checked).

    A dict-valued parameter takes one entry at a time as ``"stage.name.key"`` (e.g.
    ``"skin.area_share.zygomaticus_major"``); its other entries are kept."""
    changes: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        stage, _, path = key.partition(".")
        name, _, entry = path.partition(".")
        if stage not in _STAGES or name not in {f.name for f in fields(_STAGES[stage])}:
            raise ValueError(f"override {key!r}: no such parameter")
        current = getattr(getattr(params, stage), name)
        if entry:
            if not isinstance(current, dict) or entry not in current:
                raise ValueError(f"override {key!r}: no such parameter")
            merged = {**current, **changes.get(stage, {}).get(name, {}), entry: value}
            changes.setdefault(stage, {})[name] = merged
        else:
            changes.setdefault(stage, {})[name] = value
    return params.replace(**changes)


def parameter_value(params: ModelParameters, name: str) -> float:
    """The value of one named parameter, ``"stage.name"`` or ``"stage.name.key"`` for one entry
    of a dict-valued parameter (the names :func:`apply_overrides` takes)."""
    stage, _, path = name.partition(".")
    field_name, _, entry = path.partition(".")
    value = getattr(getattr(params, stage), field_name)
    return float(value[entry] if entry else value)


def load_parameters(path: str | Path | None = None) -> ModelParameters:
    """Load a parameter file; without a path, the packaged default set."""
    if path is None:
        return default_parameters()
    return parse_parameters(read_document(path, "parameter file"))


def _packaged(name: str) -> Any:
    return read_data_yaml(name) if data_file_exists(name) else None


def prior_parameters() -> ModelParameters:
    """The packaged parameter set before calibration (``data/parameters.yaml`` alone)."""
    return parse_parameters(_packaged("parameters.yaml"))


#: Keys a ``data/calibrated.yaml`` document may hold (written by ``neuromod calibrate``);
#: ``fitted_on`` only in files written before the fit became reproducible byte for byte.
CALIBRATED_KEYS = {"version", "fitted_on", "method", "objective", "evaluations", "deviance", "log_likelihood",
                   "values", "priors", "uncertainty"}
UNCERTAINTY_KEYS = {"method", "prior_log_sd", "log_sd", "correlation"}


def _calibrated() -> dict[str, Any] | None:
    """The packaged calibration document, its keys checked (ValueError naming an unknown key)."""
    document = _packaged("calibrated.yaml")
    if document is None:
        return None
    unknown = sorted(set(document) - CALIBRATED_KEYS)
    if unknown or not isinstance(document.get("values"), dict):
        raise ValueError(f"calibrated.yaml: unknown key(s) {unknown} or no 'values' mapping; allowed: "
                         f"{', '.join(sorted(CALIBRATED_KEYS))}")
    uncertainty = document.get("uncertainty")
    if uncertainty is not None:
        if not isinstance(uncertainty, dict) or set(uncertainty) != UNCERTAINTY_KEYS:
            raise ValueError(f"calibrated.yaml: uncertainty must hold exactly {', '.join(sorted(UNCERTAINTY_KEYS))}")
        names = list(uncertainty["log_sd"])
        if list(uncertainty["correlation"]) != names or any(
                len(row) != len(names) for row in uncertainty["correlation"].values()):
            raise ValueError("calibrated.yaml: uncertainty.correlation must be a square matrix in the order of log_sd")
        unknown = sorted(set(names) - set(document["values"]))
        if unknown:
            raise ValueError(f"calibrated.yaml: uncertainty of unfitted parameter(s) {', '.join(unknown)}")
    return document


@lru_cache(maxsize=1)
def default_parameters() -> ModelParameters:
    """The packaged parameter set: ``data/parameters.yaml`` with the fitted values of
    ``data/calibrated.yaml`` (written by ``neuromod calibrate``) applied on top."""
    params = prior_parameters()
    calibrated = _calibrated()
    return apply_overrides(params, calibrated["values"]) if calibrated else params


@dataclass(frozen=True)
class ParameterUncertainty:
    """The fit's Laplace approximation (``data/calibrated.yaml``'s ``uncertainty``): the log
    parameters are jointly normal around the fitted values with SDs ``log_sd`` (natural log) and
    correlation matrix ``correlation`` (rows and columns in the order of ``names``)."""

    names: tuple[str, ...]
    log_sd: tuple[float, ...]
    correlation: tuple[tuple[float, ...], ...]
    method: str

    @classmethod
    def from_document(cls, uncertainty: dict[str, Any]) -> "ParameterUncertainty":
        names = tuple(uncertainty["log_sd"])
        return cls(names, tuple(float(uncertainty["log_sd"][n]) for n in names),
                   tuple(tuple(float(c) for c in uncertainty["correlation"][n]) for n in names),
                   str(uncertainty["method"]))


@lru_cache(maxsize=1)
def parameter_uncertainty() -> ParameterUncertainty | None:
    """The packaged fit's parameter uncertainty; None when calibrated.yaml has none (a fit
    written before the likelihood calibration)."""
    calibrated = _calibrated()
    if not calibrated or "uncertainty" not in calibrated:
        return None
    return ParameterUncertainty.from_document(calibrated["uncertainty"])
