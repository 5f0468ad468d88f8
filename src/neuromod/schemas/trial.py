"""The virtual-trial document (``docs/trials.md``): who is enrolled, the arms, the visits.

Pure pydantic, validated once at the edge; the runner in :mod:`neuromod.trials.trial` trusts it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from neuromod.reference.parameters import ModelParameters
from neuromod.schemas.plan import Plan, PlanError, format_validation_error, parse_plan

#: default visit days of a trial file (the pivotal trials' schedule, days).
DEFAULT_FOLLOW_UP = [1, 2, 3, 4, 7, 14, 30, 60, 90, 120, 150, 168, 180, 252]


class PopulationSpec(BaseModel):
    """Who a virtual trial enrols (the ``population`` block of a trial file)."""

    model_config = ConfigDict(extra="forbid")
    sex: Literal["female", "male", "mixed"] = "mixed"
    fraction_female: float | None = Field(default=None, ge=0, le=1, description="for mixed, 0-1 (default 0.87)")
    age: tuple[float, float] = Field(default=(18.0, 75.0), description="[min, max] years, within 18-90")
    baseline: Literal["moderate_or_severe", "any"] = "moderate_or_severe"

    @field_validator("age")
    @classmethod
    def _age_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not (18 <= low <= high <= 90):
            raise ValueError(f"age range must satisfy 18 <= min <= max <= 90, got [{low:g}, {high:g}]")
        return value

    def female_fraction(self, params: ModelParameters) -> float:
        if self.sex != "mixed":
            return 1.0 if self.sex == "female" else 0.0
        return params.population.fraction_female if self.fraction_female is None else self.fraction_female



class TrialError(ValueError):
    """An invalid trial file; the message names the field."""


class ArmSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    product: str
    areas: dict[str, float] = Field(min_length=1, description="units per area, label pattern")
    treatment_days: list[float] = Field(default_factory=lambda: [0.0])


class TrialSpec(BaseModel):
    """A virtual trial file."""

    model_config = ConfigDict(extra="forbid")
    name: str = "virtual trial"
    seed: int = Field(default=0, ge=0)
    subjects_per_arm: int = Field(default=2000, ge=1, le=100_000_000, description="1-1e8")
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    arms: list[ArmSpec] = Field(min_length=1)
    follow_up_days: list[int] = Field(default_factory=lambda: list(DEFAULT_FOLLOW_UP))
    published: list[dict[str, Any]] = Field(
        default_factory=list, description="published results this trial reproduces (documentation only)"
    )

    @field_validator("follow_up_days")
    @classmethod
    def _visits(cls, days: list[int]) -> list[int]:
        if not days or sorted(set(days)) != days or days[0] < 1 or days[-1] > 3650:
            raise ValueError("must be strictly increasing days within 1-3650")
        return days

    @model_validator(mode="after")
    def _arms(self) -> "TrialSpec":
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            raise ValueError("arms: arm names must be unique")
        for i, arm in enumerate(self.arms):
            try:
                arm_plan(arm)
            except PlanError as error:
                raise ValueError(f"arms.{i} ({arm.name}): {error}") from None
        return self


def arm_plan(arm: ArmSpec) -> Plan:
    """The plan an arm gives every subject (validated like any plan)."""
    return parse_plan({"product": arm.product, "areas": arm.areas, "treatment_days": arm.treatment_days})


def parse_trial(document: Any) -> TrialSpec:
    if not isinstance(document, dict):
        raise TrialError("trial: expected a mapping with arms")
    try:
        return TrialSpec.model_validate(document)
    except ValidationError as error:
        raise TrialError(format_validation_error(error)) from None


def load_trial(path: str | Path) -> TrialSpec:
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TrialError(f"trial file: cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise TrialError(f"trial file: malformed YAML in {path}: {error}") from None
    return parse_trial(document)
