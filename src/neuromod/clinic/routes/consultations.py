"""Consultations: concerns and baseline FWS per area (at rest and at maximum contraction)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from neuromod.clinic.db import Consultation
from neuromod.clinic.deps import get_db, invalid, require, writing
from neuromod.clinic.records import create, get_record, live, live_patient, void
from neuromod.clinic.routes._common import RecordId, answer, answers
from neuromod.clinic.security import Actor
from neuromod.reference.anatomy import load_face_map
from neuromod.schemas.clinic import ConsultationFields, Void

router = APIRouter(prefix="/api", tags=["consultations"])


@router.get("/patients/{patient_id}/consultations")
def list_consultations(patient_id: RecordId, db: Session = Depends(get_db),
                       actor: Actor = Depends(require("clinical.read"))) -> list[dict]:
    live_patient(db, patient_id)
    return answers(db.execute(live(Consultation).where(Consultation.patient_id == patient_id)
                              .order_by(Consultation.held_at)).scalars())


@router.post("/patients/{patient_id}/consultations", status_code=201)
def create_consultation(patient_id: RecordId, body: ConsultationFields, db: Session = Depends(get_db),
                        actor: Actor = Depends(require("clinical.write"))) -> dict:
    areas = load_face_map().areas
    for area in body.baseline:
        if area not in areas:
            raise invalid(f"baseline.{area}: unknown area; allowed: {', '.join(areas)}")
    with writing(db):
        live_patient(db, patient_id)
        document = body.model_dump(mode="json")
        consultation = create(db, actor, Consultation(
            patient_id=patient_id, held_at=body.held_at, concerns=body.concerns, baseline=document["baseline"],
            notes=body.notes, recorded_by=actor.account_id))
    return answer(consultation)


@router.get("/consultations/{consultation_id}")
def read_consultation(consultation_id: RecordId, db: Session = Depends(get_db),
                      actor: Actor = Depends(require("clinical.read"))) -> dict:
    return answer(get_record(db, Consultation, consultation_id, "consultation_id", include_void=True))


@router.post("/consultations/{consultation_id}/void")
def void_consultation(consultation_id: RecordId, body: Void, db: Session = Depends(get_db),
                      actor: Actor = Depends(require("clinical.write"))) -> dict:
    with writing(db):
        consultation = void(db, actor, get_record(db, Consultation, consultation_id, "consultation_id"), body.reason)
    return answer(consultation)
