"""The documented input limits (``data/plan_limits.yaml``): every plan, schedule, trial and
command-line range, each with its source. The schemas read their bounds from here, so the
numbers live in one versioned data file and not in code."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from neuromod.reference.files import DocumentError, read_data_yaml


@dataclass(frozen=True)
class PlanLimits:
    """Bounds of a plan document (units per point, volume, schedule, injection count)."""

    max_ona_units_per_site: float
    max_volume_per_site_ml: float
    dilution_tolerance: float
    min_saline_ml: float
    max_saline_ml: float
    max_vial_units: float
    max_injections: int
    max_treatments: int
    min_every_days: float
    max_treatment_day: float
    max_depth_mm: float
    max_face_coordinate_mm: float


@dataclass(frozen=True)
class SimulationLimits:
    max_days: int


@dataclass(frozen=True)
class ProjectionLimits:
    max_years: int


@dataclass(frozen=True)
class TrialLimits:
    """Bounds of a trial document and of the trial command's options."""

    max_subjects_per_arm: int
    max_arms: int
    max_follow_up_day: int
    max_follow_up_visits: int
    max_seed: int
    max_local_workers: int
    dask_connect_timeout_s: float
    max_parameter_draws: int


@dataclass(frozen=True)
class Limits:
    plan: PlanLimits
    simulation: SimulationLimits
    projection: ProjectionLimits
    trial: TrialLimits


_SECTIONS = {"plan": PlanLimits, "simulation": SimulationLimits, "projection": ProjectionLimits,
             "trial": TrialLimits}


def _section(document: dict[str, Any], name: str, cls: type) -> Any:
    raw = document.get(name)
    source = f"data file: plan_limits.yaml: {name}"
    if not isinstance(raw, dict):
        raise DocumentError(f"{source}: missing section")
    expected = {f.name: f for f in fields(cls)}
    if set(raw) != set(expected):
        raise DocumentError(f"{source}: expected exactly {', '.join(expected)}, got {', '.join(raw)}")
    values = {}
    for key, field in expected.items():
        entry = raw[key]
        if not isinstance(entry, dict) or not entry.get("source") or "value" not in entry:
            raise DocumentError(f"{source}.{key}: needs a value and a source")
        value = entry["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DocumentError(f"{source}.{key}: value must be a number, got {value!r}")
        if field.type == "int":
            if value != int(value):
                raise DocumentError(f"{source}.{key}: value must be a whole number, got {value!r}")
            value = int(value)
        values[key] = value if field.type == "int" else float(value)
    return cls(**values)


@lru_cache(maxsize=1)
def load_limits() -> Limits:
    """The packaged limits (read once)."""
    document = read_data_yaml("plan_limits.yaml")
    if not isinstance(document, dict):
        raise DocumentError("data file plan_limits.yaml: expected a mapping")
    return Limits(**{name: _section(document, name, cls) for name, cls in _SECTIONS.items()})


def limit_sources() -> dict[str, str]:
    """``{"section.name": source}`` for every limit (for documentation and tests)."""
    document = read_data_yaml("plan_limits.yaml")
    return {f"{section}.{key}": entry["source"] for section in _SECTIONS for key, entry in document[section].items()}
