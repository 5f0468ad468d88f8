"""Patients: identity, the covariates the model needs, contact details (no clinical notes here)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from neuromod.clinic import audit
from neuromod.clinic.db import Patient
from neuromod.clinic.fhir import FHIR_RELEASE, patient_bundle
from neuromod.clinic.deps import get_db, require, writing
from neuromod.clinic.records import create, get_record, update_fields, void
from neuromod.clinic.routes._common import (
    RecordId,
    answer,
    answers,
    page_limit,
    page_offset,
)
from neuromod.clinic.security import Actor
from neuromod.schemas.clinic import PatientFields, PatientUpdate, Void

router = APIRouter(prefix="/api/patients", tags=["patients"])


@router.get("")
def list_patients(q: str | None = Query(None, max_length=100, description="part of a name, phone or e-mail"),
                  include_void: bool = False, limit: int = Depends(page_limit), offset: int = Depends(page_offset),
                  db: Session = Depends(get_db), actor: Actor = Depends(require("patients.read"))) -> list[dict]:
    query = select(Patient)
    if not include_void:
        query = query.where(Patient.voided_at.is_(None))
    if q:
        like = f"%{q.lower()}%"
        query = query.where(or_(func.lower(Patient.given_name).like(like), func.lower(Patient.family_name).like(like),
                                func.lower(Patient.email).like(like), Patient.phone.like(like)))
    rows = db.execute(query.order_by(Patient.family_name, Patient.given_name, Patient.id)
                      .limit(limit).offset(offset)).scalars()
    return answers(rows)


@router.post("", status_code=201)
def create_patient(body: PatientFields, db: Session = Depends(get_db),
                   actor: Actor = Depends(require("patients.write"))) -> dict:
    with writing(db):
        patient = create(db, actor, Patient(**body.model_dump()))
    return answer(patient)


@router.get("/{patient_id}")
def read_patient(patient_id: RecordId, db: Session = Depends(get_db),
                 actor: Actor = Depends(require("patients.read"))) -> dict:
    return answer(get_record(db, Patient, patient_id, "patient_id", include_void=True))


@router.patch("/{patient_id}")
def update_patient(patient_id: RecordId, body: PatientUpdate, db: Session = Depends(get_db),
                   actor: Actor = Depends(require("patients.write"))) -> dict:
    with writing(db):
        patient = update_fields(db, actor, get_record(db, Patient, patient_id, "patient_id"),
                                body.model_dump(exclude_unset=True))
    return answer(patient)


@router.post("/{patient_id}/void")
def void_patient(patient_id: RecordId, body: Void, db: Session = Depends(get_db),
                 actor: Actor = Depends(require("patients.write"))) -> dict:
    with writing(db):
        patient = void(db, actor, get_record(db, Patient, patient_id, "patient_id"), body.reason)
    return answer(patient)


@router.get("/{patient_id}/fhir")
def export_fhir(patient_id: RecordId, db: Session = Depends(get_db),
                actor: Actor = Depends(require("records.export"))) -> dict:
    """The patient's record as a FHIR R4B Bundle (audited as an export)."""
    with writing(db):
        get_record(db, Patient, patient_id, "patient_id", include_void=True)
        bundle = patient_bundle(db, patient_id)
        audit.append(db, actor.account_id, "export", "patients", patient_id,
                     after={"format": f"FHIR {FHIR_RELEASE} Bundle", "entries": len(bundle.get("entry", []))})
    return bundle
