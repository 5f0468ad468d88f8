"""Consents on file (treatment, photo), versioned, with when they were signed."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from neuromod.clinic.db import Consent
from neuromod.clinic.deps import get_db, require, writing
from neuromod.clinic.records import create, get_record, live, live_patient, void
from neuromod.clinic.routes._common import RecordId, answer, answers
from neuromod.clinic.security import Actor
from neuromod.schemas.clinic import ConsentFields, Void

router = APIRouter(prefix="/api", tags=["consents"])


@router.get("/patients/{patient_id}/consents")
def list_consents(patient_id: RecordId, db: Session = Depends(get_db),
                  actor: Actor = Depends(require("consents.read"))) -> list[dict]:
    live_patient(db, patient_id)
    return answers(db.execute(live(Consent).where(Consent.patient_id == patient_id)
                              .order_by(Consent.signed_at)).scalars())


@router.post("/patients/{patient_id}/consents", status_code=201)
def create_consent(patient_id: RecordId, body: ConsentFields, db: Session = Depends(get_db),
                   actor: Actor = Depends(require("consents.write"))) -> dict:
    with writing(db):
        live_patient(db, patient_id)
        consent = create(db, actor, Consent(patient_id=patient_id, recorded_by=actor.account_id, **body.model_dump()))
    return answer(consent)


@router.post("/consents/{consent_id}/void")
def void_consent(consent_id: RecordId, body: Void, db: Session = Depends(get_db),
                 actor: Actor = Depends(require("consents.write"))) -> dict:
    with writing(db):
        consent = void(db, actor, get_record(db, Consent, consent_id, "consent_id"), body.reason)
    return answer(consent)
