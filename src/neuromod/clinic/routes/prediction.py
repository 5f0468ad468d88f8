"""``GET /api/patients/{id}/prediction``: the stored patient's personal prediction (the
population model conditioned on their own follow-ups, :mod:`neuromod.clinic.personal`)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from neuromod.clinic.deps import get_db, require
from neuromod.clinic.personal import DEFAULT_DAYS_AHEAD, personal_prediction
from neuromod.clinic.records import live_patient
from neuromod.clinic.routes._common import RecordId
from neuromod.clinic.security import Actor

router = APIRouter(prefix="/api/patients", tags=["predict"])


@router.get("/{patient_id}/prediction")
def read_personal_prediction(
        patient_id: RecordId,
        days_ahead: int = Query(DEFAULT_DAYS_AHEAD, ge=1, le=730, description="horizon after the last session, 1-730 days"),
        goal: Literal["none_mild", "none"] | None = Query(None, description="also suggest the next dose: none_mild | none"),
        hold_until: int | None = Query(None, ge=31, le=365,
                                       description="with goal: keep it to this day after the next session, 31-365"),
        db: Session = Depends(get_db), actor: Actor = Depends(require("clinical.read"))) -> dict:
    """The personal prediction (``neuromod personalize --json``'s shape; days from the first
    session, ``first_treatment_date``). Model estimates for planning and education, not medical advice."""
    patient = live_patient(db, patient_id)
    if goal is None and hold_until is not None:
        goal = "none_mild"  # as the command line: --hold-until implies the default goal
    return personal_prediction(db, patient, days_ahead, goal, hold_until)
