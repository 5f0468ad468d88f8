"""A patient's record as a FHIR Bundle, release R4B (4.3.0, the R4 family), built and validated
with ``fhir.resources`` 8 (``fhir.resources.R4B``).

Resources: Patient; Consent (treatment and photo, with version and signing time); Procedure per
treatment session, linked to BodyStructure resources for the injection sites (extension
``procedure-targetBodyStructure``); Medication per product lot (``batch.lotNumber``,
``batch.expirationDate``); MedicationAdministration per injection point with the dose in
*product units* — coded in the neuromod product-unit system (``PRODUCT_UNIT_SYSTEM``, code
``<product>-unit``), never as UCUM enzyme units: units of different products are not
interchangeable; Observation per Facial Wrinkle Scale grade (baseline at consultations,
observed at follow-ups; at rest and at maximum contraction). Void records are left out.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from sqlalchemy.orm import Session

from neuromod.clinic.db import Account, Consent, Consultation, FollowUp, Lot, Patient, TreatmentSession
from neuromod.reference.anatomy import load_face_map
from neuromod.reference.products import load_products

FHIR_RELEASE = "R4B"
#: code system of product units (Botox units, Dysport units, ...): not UCUM, not interchangeable.
PRODUCT_UNIT_SYSTEM = "urn:neuromod:product-units"
#: code system of neuromod's observation codes (FWS grade per area and state).
OBSERVATION_SYSTEM = "urn:neuromod:observations"
SITE_SYSTEM = "urn:neuromod:face-map-sites"
TARGET_BODY_STRUCTURE = "http://hl7.org/fhir/StructureDefinition/procedure-targetBodyStructure"
_NAMESPACE = uuid.UUID("6f1e0b3c-1d2e-4f5a-9b8c-7d6e5f4a3b2c")


def _url(kind: str, ident: object) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{kind}/{ident}')}"


def _entry(resource: dict) -> dict:
    return {"fullUrl": _url(resource["resourceType"], resource["id"]), "resource": resource}


def _ref(kind: str, ident: object, display: str | None = None) -> dict:
    reference = {"reference": _url(kind, ident)}
    return {**reference, "display": display} if display else reference


def _units(product: str, units: float) -> dict:
    return {"value": round(units, 3), "unit": f"{product} unit", "system": PRODUCT_UNIT_SYSTEM, "code": f"{product}-unit"}


def _grade_observations(kind: str, record_id: int, patient_ref: dict, when: str, grades: dict, origin: str,
                        performer: dict | None, part_of: dict | None) -> list[dict]:
    resources = []
    for area, scores in grades.items():
        for state in ("rest", "contraction"):
            label = "at rest" if state == "rest" else "at maximum contraction"
            resource = {
                "resourceType": "Observation", "id": f"{kind}-{record_id}-{area}-{state}", "status": "final",
                "code": {"coding": [{"system": OBSERVATION_SYSTEM, "code": f"fws-{area}-{state}",
                                     "display": f"Facial Wrinkle Scale grade, {area}, {label}"}],
                         "text": f"FWS {area} {label} ({origin})"},
                "subject": patient_ref, "effectiveDateTime": when,
                "valueQuantity": {"value": scores[state], "unit": "FWS grade (0-3)"},
                "bodySite": {"text": area},
            }
            if performer:
                resource["performer"] = [performer]
            if part_of:
                resource["partOf"] = [part_of]
            resources.append(resource)
    return resources


def patient_bundle(db: Session, patient_id: int) -> dict[str, Any]:
    """The validated Bundle (type collection) of one patient's live records, as JSON."""
    patient = db.get(Patient, patient_id)
    products = load_products()
    face_map = load_face_map()
    names = {a.id: a.full_name for a in db.execute(select(Account)).scalars()}
    pref = _ref("Patient", patient.id, f"{patient.given_name} {patient.family_name}")
    telecom = [{"system": "phone", "value": patient.phone}] if patient.phone else []
    telecom += [{"system": "email", "value": patient.email}] if patient.email else []
    resources: list[dict] = [{
        "resourceType": "Patient", "id": str(patient.id), "active": patient.voided_at is None,
        "name": [{"family": patient.family_name, "given": [patient.given_name]}], "gender": patient.sex,
        "birthDate": patient.birth_date.isoformat(), **({"telecom": telecom} if telecom else {}),
        **({"address": [{"text": patient.address}]} if patient.address else {}),
    }]

    def live(model: Any) -> list:
        return list(db.execute(select(model).where(model.patient_id == patient_id, model.voided_at.is_(None))
                               .order_by(model.id)).scalars())

    for consent in live(Consent):
        scope = "treatment" if consent.kind == "treatment" else "patient-privacy"
        resources.append({
            "resourceType": "Consent", "id": f"consent-{consent.id}", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": scope}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Consent Document"}],
                          "text": f"{consent.kind} consent, version {consent.version}"}],
            "patient": pref, "dateTime": consent.signed_at.isoformat(),
            "policy": [{"uri": f"urn:neuromod:consent:{consent.kind}:{consent.version}"}],
            "provision": {"type": "permit" if consent.granted else "deny"},
        })
    for consultation in live(Consultation):
        resources += _grade_observations("consultation", consultation.id, pref, consultation.held_at.isoformat(),
                                         consultation.baseline, "baseline",
                                         {"display": names.get(consultation.recorded_by, "")}, None)
    lots_seen: set[int] = set()
    sessions = live(TreatmentSession)
    for session in sessions:
        lot = db.get(Lot, session.lot_id)
        product = products[session.product]
        if lot.id not in lots_seen:
            lots_seen.add(lot.id)
            resources.append({
                "resourceType": "Medication", "id": f"lot-{lot.id}",
                "code": {"text": f"{product.generic} ({lot.product})"},
                "batch": {"lotNumber": lot.lot_number, "expirationDate": f"{lot.expires_on.isoformat()}T23:59:59+00:00"},
            })
        procedure_ref = _ref("Procedure", f"session-{session.id}")
        injector = {"actor": {"display": names.get(session.injector_id, "")}}
        structures = []
        for index, injection in enumerate(session.injections):
            site = face_map.sites.get(injection.get("site")) if injection.get("site") else None
            x, y = (site.x_mm, site.y_mm) if site else (injection["x_mm"], injection["y_mm"])
            depth = injection.get("depth_mm") or (site.depth_mm if site else None)
            where = site.name if site else f"point ({x:g}, {y:g}) mm"
            structure_id = f"session-{session.id}-site-{index + 1}"
            structures.append(structure_id)
            location = {"text": where}
            if site:
                location["coding"] = [{"system": SITE_SYSTEM, "code": site.name}]
            resources.append({
                "resourceType": "BodyStructure", "id": structure_id, "patient": pref, "location": location,
                "description": f"{where}: x {x:g} mm, y {y:g} mm from the soft-tissue nasion"
                               + (f", depth {depth:g} mm" if depth else ""),
            })
            units = injection.get("units")
            if units is None:
                per_ml = (lot.vial_units / lot.saline_ml) if lot.saline_ml else product.label_units_per_ml
                units = injection["volume_ml"] * per_ml
            resources.append({
                "resourceType": "MedicationAdministration", "id": f"session-{session.id}-dose-{index + 1}",
                "status": "completed", "medicationReference": _ref("Medication", f"lot-{lot.id}"),
                "subject": pref, "effectiveDateTime": session.given_at.isoformat(), "partOf": [procedure_ref],
                "performer": [injector],
                "dosage": {"site": location, "route": {"text": "intramuscular"}, "dose": _units(session.product, units)},
            })
        resources.append({
            "resourceType": "Procedure", "id": f"session-{session.id}", "status": "completed",
            "code": {"text": f"Injection of botulinum toxin type A ({session.product}), {session.total_units:g} "
                             f"{session.product} units"},
            "subject": pref, "performedDateTime": session.given_at.isoformat(), "performer": [injector],
            "bodySite": [{"text": area} for area in sorted({face_map.sites[i["site"]].area for i in session.injections
                                                            if i.get("site") in face_map.sites})] or None,
            "extension": [{"url": TARGET_BODY_STRUCTURE, "valueReference": _ref("BodyStructure", s)}
                          for s in structures],
        })
        resources[-1] = {k: v for k, v in resources[-1].items() if v is not None}
    for follow_up in live(FollowUp):
        resources += _grade_observations("follow-up", follow_up.id, pref, follow_up.seen_at.isoformat(),
                                         follow_up.observed, "follow-up",
                                         {"display": names.get(follow_up.rated_by, "")},
                                         _ref("Procedure", f"session-{follow_up.session_id}"))
    bundle = Bundle.model_validate({"resourceType": "Bundle", "type": "collection",
                                    "entry": [_entry(r) for r in resources]})
    return json.loads(bundle.model_dump_json(exclude_none=True))
