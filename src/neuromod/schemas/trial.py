"""The virtual-trial document (``docs/trials.md``): who is enrolled, the arms, the visits.

Pure pydantic, validated once at the edge; the runner in :mod:`neuromod.trials.trial` trusts it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from neuromod.reference.files import DocumentError, read_document
from neuromod.reference.parameters import ModelParameters
from neuromod.schemas.plan import Plan, PlanError, format_validation_error, parse_plan
from neuromod.schemas.types import (
    LIMITS,
    AgeYears,
    Day,
    Fraction,
    Text,
    Units,
    VisitDay,
    WholeNumber,
    field_path,
)

TRIAL_LIMITS = LIMITS.trial

#: default visit days of a trial file (the pivotal trials' schedule, days).
DEFAULT_FOLLOW_UP = [1, 2, 3, 4, 7, 14, 30, 60, 90, 120, 150, 168, 180, 252]


class PopulationSpec(BaseModel):
    """Who a virtual trial enrols (the ``population`` block of a trial file)."""

    model_config = ConfigDict(extra="forbid")
    sex: Literal["female", "male", "mixed"] = "mixed"
    fraction_female: Fraction | None = Field(default=None, description="for mixed, 0-1 (default 0.87)")
    age: tuple[AgeYears, AgeYears] = Field(default=(18.0, 75.0), description="[min, max] years, within 18-90")
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
    """One arm: every subject gets the same plan (validated like any plan)."""

    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=100, description="unique arm name, 1-100 characters")
    product: Text = Field(description="a product name (see `neuromod products`)")
    areas: dict[Text, Units] = Field(min_length=1, description="units per area in the label pattern (ranges as in a plan)")
    treatment_days: list[Day] = Field(
        default_factory=lambda: [0.0], min_length=1, max_length=LIMITS.plan.max_treatments,
        description=f"days 0-{LIMITS.plan.max_treatment_day:g}, first 0, at most {LIMITS.plan.max_treatments}, "
                    "spaced by at least the label interval")


class TrialSpec(BaseModel):
    """A virtual trial file."""

    model_config = ConfigDict(extra="forbid")
    name: Text = Field(default="virtual trial", max_length=200, description="1-200 characters")
    seed: WholeNumber = Field(default=0, ge=0, le=TRIAL_LIMITS.max_seed,
                              description=f"a whole number, 0-{TRIAL_LIMITS.max_seed}")
    subjects_per_arm: WholeNumber = Field(
        default=2000, ge=1, le=TRIAL_LIMITS.max_subjects_per_arm,
        description=f"a whole number, 1-{TRIAL_LIMITS.max_subjects_per_arm:,}")
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    arms: list[ArmSpec] = Field(min_length=1, max_length=TRIAL_LIMITS.max_arms,
                                description=f"1-{TRIAL_LIMITS.max_arms} arms")
    follow_up_days: list[VisitDay] = Field(
        default_factory=lambda: list(DEFAULT_FOLLOW_UP), min_length=1, max_length=TRIAL_LIMITS.max_follow_up_visits,
        description=f"strictly increasing whole days, 1-{TRIAL_LIMITS.max_follow_up_day}, "
                    f"at most {TRIAL_LIMITS.max_follow_up_visits} visits")
    published: list[dict[str, Any]] = Field(
        default_factory=list, description="published results this trial reproduces (documentation only)"
    )

    @field_validator("follow_up_days")
    @classmethod
    def _visits(cls, days: list[int]) -> list[int]:
        if sorted(set(days)) != days:
            raise ValueError(
                f"must be strictly increasing whole days within 1-{TRIAL_LIMITS.max_follow_up_day}, got {days[:10]}"
            )
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
                raise ValueError(f"arms.{i} ({field_path(arm.name)}): {error}") from None
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
        raise TrialError(format_validation_error(error, TrialSpec)) from None


def load_trial(path: str | Path) -> TrialSpec:
    """Read a trial file strictly (:func:`neuromod.reference.files.read_document`) and validate it."""
    try:
        document = read_document(path, "trial file")
    except DocumentError as error:
        raise TrialError(str(error)) from None
    return parse_trial(document)


def with_subjects(spec: TrialSpec, subjects: Any, field: str = "subjects_per_arm") -> TrialSpec:
    """``spec`` with ``subjects_per_arm`` replaced, validated by the same schema as the file
    (so ``--subjects`` obeys the file's cap); errors name ``field``."""
    try:
        return TrialSpec.model_validate({**spec.model_dump(), "subjects_per_arm": subjects})
    except ValidationError as error:
        message = format_validation_error(error, TrialSpec)
        raise TrialError(message.replace("subjects_per_arm:", f"{field}:", 1)) from None
