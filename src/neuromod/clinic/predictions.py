"""Predictions for stored patients: their covariates and treatment history fill the plan.

The plan document of a stored patient gets ``patient`` from the record (age on the planned
day from the birth date, sex, smoking, sun exposure; baseline FWS from the latest consultation)
and ``treatment_days`` from the history: earlier sessions as days after the first one, the
planned treatment last. The course is then exactly :func:`neuromod.model.simulate.simulate`'s
``to_json()`` over ``treatment day + horizon`` days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from neuromod.clinic.db import Consultation, Patient, TreatmentSession
from neuromod.clinic.deps import invalid
from neuromod.model.simulate import area_landmarks, simulate
from neuromod.reference.parameters import default_parameters
from neuromod.schemas.clinic import age_on
from neuromod.schemas.plan import Plan, PlanError, parse_plan


@dataclass(frozen=True)
class PatientPrediction:
    """A stored patient's plan, its course and when it is predicted to wear off."""

    plan: Plan
    course: dict
    treatment_day: float
    wear_off_after_days: float | None


def latest_consultation(db: Session, patient_id: int, on: datetime | None = None) -> Consultation | None:
    query = select(Consultation).where(Consultation.patient_id == patient_id, Consultation.voided_at.is_(None))
    if on is not None:
        query = query.where(Consultation.held_at <= on)
    return db.execute(query.order_by(Consultation.held_at.desc()).limit(1)).scalar_one_or_none()


def session_days(db: Session, patient_id: int, before: datetime) -> list[date]:
    """Dates of the patient's live sessions before ``before``, oldest first."""
    rows = db.execute(select(TreatmentSession.given_at).where(
        TreatmentSession.patient_id == patient_id, TreatmentSession.voided_at.is_(None),
        TreatmentSession.given_at < before).order_by(TreatmentSession.given_at)).scalars().all()
    return [moment.date() for moment in rows]


def describe(patient: Patient, on: date, consultation: Consultation | None) -> dict:
    """The plan's ``patient`` block for this record (a document for the shared schema)."""
    return {"age": round(age_on(patient.birth_date, on), 2), "sex": patient.sex, "smoking": patient.smoking,
            "sun_exposure": patient.sun_exposure, "baseline": dict(consultation.baseline) if consultation else {}}


def personal_plan(db: Session, patient: Patient, plan: Plan, planned_for: datetime,
                  consultation: Consultation | None = None) -> tuple[Plan, float]:
    """The plan with this patient's covariates and history; also the planned treatment's day."""
    given = plan.model_fields_set
    for name, source in (("patient", "the patient record"), ("treatment_days", "the treatment history"),
                         ("every_days", "the treatment history")):
        if name in given:
            raise invalid(f"plan.{name}: filled from {source}; leave it out")
    consultation = consultation or latest_consultation(db, patient.id, planned_for)
    history = session_days(db, patient.id, planned_for)
    start = history[0] if history else planned_for.date()
    days = [float((d - start).days) for d in history] + [float((planned_for.date() - start).days)]
    document = plan.model_dump(mode="json", exclude_none=True, exclude={"treatment_days", "every_days", "until_day"})
    document["patient"] = describe(patient, planned_for.date(), consultation)
    document["treatment_days"] = days
    try:
        return parse_plan(document), days[-1]
    except PlanError as error:
        raise invalid(f"plan: {error}") from None


def predict_for_patient(db: Session, patient: Patient, plan: Plan, planned_for: datetime, horizon_days: int,
                        consultation: Consultation | None = None) -> PatientPrediction:
    personal, treatment_day = personal_plan(db, patient, plan, planned_for, consultation)
    result = simulate(personal, days=int(treatment_day) + horizon_days)
    start = int(treatment_day)
    scores = (result.params or default_parameters()).scores
    wear_offs = []
    for area in result.treated_areas:
        course = result.courses[area]
        *_, wear_off = area_landmarks(result.days[start:] - result.days[start], course.fws_contraction[start:],
                                      course.strength[start:], scores)
        if wear_off is not None:
            wear_offs.append(wear_off)
    return PatientPrediction(personal, result.to_json(), treatment_day, min(wear_offs) if wear_offs else None)
