"""``POST /api/predict``: a plan -> exactly ``simulate(plan, days).to_json()`` (as ``simulate --json``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from neuromod.clinic.deps import require
from neuromod.clinic.security import Actor
from neuromod.model.simulate import simulate
from neuromod.schemas.plan import MAX_TREATMENT_DAY, Plan

router = APIRouter(prefix="/api", tags=["predict"])


@router.post("/predict")
def predict(plan: Plan, days: int = Query(180, ge=1, le=MAX_TREATMENT_DAY, description="days to simulate, 1-3650"),
            actor: Actor = Depends(require("predict"))) -> dict:
    """The predicted course of one plan (model estimates for planning and education, not medical advice)."""
    return simulate(plan, days=days).to_json()
