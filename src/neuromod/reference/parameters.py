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


@dataclass(frozen=True)
class ScoreParameters:
    """Facial Wrinkle Scale raters (see :mod:`neuromod.model.scores`)."""

    cutpoints_mm: tuple[float, float, float]
    rater_sd_mm: float
    shared_noise_fraction: float
    onset_strength_drop: float


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
    """A copy with ``{"stage.name": value}`` overrides applied (names are checked)."""
    changes: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        stage, _, name = key.partition(".")
        if stage not in _STAGES or name not in {f.name for f in fields(_STAGES[stage])}:
            raise ValueError(f"override {key!r}: no such parameter")
        changes.setdefault(stage, {})[name] = value
    return params.replace(**changes)


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


@lru_cache(maxsize=1)
def default_parameters() -> ModelParameters:
    """The packaged parameter set: ``data/parameters.yaml`` with the fitted values of
    ``data/calibrated.yaml`` (written by ``neuromod calibrate``) applied on top."""
    params = prior_parameters()
    calibrated = _packaged("calibrated.yaml")
    return apply_overrides(params, calibrated["values"]) if calibrated else params
