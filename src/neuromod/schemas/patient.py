"""Who is treated, as the clinic records them: the patient document shared by plans, trials,
the planner and the clinic API. Pure pydantic; the model turns it into parameters in
:mod:`neuromod.model.patient`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from neuromod.schemas.types import AgeYears, Grade, Text

Sex = Literal["female", "male"]
Smoking = Literal["never", "former", "current"]
SunExposure = Literal["low", "moderate", "high"]


class BaselineScores(BaseModel):
    """Facial Wrinkle Scale grades of one area before treatment (0 none ... 3 severe)."""

    model_config = ConfigDict(extra="forbid")
    rest: Grade = Field(default=1.0, description="FWS grade at rest, 0-3, at most the grade at contraction")
    contraction: Grade = Field(default=2.0, description="FWS grade at maximum contraction, 0-3, at least the grade at rest")

    @model_validator(mode="after")
    def _rest_within_contraction(self) -> "BaselineScores":
        """Lines at rest are what remains when the muscle relaxes: never deeper than at contraction."""
        if self.rest > self.contraction:
            raise ValueError(
                f"rest: the grade at rest ({self.rest:g}) must be <= the grade at contraction ({self.contraction:g})"
            )
        return self


class PatientDescription(BaseModel):
    """A patient as the clinic records them. Defaults: the typical trial patient
    (woman, 45, never smoked, moderate sun, moderate-to-severe lines)."""

    model_config = ConfigDict(extra="forbid")
    age: AgeYears = Field(default=45, description="years, 18-90")
    sex: Sex = "female"
    smoking: Smoking = "never"
    sun_exposure: SunExposure = "moderate"
    baseline: dict[Text, BaselineScores] = Field(
        default_factory=dict, description="FWS grades per area; unlisted areas use the defaults"
    )
