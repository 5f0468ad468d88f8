"""The rules a treatment session must pass, all checked in the one transaction that records it.

Refused whole, with one line naming the field, when:

- ``lot_id``: the lot is void, expired on the day given, of another product, or has fewer units
  left than the session uses (the stock is drawn by a conditional ``UPDATE ... WHERE
  units_left >= n`` whose row count is checked, so concurrent sessions never oversubscribe it);
- ``injections``: the points fail the plan rules of the command line — the session is turned
  into a :class:`~neuromod.schemas.plan.Plan` document (the lot's dilution) and checked by
  :func:`~neuromod.schemas.plan.parse_plan`, with the same messages, which include the label
  maximum per session (``units (session total)``);
- ``given_at``: it comes sooner than the product's label interval after (or before) another
  live session of the patient;
- ``plan_id`` / ``injector_id``: the plan is void or another patient's; the injector is not a
  clinician.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from neuromod.clinic import audit
from neuromod.clinic.db import Account, Lot, PlanRecord, TreatmentSession, record_dict
from neuromod.clinic.deps import invalid
from neuromod.clinic.policy import allowed
from neuromod.clinic.records import create, get_record, live_patient
from neuromod.clinic.security import Actor
from neuromod.reference.products import load_products
from neuromod.schemas.clinic import SessionFields
from neuromod.schemas.plan import Plan, PlanError, parse_plan

#: units are compared after rounding to this many decimals (sub-milli-unit float noise).
UNIT_DECIMALS = 3


def session_plan(body: SessionFields, lot: Lot) -> Plan:
    """The session's injections as a plan at the lot's dilution, checked by the CLI's plan rules."""
    document: dict = {"product": body.product, "vial_units": lot.vial_units,
                      "injections": [injection.model_dump(exclude_none=True) for injection in body.injections]}
    if lot.saline_ml is not None:
        document["saline_ml"] = lot.saline_ml
    try:
        return parse_plan(document)
    except PlanError as error:
        raise invalid(str(error)) from None


def check_interval(db: Session, patient_id: int, body: SessionFields, min_days: float) -> None:
    window = timedelta(days=min_days)
    neighbour = db.execute(select(TreatmentSession).where(
        TreatmentSession.patient_id == patient_id, TreatmentSession.voided_at.is_(None),
        TreatmentSession.given_at > body.given_at - window, TreatmentSession.given_at < body.given_at + window,
    ).order_by(TreatmentSession.given_at).limit(1)).scalar_one_or_none()
    if neighbour is not None:
        gap = abs((body.given_at - neighbour.given_at).total_seconds()) / 86400
        raise invalid(f"given_at: {gap:.0f} days from session {neighbour.id} "
                      f"({neighbour.given_at.date().isoformat()}); {body.product} label: repeat no sooner "
                      f"than {min_days:g} days")


def record_session(db: Session, actor: Actor, patient_id: int, body: SessionFields) -> TreatmentSession:
    """Check every rule and record the session, drawing its units from the lot (caller's transaction)."""
    live_patient(db, patient_id)
    products = load_products()
    if body.product not in products:
        raise invalid(f"product: unknown product {body.product!r}; allowed: {', '.join(sorted(products))}")
    product = products[body.product]
    lot = get_record(db, Lot, body.lot_id, "lot_id")
    if lot.product != body.product:
        raise invalid(f"lot_id: lot {lot.lot_number} is {lot.product}, not {body.product}")
    if lot.expires_on < body.given_at.date():
        raise invalid(f"lot_id: lot {lot.lot_number} expired on {lot.expires_on.isoformat()}, "
                      f"before the session ({body.given_at.date().isoformat()})")
    plan = session_plan(body, lot)
    total = round(plan.total_units(), UNIT_DECIMALS)
    check_interval(db, patient_id, body, product.min_retreat_days)
    if body.plan_id is not None:
        plan_record = get_record(db, PlanRecord, body.plan_id, "plan_id")
        if plan_record.patient_id != patient_id:
            raise invalid(f"plan_id: plan {body.plan_id} belongs to another patient")
    injector_id = body.injector_id or actor.account_id
    injector = db.get(Account, injector_id)
    if injector is None or injector.disabled or not allowed(injector.role, "clinical.write"):
        raise invalid(f"injector_id: account {injector_id} is not an active clinician (admin or injector)")
    before = record_dict(lot)
    drawn = db.execute(update(Lot).where(Lot.id == lot.id, Lot.voided_at.is_(None),
                                         Lot.units_left >= total - 10 ** -UNIT_DECIMALS)
                       .values(units_left=Lot.units_left - total)
                       .execution_options(synchronize_session=False))
    if drawn.rowcount != 1:
        db.refresh(lot)
        raise invalid(f"lot_id: lot {lot.lot_number} has {lot.units_left:g} units left; "
                      f"this session needs {total:g}")
    db.refresh(lot)
    audit.append(db, actor.account_id, "update", "lots", lot.id, before=before, after=record_dict(lot))
    session = TreatmentSession(
        patient_id=patient_id, lot_id=lot.id, plan_id=body.plan_id, product=body.product, given_at=body.given_at,
        injector_id=injector_id, injections=[i.model_dump(mode="json", exclude_none=True) for i in body.injections],
        total_units=total, notes=body.notes)
    return create(db, actor, session)
