"""A patient's treatment history: who, what was injected when, and what was seen at follow-ups.

The input of personal predictions (:mod:`neuromod.trials.personal`, ``neuromod personalize``)
and a shared document other tools write, so its shape is fixed (``docs/personal.md``)::

    patient: {age: 52, sex: female, baseline: {glabella: {rest: 1, contraction: 3}}}
    treatments:                     # days counted from the first treatment
      - {day: 0, plan: {product: botox, areas: {glabella: 20}}}
      - {day: 130, plan: {product: botox, areas: {glabella: 20}}}
    observations:                   # grades as rated; rater: investigator (default) or self
      - {day: 14, area: glabella, fws_contraction: 0, fws_rest: 0}
      - {day: 110, area: glabella, fws_contraction: 2, rater: self}
      - {day: 3, onset_noticed: true}

Each treatment's ``plan`` is any plan the CLI accepts (:class:`neuromod.schemas.plan.Plan`:
areas shorthand, named sites or x/y points, dilution) for one session; the patient is given
once, at the top. Treatments and observations give either ``day`` (whole days from the first
treatment, which is day 0) or ``date`` (ISO dates; then every entry uses dates). Everything is
checked here; errors name the field and the allowed range, like plan errors.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from neuromod.reference.anatomy import load_face_map
from neuromod.reference.files import DocumentError, read_document
from neuromod.reference.limits import load_limits
from neuromod.schemas.patient import PatientDescription
from neuromod.schemas.plan import (
    MAX_TREATMENT_DAY,
    Plan,
    PlanError,
    format_validation_error,
    parse_plan,
)

#: assumption: ten years of monthly follow-ups in every area is ~1,000 findings; the cap bounds
#: the likelihood's cost (one term per finding per virtual twin).
MAX_OBSERVATIONS = 1000

Rater = Literal["investigator", "self"]
#: latest day a history may reach (days from the first treatment): the plans' ten-year limit.
MAX_HISTORY_DAY = MAX_TREATMENT_DAY
#: plan keys that describe a schedule or a patient; in a history each treatment is one session
#: and the patient is given once.
SESSION_ONLY_KEYS = ("patient", "treatment_days", "every_days", "until_day")


class HistoryError(PlanError):
    """An invalid history; the message names each problem's field and the allowed range."""


def _whole_day(value: Any) -> Any:
    if value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        raise ValueError(f"must be a whole number of days 0-{MAX_HISTORY_DAY}, got {value!r}")
    if value < 0:
        raise ValueError(f"day {value} is before the first treatment (day 0); baseline grades go in patient.baseline")
    if value > MAX_HISTORY_DAY:
        raise ValueError(f"must be a whole number of days 0-{MAX_HISTORY_DAY} from the first treatment, got {value!r}")
    return int(value)


class TreatmentEntry(BaseModel):
    """One treatment session as written: ``day`` or ``date``, and the session's plan."""

    model_config = ConfigDict(extra="forbid")
    day: int | None = Field(default=None, description="whole days from the first treatment (day 0)")
    date: datetime.date | None = Field(default=None, description="ISO date, instead of day")
    plan: dict[str, Any] = Field(description="a plan the CLI accepts, for this one session")

    _day = field_validator("day", mode="before")(_whole_day)


class Observation(BaseModel):
    """One follow-up finding: FWS grades of an area as one rater saw them, and/or whether the
    patient had noticed an effect by that day (since the latest treatment)."""

    model_config = ConfigDict(extra="forbid")
    day: int | None = Field(default=None, description="whole days from the first treatment")
    date: datetime.date | None = Field(default=None, description="ISO date, instead of day")
    area: str | None = Field(default=None, description="face-map area the grades are of")
    fws_contraction: int | None = Field(default=None, description="FWS grade at maximum contraction, 0-3")
    fws_rest: int | None = Field(default=None, description="FWS grade at rest, 0-3")
    rater: Rater = Field(default="investigator", description="investigator (default) or self")
    onset_noticed: bool | None = Field(default=None, description="the patient had noticed an effect by this day")

    _day = field_validator("day", mode="before")(_whole_day)

    @field_validator("fws_contraction", "fws_rest", mode="before")
    @classmethod
    def _grade(cls, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value) \
                or not 0 <= value <= 3:
            raise ValueError(f"must be an integer FWS grade 0-3 (0 none, 1 mild, 2 moderate, 3 severe), got {value!r}")
        return int(value)


class HistoryDocument(BaseModel):
    """The history as written (see the module docstring); :func:`parse_history` resolves it."""

    model_config = ConfigDict(extra="forbid")
    patient: PatientDescription = Field(default_factory=PatientDescription)
    treatments: list[TreatmentEntry] = Field(
        min_length=1, max_length=load_limits().plan.max_treatments,
        description="treatment sessions, in order; the first is day 0")
    observations: list[Observation] = Field(
        default_factory=list, max_length=MAX_OBSERVATIONS,
        description="follow-up findings (bounded: each costs a likelihood term per twin)")


@dataclass(frozen=True)
class Treatment:
    """A resolved treatment session: day (from the first treatment) and its validated plan."""

    day: int
    plan: Plan


@dataclass(frozen=True)
class History:
    """A validated history, every entry on the day axis (days from the first treatment).

    ``first_date``: the first treatment's date when the document used dates (None otherwise).
    """

    patient: PatientDescription
    treatments: list[Treatment]
    observations: list[Observation]
    first_date: datetime.date | None = None

    @property
    def treatment_days(self) -> list[int]:
        return [t.day for t in self.treatments]

    @property
    def last_day(self) -> int:
        """The latest day the history mentions (treatment or observation)."""
        return max([self.treatments[-1].day] + [int(o.day) for o in self.observations])


def _resolve_days(document: HistoryDocument) -> tuple[list[int], list[int], datetime.date | None]:
    """Every entry's day from the first treatment; one clean error for mixed or missing forms."""
    problems: list[str] = []
    uses_dates = document.treatments[0].date is not None
    form, other = ("date", "day") if uses_dates else ("day", "date")
    entries = [(f"treatments.{i}", t) for i, t in enumerate(document.treatments)]
    entries += [(f"observations.{i}", o) for i, o in enumerate(document.observations)]
    for where, entry in entries:
        if entry.day is not None and entry.date is not None:
            problems.append(f"{where}: give day or date, not both")
        elif getattr(entry, form) is None:
            if getattr(entry, other) is not None:
                problems.append(f"{where}.{other}: the first treatment gives a {form}; give every entry as a {form} "
                                "(do not mix day and date)")
            else:
                problems.append(f"{where}.{form}: required (days from the first treatment, or ISO dates)")
    if problems:
        raise HistoryError("; ".join(problems))
    if not uses_dates:
        return ([t.day for t in document.treatments], [o.day for o in document.observations], None)
    first = document.treatments[0].date
    days = [(t.date - first).days for t in document.treatments] + [(o.date - first).days for o in document.observations]
    too_late = [(where, d) for (where, _), d in zip(entries, days) if d > MAX_HISTORY_DAY]
    if too_late:
        where, d = too_late[0]
        raise HistoryError(f"{where}.date: {d} days after the first treatment; a history spans at most "
                           f"{MAX_HISTORY_DAY} days (10 years)")
    n = len(document.treatments)
    return days[:n], days[n:], first


def _treatment_problems(days: list[int], plans: list[Plan], form: str, first_date: datetime.date | None) -> list[str]:
    def show(day: int) -> str:
        return str(first_date + datetime.timedelta(days=day)) if first_date else f"day {day}"

    problems = []
    if days[0] != 0 and form == "day":
        problems.append(f"treatments.0.day: the first treatment is day 0 (days are counted from it), got {days[0]}")
    for i in range(1, len(days)):
        gap = days[i] - days[i - 1]
        label = max(plans[i - 1].product_info.min_retreat_days, plans[i].product_info.min_retreat_days)
        if gap < label:
            problems.append(f"treatments.{i}.{form}: {show(days[i])} comes {gap} days after {show(days[i - 1])}; "
                            f"label: repeat no sooner than {label:g} days (treatments in order)")
    return problems


def _observation_problems(document: HistoryDocument, days: list[int], form: str,
                          first_date: datetime.date | None) -> list[str]:
    areas = load_face_map().areas
    problems = []
    for i, (obs, day) in enumerate(zip(document.observations, days)):
        where = f"observations.{i}"
        if day < 0:
            when = f"{obs.date} is before the first treatment ({first_date})" if first_date else \
                f"day {day} is before the first treatment (day 0)"
            problems.append(f"{where}.{form}: {when}; baseline grades go in patient.baseline")
        graded = obs.fws_contraction is not None or obs.fws_rest is not None
        if not graded and obs.onset_noticed is None:
            problems.append(f"{where}: give fws_contraction and/or fws_rest (with area), or onset_noticed")
        if obs.area is not None and obs.area not in areas:
            problems.append(f"{where}.area: unknown area {obs.area!r}; allowed: {', '.join(areas)}")
        elif obs.area is None and graded:
            problems.append(f"{where}.area: required with grades; allowed: {', '.join(areas)}")
    return problems


def parse_history(document: Any) -> History:
    """Validate a parsed history document (a mapping) into a :class:`History` or raise
    :class:`HistoryError` naming each bad field."""
    if not isinstance(document, dict):
        raise HistoryError("history: expected a mapping with patient, treatments and observations")
    try:
        raw = HistoryDocument.model_validate(document)
    except ValidationError as error:
        raise HistoryError(format_validation_error(error)) from None
    if not raw.treatments:
        raise HistoryError("treatments: give at least one treatment (the first is day 0)")
    areas = load_face_map().areas
    unknown = [a for a in raw.patient.baseline if a not in areas]
    if unknown:
        raise HistoryError(f"patient.baseline.{unknown[0]}: unknown area; allowed: {', '.join(areas)}")
    plans: list[Plan] = []
    problems: list[str] = []
    for i, entry in enumerate(raw.treatments):
        extra = [k for k in SESSION_ONLY_KEYS if k in entry.plan]
        if extra:
            problems.append(f"treatments.{i}.plan.{extra[0]}: a history treatment is one session of one patient; "
                            "give the patient once at the top and each session as its own treatment")
            continue
        try:
            plans.append(parse_plan({**entry.plan, "patient": raw.patient.model_dump()}))
        except PlanError as error:
            problems.append(f"treatments.{i}.plan: {error}")
    if problems:
        raise HistoryError("; ".join(problems))
    treatment_days, observation_days, first_date = _resolve_days(raw)
    form = "date" if first_date else "day"
    problems = _treatment_problems(treatment_days, plans, form, first_date)
    problems += _observation_problems(raw, observation_days, form, first_date)
    if problems:
        raise HistoryError("; ".join(problems))
    observations = [obs.model_copy(update={"day": day}) for obs, day in zip(raw.observations, observation_days)]
    return History(
        patient=raw.patient,
        treatments=[Treatment(day, plan) for day, plan in zip(treatment_days, plans)],
        observations=sorted(observations, key=lambda o: o.day),
        first_date=first_date,
    )


def load_history(path: str | Path) -> History:
    """Read a YAML or JSON history file strictly (the plans' reader) and validate it."""
    try:
        document = read_document(path, "history file")
    except DocumentError as error:
        raise HistoryError(str(error)) from None
    return parse_history(document)
