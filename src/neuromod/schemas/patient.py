"""Who is treated, as the clinic records them: the patient document shared by plans, trials,
the planner and the clinic API. Pure pydantic; the model turns it into parameters in
:mod:`neuromod.model.patient`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Sex = Literal["female", "male"]
Smoking = Literal["never", "former", "current"]
SunExposure = Literal["low", "moderate", "high"]


class BaselineScores(BaseModel):
    """Facial Wrinkle Scale grades of one area before treatment (0 none ... 3 severe)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    rest: float = Field(default=1.0, ge=0, le=3, description="FWS grade at rest, 0-3")
    contraction: float = Field(default=2.5, ge=0, le=3, description="FWS grade at maximum contraction, 0-3")


class PatientDescription(BaseModel):
    """A patient as the clinic records them. Defaults: the typical trial patient
    (woman, 45, never smoked, moderate sun, moderate-to-severe lines)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    age: float = Field(default=45, ge=18, le=90, description="years, 18-90")
    sex: Sex = "female"
    smoking: Smoking = "never"
    sun_exposure: SunExposure = "moderate"
    baseline: dict[str, BaselineScores] = Field(
        default_factory=dict, description="FWS grades per area; unlisted areas use the defaults"
    )
