"""Treatment sessions as given, checked by :mod:`neuromod.clinic.rules` in one transaction."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from neuromod.clinic.db import TreatmentSession
from neuromod.clinic.deps import get_db, require, writing
from neuromod.clinic.records import get_record, live, live_patient, void
from neuromod.clinic.routes._common import RecordId, answer, answers
from neuromod.clinic.rules import record_session
from neuromod.clinic.security import Actor
from neuromod.schemas.clinic import SessionFields, Void

router = APIRouter(prefix="/api", tags=["sessions"])


@router.get("/patients/{patient_id}/sessions")
def list_sessions(patient_id: RecordId, db: Session = Depends(get_db),
                  actor: Actor = Depends(require("clinical.read"))) -> list[dict]:
    live_patient(db, patient_id)
    rows = db.execute(live(TreatmentSession).where(TreatmentSession.patient_id == patient_id)
                      .order_by(TreatmentSession.given_at))
    return answers(rows.scalars())


@router.post("/patients/{patient_id}/sessions", status_code=201)
def create_session(patient_id: RecordId, body: SessionFields, db: Session = Depends(get_db),
                   actor: Actor = Depends(require("clinical.write"))) -> dict:
    """Record a session; refused whole (422 naming the field) if any rule fails."""
    with writing(db):
        session = record_session(db, actor, patient_id, body)
    return answer(session)


@router.get("/sessions/{session_id}")
def read_session(session_id: RecordId, db: Session = Depends(get_db),
                 actor: Actor = Depends(require("clinical.read"))) -> dict:
    return answer(get_record(db, TreatmentSession, session_id, "session_id", include_void=True))


@router.post("/sessions/{session_id}/void")
def void_session(session_id: RecordId, body: Void, db: Session = Depends(get_db),
                 actor: Actor = Depends(require("clinical.write"))) -> dict:
    """Void a session entered in error (the units drawn are not returned to the lot: the vial was used)."""
    with writing(db):
        session = void(db, actor, get_record(db, TreatmentSession, session_id, "session_id"), body.reason)
    return answer(session)
