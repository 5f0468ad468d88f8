"""Reminders and appointments; the re-treatment due list (:mod:`neuromod.clinic.due`)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from neuromod.clinic.db import Reminder
from neuromod.clinic.deps import get_db, require, writing
from neuromod.clinic.due import due_list
from neuromod.clinic.records import (
    create,
    get_record,
    live,
    live_patient,
    update_fields,
    void,
)
from neuromod.clinic.routes._common import RecordId, answer, answers
from neuromod.clinic.security import Actor
from neuromod.schemas.clinic import ReminderFields, ReminderUpdate, Void

router = APIRouter(prefix="/api", tags=["reminders"])


@router.get("/reminders/due")
def due_route(before: date = Query(..., description="list re-treatments and reminders due before this date"),
              db: Session = Depends(get_db), actor: Actor = Depends(require("reminders.read"))) -> list[dict]:
    return [item.as_json() for item in due_list(db, before)]


@router.get("/patients/{patient_id}/reminders")
def list_reminders(patient_id: RecordId, db: Session = Depends(get_db),
                   actor: Actor = Depends(require("reminders.read"))) -> list[dict]:
    live_patient(db, patient_id)
    return answers(db.execute(live(Reminder).where(Reminder.patient_id == patient_id)
                              .order_by(Reminder.due_on)).scalars())


@router.post("/patients/{patient_id}/reminders", status_code=201)
def create_reminder(patient_id: RecordId, body: ReminderFields, db: Session = Depends(get_db),
                    actor: Actor = Depends(require("reminders.write"))) -> dict:
    with writing(db):
        live_patient(db, patient_id)
        reminder = create(db, actor, Reminder(patient_id=patient_id, created_by=actor.account_id, **body.model_dump()))
    return answer(reminder)


@router.patch("/reminders/{reminder_id}")
def update_reminder(reminder_id: RecordId, body: ReminderUpdate, db: Session = Depends(get_db),
                    actor: Actor = Depends(require("reminders.write"))) -> dict:
    with writing(db):
        reminder = update_fields(db, actor, get_record(db, Reminder, reminder_id, "reminder_id"),
                                 body.model_dump(exclude_unset=True))
    return answer(reminder)


@router.post("/reminders/{reminder_id}/void")
def void_reminder(reminder_id: RecordId, body: Void, db: Session = Depends(get_db),
                  actor: Actor = Depends(require("reminders.write"))) -> dict:
    with writing(db):
        reminder = void(db, actor, get_record(db, Reminder, reminder_id, "reminder_id"), body.reason)
    return answer(reminder)
