"""The re-treatment due list.

For every live patient the last live session sets the next re-treatment date: the session day
plus the predicted wear-off of that session's plan (``PlanRecord.wear_off_after_days``: the
earliest treated area losing half its best improvement, for this patient and history), but
never sooner than the product's label interval; without a plan or a predicted wear-off, the
label interval alone. Open reminders due before the date are listed too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neuromod.clinic.db import Patient, PlanRecord, Reminder, TreatmentSession
from neuromod.reference.products import load_products


@dataclass(frozen=True)
class DueItem:
    """One patient to contact: when and why (``basis``: predicted_wear_off, label_interval, reminder)."""

    patient_id: int
    name: str
    phone: str | None
    email: str | None
    due_on: str
    basis: str
    last_session_id: int | None = None
    reminder_id: int | None = None

    def as_json(self) -> dict:
        return asdict(self)


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
    items = []
    for patient, session, plan in rows:
        label_days = products[session.product].min_retreat_days
        predicted = plan.wear_off_after_days if plan is not None else None
        days, basis = ((predicted, "predicted_wear_off") if predicted is not None and predicted >= label_days
                       else (label_days, "label_interval"))
        due_on = session.given_at.date() + timedelta(days=round(days))
        if due_on < before:
            items.append(DueItem(patient.id, f"{patient.given_name} {patient.family_name}", patient.phone,
                                 patient.email, due_on.isoformat(), basis, last_session_id=session.id))
    reminders = db.execute(select(Reminder, Patient).join(Patient, Patient.id == Reminder.patient_id).where(
        Reminder.voided_at.is_(None), Reminder.done.is_(False), Reminder.due_on < before,
        Patient.voided_at.is_(None))).all()
    for reminder, patient in reminders:
        items.append(DueItem(patient.id, f"{patient.given_name} {patient.family_name}", patient.phone,
                             patient.email, reminder.due_on.isoformat(), "reminder", reminder_id=reminder.id))
    return sorted(items, key=lambda item: (item.due_on, item.patient_id))
