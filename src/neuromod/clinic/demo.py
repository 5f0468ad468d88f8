"""The demo clinic: one account per role and a few patients with history, for ``make run``.

Seeded through the same storage operations and session rules as the API (so the audit log and
the lot stock are consistent). The demo passwords are printed at start; they are for a local
demonstration database only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import neuromod
from neuromod.clinic import audit
from neuromod.clinic.db import (
    Account,
    Consent,
    Consultation,
    FollowUp,
    Lot,
    Patient,
    PlanRecord,
    record_dict,
)
from neuromod.clinic.deps import writing
from neuromod.clinic.predictions import predict_for_patient
from neuromod.clinic.records import create
from neuromod.clinic.rules import record_session
from neuromod.clinic.security import Actor, hash_password
from neuromod.reference.parameters import default_parameters
from neuromod.schemas.clinic import SessionFields
from neuromod.schemas.plan import parse_plan


@dataclass(frozen=True)
class DemoAccount:
    username: str
    full_name: str
    role: str
    password: str


DEMO_ACCOUNTS = (
    DemoAccount("admin", "Ada Admin", "admin", "demo-admin-2026"),
    DemoAccount("injector", "Dr Ines Injector", "injector", "demo-injector-2026"),
    DemoAccount("frontdesk", "Frank Frontdesk", "front_desk", "demo-frontdesk-2026"),
)

#: (given, family, birth date, sex, smoking, sun, phone, baseline glabella (rest, contraction), months ago treated)
DEMO_PATIENTS = (
    ("Maria", "Lopez", date(1979, 3, 14), "female", "never", "moderate", "+1 555 0101", (1.0, 2.5), 4),
    ("James", "Okafor", date(1971, 9, 2), "male", "former", "high", "+1 555 0102", (1.5, 3.0), 7),
    ("Chen", "Wei", date(1988, 6, 30), "female", "never", "low", "+1 555 0103", (0.5, 2.0), None),
)


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def seed_demo(sessions: sessionmaker[Session], today: date | None = None) -> list[DemoAccount]:
    """Seed the demo clinic into an empty database; returns the demo accounts (none if already seeded)."""
    today = today or date.today()
    db = sessions()
    try:
        if db.execute(select(Account.id).limit(1)).first():
            return []
        with writing(db):
            accounts = {}
            for demo in DEMO_ACCOUNTS:
                account = Account(username=demo.username, full_name=demo.full_name, role=demo.role,
                                  password_hash=hash_password(demo.password))
                db.add(account)
                db.flush()
                accounts[demo.role] = account
            injector = accounts["injector"]
            actor = Actor(injector.id, injector.username, injector.full_name, injector.role, 0, "", False)
            for demo in DEMO_ACCOUNTS:
                audit.append(db, actor.account_id, "create", "accounts", accounts[demo.role].id,
                             after=record_dict(accounts[demo.role]))
            lot = create(db, actor, Lot(product="botox", lot_number="C1234A5", expires_on=today + timedelta(days=300),
                                        vials=4, vial_units=100, units_received=400, units_left=400,
                                        reconstituted_at=None, saline_ml=2.5))
        for given, family, birth, sex, smoking, sun, phone, (rest, contraction), months in DEMO_PATIENTS:
            with writing(db):
                patient = create(db, actor, Patient(given_name=given, family_name=family, birth_date=birth, sex=sex,
                                                    smoking=smoking, sun_exposure=sun, phone=phone,
                                                    email=f"{given.lower()}.{family.lower()}@example.org"))
                seen = today - timedelta(days=30 * (months or 0) + 7)
                create(db, actor, Consent(patient_id=patient.id, kind="treatment", version="2026-01", granted=True,
                                          signed_at=_at(seen), recorded_by=actor.account_id))
                consultation = create(db, actor, Consultation(
                    patient_id=patient.id, held_at=_at(seen), concerns="frown lines between the brows",
                    baseline={"glabella": {"rest": rest, "contraction": contraction}}, notes="",
                    recorded_by=actor.account_id))
            if months is None:
                continue
            given_at = _at(today - timedelta(days=30 * months))
            plan = parse_plan({"product": "botox", "areas": {"glabella": 20}})
            prediction = predict_for_patient(db, patient, plan, given_at, 180, consultation)
            with writing(db):
                plan_record = create(db, actor, PlanRecord(
                    patient_id=patient.id, consultation_id=consultation.id,
                    document=prediction.plan.model_dump(mode="json", exclude_none=True), prediction=prediction.course,
                    planned_for=given_at, treatment_day=prediction.treatment_day,
                    wear_off_after_days=prediction.wear_off_after_days, model_version=neuromod.__version__,
                    parameter_version=default_parameters().version, notes="label glabella pattern",
                    created_by=actor.account_id))
                sites = [p.label for p in plan.points()]
                session = record_session(db, actor, patient.id, SessionFields(
                    product="botox", lot_id=lot.id, given_at=given_at, plan_id=plan_record.id,
                    injections=[{"site": site, "units": 4} for site in sites]))
                create(db, actor, FollowUp(
                    patient_id=patient.id, session_id=session.id, seen_at=given_at + timedelta(days=14),
                    observed={"glabella": {"rest": max(rest - 0.5, 0), "contraction": 0.5}}, adverse_events=[],
                    patient_reported_onset_day=3, rated_by=actor.account_id, notes="good response"))
        return list(DEMO_ACCOUNTS)
    finally:
        db.close()
