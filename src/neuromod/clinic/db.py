"""The clinic's tables (SQLAlchemy 2 typed models) and the engine.

The schema itself is created and changed only by the Alembic migrations in
``clinic/alembic/versions`` (:func:`upgrade`, run at start); these classes describe it for
queries, and a test checks that they and the migrations agree.

Conventions: every time is stored in UTC (:class:`UTCDateTime`); units are product units;
clinical records are never deleted, only voided with a reason (``voided_at``, ``void_reason``);
documents checked by :mod:`neuromod.schemas` (plans, injections, scores) are stored as JSON.

SQLite runs in WAL mode with foreign keys on and a busy timeout; every write transaction starts
by claiming the audit head (:func:`neuromod.clinic.audit.claim`), which serialises writers on
SQLite and PostgreSQL alike and keeps the audit chain linear.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import weakref
from collections.abc import Iterator
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

#: how long SQLite waits for the write lock before giving up (ms).
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: SQLite durability: NORMAL in WAL mode keeps every committed transaction through a crash or
#: kill of the server (the crash drill) and syncs at checkpoints; FULL also survives a power
#: cut of the machine at the cost of an fsync per commit. NEUROMOD_SQLITE_SYNCHRONOUS=FULL for that.
SQLITE_SYNCHRONOUS = "FULL" if os.environ.get("NEUROMOD_SQLITE_SYNCHRONOUS", "").upper() == "FULL" else "NORMAL"


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, date: Date, dict[str, Any]: JSON, list[Any]: JSON}


class Voidable:
    """Soft delete: a voided record stays, with when, why and by whom."""

    voided_at: Mapped[datetime | None] = mapped_column(default=None)
    void_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    voided_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), default=None)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthSession(Base):
    """A signed-in session: only the SHA-256 of its token is stored."""

    __tablename__ = "auth_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Patient(Voidable, Base):
    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100), index=True)
    birth_date: Mapped[date]
    sex: Mapped[str] = mapped_column(String(10))
    smoking: Mapped[str] = mapped_column(String(10))
    sun_exposure: Mapped[str] = mapped_column(String(10))
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Consent(Voidable, Base):
    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    version: Mapped[str] = mapped_column(String(40))
    granted: Mapped[bool] = mapped_column(Boolean)
    signed_at: Mapped[datetime]
    recorded_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Consultation(Voidable, Base):
    __tablename__ = "consultations"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    held_at: Mapped[datetime]
    concerns: Mapped[str] = mapped_column(Text)
    baseline: Mapped[dict[str, Any]]
    notes: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlanRecord(Voidable, Base):
    """A validated plan document with the prediction made for it and what made it."""

    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultations.id"))
    document: Mapped[dict[str, Any]]
    prediction: Mapped[dict[str, Any]]
    planned_for: Mapped[datetime]
    #: day of the planned treatment on the prediction's time axis (0 = first treatment in the history)
    treatment_day: Mapped[float] = mapped_column(Float)
    #: predicted days from the planned treatment until half the best improvement is lost
    #: (earliest treated area); None when the model predicts no wear-off within the horizon
    wear_off_after_days: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(40))
    parameter_version: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lot(Voidable, Base):
    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("product", "lot_number", name="uq_lots_product_lot_number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    product: Mapped[str] = mapped_column(String(40))
    lot_number: Mapped[str] = mapped_column(String(60))
    expires_on: Mapped[date]
    vials: Mapped[int] = mapped_column(Integer)
    vial_units: Mapped[float] = mapped_column(Float)
    units_received: Mapped[float] = mapped_column(Float)
    units_left: Mapped[float] = mapped_column(Float)
    reconstituted_at: Mapped[datetime | None]
    saline_ml: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TreatmentSession(Voidable, Base):
    """Injections as given (they may differ from the plan)."""

    __tablename__ = "treatment_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    product: Mapped[str] = mapped_column(String(40))
    given_at: Mapped[datetime]
    injector_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    injections: Mapped[list[Any]]
    total_units: Mapped[float] = mapped_column(Float)
    notes: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FollowUp(Voidable, Base):
    __tablename__ = "follow_ups"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("treatment_sessions.id"), index=True)
    seen_at: Mapped[datetime]
    observed: Mapped[dict[str, Any]]
    adverse_events: Mapped[list[Any]]
    patient_reported_onset_day: Mapped[float | None] = mapped_column(Float)
    rated_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    notes: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reminder(Voidable, Base):
    __tablename__ = "reminders"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    due_on: Mapped[date]
    note: Mapped[str] = mapped_column(Text)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """One link of the append-only, hash-chained audit log (see :mod:`neuromod.clinic.audit`).

    ``payload`` is the canonical JSON that was hashed; the other columns repeat parts of it
    for queries and are checked against it by verification."""

    __tablename__ = "audit_entries"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    entity: Mapped[str] = mapped_column(String(40), index=True)
    entity_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row holding the chain's last sequence number and hash (detects a deleted tail)."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


# -- engine ------------------------------------------------------------------------------
def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys, a busy timeout and full sync."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


_WRITE_LOCKS: "weakref.WeakKeyDictionary[Engine, threading.Lock]" = weakref.WeakKeyDictionary()


def write_lock(engine: Engine) -> Any:
    """The in-process lock serialising this engine's write transactions on SQLite (which has one
    writer at a time anyway): waiting threads queue on it instead of polling SQLite's busy
    handler, whose sleeps make the tail latency. PostgreSQL needs none (row locks queue)."""
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    return _WRITE_LOCKS.setdefault(engine, threading.Lock())


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Any = None, url: str | None = None) -> Any:
    """The Alembic configuration of the packaged migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("neuromod.clinic").joinpath("alembic")))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (creates it on an empty database)."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def session_scope(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session that is closed afterwards (a FastAPI dependency generator)."""
    db = sessions()
    try:
        yield db
    finally:
        db.close()


#: columns the audit log keeps as a digest only: derived, large, reproducible from the rest.
DIGESTED_COLUMNS = frozenset({"prediction"})


def record_dict(record: Base, digest: bool = True) -> dict[str, Any]:
    """A record's columns as JSON-ready values (dates and times in ISO 8601), for the audit log
    (password hashes left out; predictions as their SHA-256 unless ``digest`` is False: API answers)."""
    out: dict[str, Any] = {}
    for column in record.__table__.columns:
        value = getattr(record, column.key)
        if isinstance(value, (datetime, date)):
            value = value.isoformat()
        elif digest and column.key in DIGESTED_COLUMNS and value is not None:
            canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
            value = {"sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest()}
        out[column.key] = value
    out.pop("password_hash", None)
    return out
