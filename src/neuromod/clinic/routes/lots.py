"""Product lots: stock, expiry, reconstitution; recall (every patient who received a lot)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from neuromod.clinic.db import Lot, Patient, TreatmentSession
from neuromod.clinic.deps import ClinicError, get_db, invalid, require, writing
from neuromod.clinic.records import create, get_record, live, update_fields, void
from neuromod.clinic.routes._common import RecordId, answer, answers
from neuromod.clinic.security import Actor
from neuromod.reference.products import load_products
from neuromod.schemas.clinic import LotFields, LotUpdate, Void

router = APIRouter(prefix="/api/lots", tags=["lots"])


@router.get("")
def list_lots(include_void: bool = False, db: Session = Depends(get_db),
              actor: Actor = Depends(require("lots.read"))) -> list[dict]:
    query = select(Lot) if include_void else live(Lot)
    return answers(db.execute(query.order_by(Lot.expires_on, Lot.id)).scalars())


@router.post("", status_code=201)
def create_lot(body: LotFields, db: Session = Depends(get_db), actor: Actor = Depends(require("lots.write"))) -> dict:
    products = load_products()
    if body.product not in products:
        raise invalid(f"product: unknown product {body.product!r}; allowed: {', '.join(sorted(products))}")
    with writing(db):
        taken = db.execute(select(Lot.id).where(Lot.product == body.product, Lot.lot_number == body.lot_number)).first()
        if taken:
            raise ClinicError(409, f"lot_number: {body.product} lot {body.lot_number} is already recorded")
        units = round(body.vials * body.vial_units, 3)
        lot = create(db, actor, Lot(units_received=units, units_left=units, **body.model_dump()))
    return answer(lot)


@router.get("/{lot_id}")
def read_lot(lot_id: RecordId, db: Session = Depends(get_db), actor: Actor = Depends(require("lots.read"))) -> dict:
    return answer(get_record(db, Lot, lot_id, "lot_id", include_void=True))


@router.patch("/{lot_id}")
def update_lot(lot_id: RecordId, body: LotUpdate, db: Session = Depends(get_db),
               actor: Actor = Depends(require("lots.write"))) -> dict:
    """Record the reconstitution (time, saline per vial): later sessions use its dilution."""
    with writing(db):
        lot = update_fields(db, actor, get_record(db, Lot, lot_id, "lot_id"), body.model_dump(exclude_unset=True))
    return answer(lot)


@router.get("/{lot_id}/recall")
def recall_lot(lot_id: RecordId, db: Session = Depends(get_db), actor: Actor = Depends(require("clinical.read"))) -> dict:
    """Every patient who received units of this lot (live sessions), with how to reach them."""
    lot = get_record(db, Lot, lot_id, "lot_id", include_void=True)
    rows = db.execute(select(TreatmentSession, Patient).join(Patient, Patient.id == TreatmentSession.patient_id)
                      .where(TreatmentSession.lot_id == lot_id, TreatmentSession.voided_at.is_(None))
                      .order_by(Patient.id, TreatmentSession.given_at)).all()
    patients: dict[int, dict] = {}
    for session, patient in rows:
        entry = patients.setdefault(patient.id, {
            "patient_id": patient.id, "name": f"{patient.given_name} {patient.family_name}", "phone": patient.phone,
            "email": patient.email, "sessions": []})
        entry["sessions"].append({"session_id": session.id, "given_at": session.given_at.isoformat(),
                                  "units": session.total_units})
    return {"lot": answer(lot), "patients": list(patients.values())}


@router.post("/{lot_id}/void")
def void_lot(lot_id: RecordId, body: Void, db: Session = Depends(get_db), actor: Actor = Depends(require("lots.write"))) -> dict:
    with writing(db):
        lot = void(db, actor, get_record(db, Lot, lot_id, "lot_id"), body.reason)
    return answer(lot)
