"""Follow-ups of a session: observed FWS per area, who rated, adverse events, reported onset."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from neuromod.clinic.db import Account, FollowUp, TreatmentSession
from neuromod.clinic.deps import get_db, invalid, require, writing
from neuromod.clinic.policy import allowed
from neuromod.clinic.records import create, get_record, live, live_patient, void
from neuromod.clinic.routes._common import RecordId, answer, answers
from neuromod.clinic.security import Actor
from neuromod.reference.anatomy import load_face_map
from neuromod.schemas.clinic import FollowUpFields, Void

router = APIRouter(prefix="/api", tags=["follow-ups"])


@router.get("/patients/{patient_id}/follow-ups")
def list_follow_ups(patient_id: RecordId, db: Session = Depends(get_db),
                    actor: Actor = Depends(require("clinical.read"))) -> list[dict]:
    live_patient(db, patient_id)
    return answers(db.execute(live(FollowUp).where(FollowUp.patient_id == patient_id)
                              .order_by(FollowUp.seen_at)).scalars())


@router.post("/patients/{patient_id}/follow-ups", status_code=201)
def create_follow_up(patient_id: RecordId, body: FollowUpFields, db: Session = Depends(get_db),
                     actor: Actor = Depends(require("clinical.write"))) -> dict:
    areas = load_face_map().areas
    for area in body.observed:
        if area not in areas:
            raise invalid(f"observed.{area}: unknown area; allowed: {', '.join(areas)}")
    with writing(db):
        live_patient(db, patient_id)
        session = get_record(db, TreatmentSession, body.session_id, "session_id")
        if session.patient_id != patient_id:
            raise invalid(f"session_id: session {body.session_id} belongs to another patient")
        if body.seen_at < session.given_at:
            raise invalid(f"seen_at: {body.seen_at.isoformat()} is before the session ({session.given_at.isoformat()})")
        rater_id = body.rated_by_id or actor.account_id
        rater = db.get(Account, rater_id)
        if rater is None or rater.disabled or not allowed(rater.role, "clinical.write"):
            raise invalid(f"rated_by_id: account {rater_id} is not an active clinician (admin or injector)")
        document = body.model_dump(mode="json")
        follow_up = create(db, actor, FollowUp(
            patient_id=patient_id, session_id=session.id, seen_at=body.seen_at, observed=document["observed"],
            adverse_events=document["adverse_events"], patient_reported_onset_day=body.patient_reported_onset_day,
            rated_by=rater_id, notes=body.notes))
    return answer(follow_up)


@router.post("/follow-ups/{follow_up_id}/void")
def void_follow_up(follow_up_id: RecordId, body: Void, db: Session = Depends(get_db),
                   actor: Actor = Depends(require("clinical.write"))) -> dict:
    with writing(db):
        follow_up = void(db, actor, get_record(db, FollowUp, follow_up_id, "follow_up_id"), body.reason)
    return answer(follow_up)
