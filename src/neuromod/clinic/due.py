"""The re-treatment due list.

For every live patient the last live session sets the next re-treatment date, from the best
source there is (``source`` in each item):

- ``personal``: the patient has follow-ups: the personal prediction's re-treatment day
  (:mod:`neuromod.clinic.personal`: the population model conditioned on their own grades; the
  earliest treated area's median wear-off, never sooner than the label interval), counted from
  the first session; cached per record, so only a changed record pays the posterior again;
- ``population``: no follow-ups (or no personal wear-off within the horizon): the session day
  plus the predicted wear-off of that session's plan (``PlanRecord.wear_off_after_days``: the
  earliest treated area losing half its best improvement, for this patient and history), but
  never sooner than the product's label interval;
- ``label interval``: without a plan or a predicted wear-off, the label interval alone.

Open reminders due before the date are listed too (``source``: ``reminder``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neuromod.clinic.db import FollowUp, Patient, PlanRecord, Reminder, TreatmentSession
from neuromod.clinic.deps import ClinicError
from neuromod.clinic.personal import personal_retreat
from neuromod.reference.products import load_products


@dataclass(frozen=True)
class DueItem:
    """One patient to contact: when and where the date came from (``source``: personal,
    population, label interval, reminder)."""

    patient_id: int
    name: str
    phone: str | None
    email: str | None
    due_on: str
    source: str
    last_session_id: int | None = None
    reminder_id: int | None = None

    def as_json(self) -> dict:
        return asdict(self)


def personal_due(db: Session, patient: Patient) -> tuple[date, str] | None:
    """The personal re-treatment date, or None (no re-treatment day within the horizon, or a
    record that is no valid history: then the population's date stands)."""
    try:
        retreat = personal_retreat(db, patient)
    except ClinicError:
        return None
    if retreat.retreat_day is None:
        return None
    return date.fromisoformat(retreat.first_session_date) + timedelta(days=round(retreat.retreat_day)), "personal"


def population_due(session: TreatmentSession, plan: PlanRecord | None, label_days: float) -> tuple[date, str]:
    """The session day plus its plan's predicted wear-off, never sooner than the label interval."""
    predicted = plan.wear_off_after_days if plan is not None else None
    days, source = ((predicted, "population") if predicted is not None and predicted >= label_days
                    else (label_days, "label interval"))
    return session.given_at.date() + timedelta(days=round(days)), source


def due_list(db: Session, before: date) -> list[DueItem]:
    products = load_products()
    last = (select(TreatmentSession.patient_id, func.max(TreatmentSession.given_at).label("given_at"))
            .where(TreatmentSession.voided_at.is_(None)).group_by(TreatmentSession.patient_id).subquery())
    rows = db.execute(
        select(Patient, TreatmentSession, PlanRecord)
        .join(last, last.c.patient_id == Patient.id)
        .join(TreatmentSession, (TreatmentSession.patient_id == Patient.id)
              & (TreatmentSession.given_at == last.c.given_at) & TreatmentSession.voided_at.is_(None))
        .outerjoin(PlanRecord, (PlanRecord.id == TreatmentSession.plan_id) & PlanRecord.voided_at.is_(None))
        .where(Patient.voided_at.is_(None))).all()
    followed = set(db.execute(  # live follow-ups of live sessions: what the personal prediction conditions on
        select(FollowUp.patient_id).join(TreatmentSession, TreatmentSession.id == FollowUp.session_id)
        .where(FollowUp.voided_at.is_(None), TreatmentSession.voided_at.is_(None)).distinct()).scalars())
    items = []
    for patient, session, plan in rows:
        due_on, source = (personal_due(db, patient) if patient.id in followed else None) or \
            population_due(session, plan, products[session.product].min_retreat_days)
        if due_on < before:
            items.append(DueItem(patient.id, f"{patient.given_name} {patient.family_name}", patient.phone,
                                 patient.email, due_on.isoformat(), source, last_session_id=session.id))
    reminders = db.execute(select(Reminder, Patient).join(Patient, Patient.id == Reminder.patient_id).where(
        Reminder.voided_at.is_(None), Reminder.done.is_(False), Reminder.due_on < before,
        Patient.voided_at.is_(None))).all()
    for reminder, patient in reminders:
        items.append(DueItem(patient.id, f"{patient.given_name} {patient.family_name}", patient.phone,
                             patient.email, reminder.due_on.isoformat(), "reminder", reminder_id=reminder.id))
    return sorted(items, key=lambda item: (item.due_on, item.patient_id))
