"""The clinic's documents: one definition each, shared by the clinic's storage and its API.

Request bodies of :mod:`neuromod.clinic` are these models; the plan is the shared
:class:`neuromod.schemas.plan.Plan` and the injections of a treatment session are the plan's
own :class:`~neuromod.schemas.plan.Injection` (so a session is checked by the same rules, with
the same messages, as a plan file on the command line). Patient covariates reuse the types of
:mod:`neuromod.schemas.patient`.

Every body forbids unknown fields, NaN and infinities, and bounds its strings and numbers, so
a bad body is refused at the door (HTTP 422 naming the field) before anything is written.
Times are timezone-aware (UTC when no zone is given); units are product units.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from neuromod.schemas.patient import BaselineScores, Sex, Smoking, SunExposure
from neuromod.schemas.plan import Injection, Plan
from neuromod.schemas.types import FiniteFloat, Grade, Text, WholeNumber

Role = Literal["admin", "injector", "front_desk"]
ConsentKind = Literal["treatment", "photo"]
ReminderKind = Literal["retreatment", "follow_up", "appointment"]
AdverseEventKind = Literal["eyelid_ptosis", "brow_ptosis", "asymmetry", "headache", "bruising", "other"]
Severity = Literal["mild", "moderate", "severe"]

#: youngest age the clinic registers (years): the cosmetic labels cover adults only.
MIN_PATIENT_AGE_YEARS = 18
#: assumption: oldest plausible age (years) of a living patient, to catch typing errors in birth dates.
MAX_PATIENT_AGE_YEARS = 120
#: largest record id (the 32-bit integer keys of the database).
MAX_RECORD_ID = 2**31 - 1
#: longest free-text note (characters); keeps rows and audit entries bounded.
MAX_NOTE_CHARS = 4000


class Body(BaseModel):
    """Base of every clinic document: unknown fields, NaN and infinities are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


def aware(moment: datetime) -> datetime:
    """``moment`` with a time zone (UTC when none was given), converted to UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def age_on(birth_date: date, day: date) -> float:
    """Age in years (fractional) on ``day``."""
    return (day - birth_date).days / 365.25


class Changes(Body):
    """A partial update: fields left out keep their value; ``null`` only clears the fields in
    ``clearable`` (the others are required columns)."""

    clearable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> "Changes":
        for name in sorted(self.model_fields_set):
            if getattr(self, name) is None and name not in self.clearable:
                raise ValueError(f"{name}: may not be null; leave it out to keep the current value")
        return self


class AwareTimes(Body):
    """Normalises every datetime field to UTC."""

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: object) -> object:
        return aware(value) if isinstance(value, datetime) else value


# -- accounts ---------------------------------------------------------------------------
class SignIn(Body):
    username: Text = Field(min_length=1, max_length=64)
    password: Text = Field(min_length=1, max_length=256)


class AccountCreate(Body):
    """A staff account. Passwords: 12-256 characters (stored only as an argon2 hash)."""

    username: Text = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9_.-]+$",
                          description="3-64 characters: lower-case letters, digits, _ . -")
    full_name: Text = Field(min_length=1, max_length=200)
    role: Role
    password: Text = Field(min_length=12, max_length=256, description="12-256 characters")


class AccountUpdate(Changes):
    full_name: Text | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    disabled: bool | None = None
    password: Text | None = Field(default=None, min_length=12, max_length=256)


# -- patients ---------------------------------------------------------------------------
class ContactDetails(Body):
    phone: Text | None = Field(default=None, max_length=40)
    email: Text | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    address: Text | None = Field(default=None, max_length=500)


class PatientFields(ContactDetails):
    """What the model needs (birth date, sex, smoking, sun exposure) and how to reach the patient."""

    given_name: Text = Field(min_length=1, max_length=100)
    family_name: Text = Field(min_length=1, max_length=100)
    birth_date: date
    sex: Sex
    smoking: Smoking = "never"
    sun_exposure: SunExposure = "moderate"

    @field_validator("birth_date")
    @classmethod
    def _adult(cls, value: date | None) -> date | None:
        if value is None:
            return value
        age = age_on(value, date.today())
        if not MIN_PATIENT_AGE_YEARS <= age <= MAX_PATIENT_AGE_YEARS:
            raise ValueError(f"age must be {MIN_PATIENT_AGE_YEARS}-{MAX_PATIENT_AGE_YEARS} years today, "
                             f"got {age:.1f} (birth date {value.isoformat()})")
        return value


class PatientUpdate(ContactDetails, Changes):
    """Fields to change; those left out keep their value (contact details may be cleared with null)."""

    clearable: ClassVar[frozenset[str]] = frozenset({"phone", "email", "address"})

    given_name: Text | None = Field(default=None, min_length=1, max_length=100)
    family_name: Text | None = Field(default=None, min_length=1, max_length=100)
    birth_date: date | None = None
    sex: Sex | None = None
    smoking: Smoking | None = None
    sun_exposure: SunExposure | None = None

    _adult = field_validator("birth_date")(PatientFields._adult.__func__)


class Void(Body):
    """Soft delete: the record stays, marked void with the reason."""

    reason: Text = Field(min_length=3, max_length=500)


# -- clinical ---------------------------------------------------------------------------
class ConsentFields(AwareTimes):
    """A signed consent of one kind and version of the consent text."""

    kind: ConsentKind
    version: Text = Field(min_length=1, max_length=40, description="version of the consent text signed")
    granted: bool = True
    signed_at: datetime


class ConsultationFields(AwareTimes):
    """The patient's concerns and the baseline lines per area (FWS 0-3 at rest and at contraction)."""

    held_at: datetime
    concerns: Text = Field(default="", max_length=MAX_NOTE_CHARS)
    baseline: dict[str, BaselineScores] = Field(default_factory=dict, max_length=20,
                                                description="FWS grades per face-map area")
    notes: Text = Field(default="", max_length=MAX_NOTE_CHARS)


class PlanSave(AwareTimes):
    """A plan for a stored patient. ``plan.patient`` is filled from the record (covariates, the
    latest consultation's baseline), and its schedule from the treatment history, so leave both out."""

    plan: Plan
    consultation_id: WholeNumber | None = Field(default=None, ge=1, le=MAX_RECORD_ID)
    planned_for: datetime | None = Field(default=None, description="when the treatment is planned (default now)")
    days: WholeNumber = Field(default=180, ge=30, le=730, description="days predicted after the planned treatment, 30-730")
    notes: Text = Field(default="", max_length=MAX_NOTE_CHARS)


class LotFields(AwareTimes):
    """Stock of one product lot: vials of ``vial_units``; reconstitution as done (if done)."""

    product: Text = Field(min_length=1, max_length=40)
    lot_number: Text = Field(min_length=1, max_length=60)
    expires_on: date
    vials: WholeNumber = Field(default=1, ge=1, le=1000, description="vials received, 1-1000")
    vial_units: FiniteFloat = Field(gt=0, le=1000, description="units per vial, (0, 1000]")
    reconstituted_at: datetime | None = None
    saline_ml: FiniteFloat | None = Field(default=None, gt=0, le=10, description="mL saline per vial, (0, 10]")


class LotUpdate(Changes, AwareTimes):
    """Reconstitution of a lot recorded later (when, and mL saline per vial)."""

    reconstituted_at: datetime | None = None
    saline_ml: FiniteFloat | None = Field(default=None, gt=0, le=10, description="mL saline per vial, (0, 10]")


class SessionFields(AwareTimes):
    """A treatment as given: product, lot, time, injector and the injections (the plan's own
    injection type: a standard site or x/y mm, depth, units or volume)."""

    product: Text = Field(min_length=1, max_length=40)
    lot_id: WholeNumber = Field(ge=1, le=MAX_RECORD_ID)
    given_at: datetime
    injections: list[Injection] = Field(min_length=1, max_length=100)
    plan_id: WholeNumber | None = Field(default=None, ge=1, le=MAX_RECORD_ID)
    injector_id: WholeNumber | None = Field(default=None, ge=1, le=MAX_RECORD_ID, description="default: the signed-in account")
    notes: Text = Field(default="", max_length=MAX_NOTE_CHARS)


class AreaScores(BaseModel):
    """Observed FWS grades of one area at a follow-up (both required). Unlike a baseline, the two
    grades are rated independently, so rater noise may put rest above contraction; both are kept."""

    model_config = ConfigDict(extra="forbid")
    rest: Grade = Field(description="FWS grade at rest, 0-3")
    contraction: Grade = Field(description="FWS grade at maximum contraction, 0-3")


class AdverseEvent(Body):
    kind: AdverseEventKind
    severity: Severity = "mild"
    onset_day: FiniteFloat | None = Field(default=None, ge=0, le=365, description="days after the session, 0-365")
    notes: Text = Field(default="", max_length=1000)


class FollowUpFields(AwareTimes):
    """What was seen at a follow-up of one session."""

    session_id: WholeNumber = Field(ge=1, le=MAX_RECORD_ID)
    seen_at: datetime
    observed: dict[str, AreaScores] = Field(default_factory=dict, max_length=20)
    adverse_events: list[AdverseEvent] = Field(default_factory=list, max_length=20)
    patient_reported_onset_day: FiniteFloat | None = Field(default=None, ge=0, le=60,
                                                     description="days to first effect as the patient felt it, 0-60")
    rated_by_id: WholeNumber | None = Field(default=None, ge=1, le=MAX_RECORD_ID, description="default: the signed-in account")
    notes: Text = Field(default="", max_length=MAX_NOTE_CHARS)


class ReminderFields(Body):
    kind: ReminderKind
    due_on: date
    note: Text = Field(default="", max_length=1000)


class ReminderUpdate(Changes):
    done: bool | None = None
    due_on: date | None = None
    note: Text | None = Field(default=None, max_length=1000)
