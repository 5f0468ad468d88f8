"""The audit log (admin): entries in order, and verification of the hash chain."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from neuromod.clinic import audit
from neuromod.clinic.db import AuditEntry
from neuromod.clinic.deps import get_db, require
from neuromod.clinic.routes._common import page_limit
from neuromod.clinic.security import Actor

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("")
def list_audit(after_seq: int = Query(0, ge=0, le=10**12), limit: int = Depends(page_limit),
               entity: str | None = Query(None, max_length=40), db: Session = Depends(get_db),
               actor: Actor = Depends(require("audit.read"))) -> list[dict]:
    query = select(AuditEntry).where(AuditEntry.seq > after_seq)
    if entity:
        query = query.where(AuditEntry.entity == entity)
    rows = db.execute(query.order_by(AuditEntry.seq).limit(limit)).scalars()
    return [{**json.loads(entry.payload), "hash": entry.hash, "prev_hash": entry.prev_hash} for entry in rows]


@router.get("/verify")
def verify_audit(db: Session = Depends(get_db), actor: Actor = Depends(require("audit.read"))) -> dict:
    result = audit.verify(db)
    return {"ok": result.ok, "entries": result.entries, "problems": result.problems}
