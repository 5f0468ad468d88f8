"""Plans of stored patients, saved validated with the prediction made for them.

The prediction uses the patient's covariates and treatment history
(:mod:`neuromod.clinic.predictions`) and records the model and parameter versions that made it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

import neuromod
from neuromod.clinic.db import Consultation, PlanRecord, utcnow
from neuromod.clinic.deps import get_db, invalid, require, writing
from neuromod.clinic.predictions import predict_for_patient
from neuromod.clinic.records import create, get_record, live, live_patient, void
from neuromod.clinic.routes._common import RecordId, answer, answers
from neuromod.clinic.security import Actor
from neuromod.reference.parameters import default_parameters
from neuromod.schemas.clinic import PlanSave, Void

router = APIRouter(prefix="/api", tags=["plans"])


def _predict(db: Session, patient_id: RecordId, body: PlanSave):
    patient = live_patient(db, patient_id)
    consultation = None
    if body.consultation_id is not None:
        consultation = get_record(db, Consultation, body.consultation_id, "consultation_id")
        if consultation.patient_id != patient_id:
            raise invalid(f"consultation_id: consultation {body.consultation_id} belongs to another patient")
    planned_for = body.planned_for or utcnow()
    return planned_for, predict_for_patient(db, patient, body.plan, planned_for, body.days, consultation)


@router.post("/patients/{patient_id}/predict")
def predict_for_stored_patient(patient_id: RecordId, body: PlanSave, db: Session = Depends(get_db),
                               actor: Actor = Depends(require("predict"))) -> dict:
    """The course this plan predicts for this patient (covariates and history filled in); nothing is saved."""
    planned_for, prediction = _predict(db, patient_id, body)
    return {"plan": prediction.plan.model_dump(mode="json", exclude_none=True), "treatment_day": prediction.treatment_day,
            "wear_off_after_days": prediction.wear_off_after_days, "course": prediction.course}


@router.get("/patients/{patient_id}/plans")
def list_plans(patient_id: RecordId, db: Session = Depends(get_db),
               actor: Actor = Depends(require("clinical.read"))) -> list[dict]:
    live_patient(db, patient_id)
    rows = db.execute(live(PlanRecord).where(PlanRecord.patient_id == patient_id).order_by(PlanRecord.planned_for))
    return answers(rows.scalars())


@router.post("/patients/{patient_id}/plans", status_code=201)
def save_plan(patient_id: RecordId, body: PlanSave, db: Session = Depends(get_db),
              actor: Actor = Depends(require("clinical.write"))) -> dict:
    """Validate and store the plan with its prediction (FWS course per area, wear-off)."""
    planned_for, prediction = _predict(db, patient_id, body)
    with writing(db):
        live_patient(db, patient_id)
        record = create(db, actor, PlanRecord(
            patient_id=patient_id, consultation_id=body.consultation_id,
            document=prediction.plan.model_dump(mode="json", exclude_none=True), prediction=prediction.course,
            planned_for=planned_for, treatment_day=prediction.treatment_day,
            wear_off_after_days=prediction.wear_off_after_days, model_version=neuromod.__version__,
            parameter_version=default_parameters().version, notes=body.notes, created_by=actor.account_id))
    return answer(record)


@router.get("/plans/{plan_id}")
def read_plan(plan_id: RecordId, db: Session = Depends(get_db), actor: Actor = Depends(require("clinical.read"))) -> dict:
    return answer(get_record(db, PlanRecord, plan_id, "plan_id", include_void=True))


@router.post("/plans/{plan_id}/void")
def void_plan(plan_id: RecordId, body: Void, db: Session = Depends(get_db),
              actor: Actor = Depends(require("clinical.write"))) -> dict:
    with writing(db):
        record = void(db, actor, get_record(db, PlanRecord, plan_id, "plan_id"), body.reason)
    return answer(record)
