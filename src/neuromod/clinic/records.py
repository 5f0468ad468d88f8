"""Storage operations shared by the routes: look-ups of live records, audited create, update
and void. Each runs inside :func:`neuromod.clinic.deps.writing` (one transaction)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from neuromod.clinic import audit
from neuromod.clinic.db import Base, Patient, record_dict, utcnow
from neuromod.clinic.deps import ClinicError, not_found
from neuromod.clinic.security import Actor

Record = TypeVar("Record", bound=Base)


def entity_name(model: type[Base]) -> str:
    return model.__tablename__


def get_record(db: Session, model: type[Record], ident: int, field: str = "id",
               include_void: bool = False) -> Record:
    """The record ``ident`` of ``model`` or a 404 naming ``field``; voided records only on request."""
    record = db.get(model, ident)
    if record is None or (not include_void and getattr(record, "voided_at", None) is not None):
        raise not_found(field, entity_name(model).rstrip("s").replace("_", " "), ident)
    return record


def live_patient(db: Session, patient_id: int) -> Patient:
    return get_record(db, Patient, patient_id, "patient_id")


def create(db: Session, actor: Actor, record: Record) -> Record:
    db.add(record)
    db.flush()
    audit.append(db, actor.account_id, "create", entity_name(type(record)), record.id, after=record_dict(record))
    return record


def update_fields(db: Session, actor: Actor, record: Record, changes: dict[str, Any]) -> Record:
    before = record_dict(record)
    for key, value in changes.items():
        setattr(record, key, value)
    if hasattr(record, "updated_at"):
        record.updated_at = utcnow()
    db.flush()
    audit.append(db, actor.account_id, "update", entity_name(type(record)), record.id,
                 before=before, after=record_dict(record))
    return record


def void(db: Session, actor: Actor, record: Record, reason: str) -> Record:
    if record.voided_at is not None:
        raise ClinicError(409, f"id: {entity_name(type(record))} {record.id} is already void")
    before = record_dict(record)
    record.voided_at, record.void_reason, record.voided_by = utcnow(), reason, actor.account_id
    db.flush()
    audit.append(db, actor.account_id, "void", entity_name(type(record)), record.id,
                 before=before, after=record_dict(record))
    return record


def live(model: type[Record]) -> Any:
    """A select of the model's records that are not void."""
    return select(model).where(model.voided_at.is_(None))
