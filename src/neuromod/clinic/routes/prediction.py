"""``GET /api/patients/{id}/prediction``: the stored patient's personal prediction (the
population model conditioned on their own follow-ups, :mod:`neuromod.clinic.personal`).

The next-dose suggestion (``neuromod personalize --goal``) is not offered here: the planner on
the posterior twins takes ~30 s on the 2-core machine, far beyond an API call's budget."""

from __future__ import annotations

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
        db: Session = Depends(get_db), actor: Actor = Depends(require("clinical.read"))) -> dict:
    """The personal prediction (``neuromod personalize --json``'s shape; days from the first
    session, ``first_treatment_date``). Model estimates for planning and education, not medical advice."""
    return personal_prediction(db, live_patient(db, patient_id), days_ahead)
