"""The whole clinic day through the API, on each backend: sign in, register a patient, consult,
plan with its prediction, treat against a lot, follow up, see the due list, verify the audit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from neuromod.model.simulate import simulate
from neuromod.schemas.plan import parse_plan

TODAY = date.today()
TREATED = datetime.combine(TODAY - timedelta(days=20), datetime.min.time(), tzinfo=UTC).replace(hour=10)


def register_patient(clinic, role="front_desk", **overrides):
    body = {"given_name": "Maria", "family_name": "Lopez", "birth_date": "1979-03-14", "sex": "female",
            "smoking": "never", "sun_exposure": "high", "phone": "+1 555 0101", **overrides}
    response = clinic.client.post("/api/patients", json=body, headers=clinic.as_role(role))
    assert response.status_code == 201, response.text
    return response.json()


def receive_lot(clinic, **overrides):
    body = {"product": "botox", "lot_number": "C1234A5", "expires_on": (TODAY + timedelta(days=200)).isoformat(),
            "vials": 1, "vial_units": 100, "saline_ml": 2.5, **overrides}
    response = clinic.client.post("/api/lots", json=body, headers=clinic.as_role("injector"))
    assert response.status_code == 201, response.text
    return response.json()


def test_clinic_day(clinic):
    injector = clinic.as_role("injector")
    patient = register_patient(clinic)
    pid = patient["id"]
    consent = clinic.client.post(f"/api/patients/{pid}/consents", headers=clinic.as_role("front_desk"), json={
        "kind": "treatment", "version": "2026-01", "signed_at": TREATED.isoformat()})
    assert consent.status_code == 201, consent.text
    consultation = clinic.client.post(f"/api/patients/{pid}/consultations", headers=injector, json={
        "held_at": TREATED.isoformat(), "concerns": "frown lines",
        "baseline": {"glabella": {"rest": 1.5, "contraction": 3.0}}})
    assert consultation.status_code == 201, consultation.text

    # the plan is saved with the prediction for THIS patient: age from birth date, baseline from the consultation
    saved = clinic.client.post(f"/api/patients/{pid}/plans", headers=injector, json={
        "plan": {"product": "botox", "areas": {"glabella": 20}}, "planned_for": TREATED.isoformat()})
    assert saved.status_code == 201, saved.text
    plan = saved.json()
    age = (TREATED.date() - date(1979, 3, 14)).days / 365.25
    assert plan["document"]["patient"]["age"] == pytest.approx(age, abs=0.01)
    assert plan["document"]["patient"]["sun_exposure"] == "high"
    assert plan["document"]["patient"]["baseline"]["glabella"] == {"rest": 1.5, "contraction": 3.0}
    expected = simulate(parse_plan(plan["document"]), days=180).to_json()
    assert plan["prediction"] == expected
    assert plan["prediction"]["areas"]["glabella"]["fws_contraction"][0] > 2.5  # severe baseline kept
    assert plan["wear_off_after_days"] == expected["areas"]["glabella"]["wear_off_day"]
    assert plan["model_version"] and plan["parameter_version"] >= 1

    lot = receive_lot(clinic)
    sites = [p.label for p in parse_plan({"product": "botox", "areas": {"glabella": 20}}).points()]
    session = clinic.client.post(f"/api/patients/{pid}/sessions", headers=injector, json={
        "product": "botox", "lot_id": lot["id"], "given_at": TREATED.isoformat(), "plan_id": plan["id"],
        "injections": [{"site": s, "units": 4} for s in sites]})
    assert session.status_code == 201, session.text
    assert session.json()["total_units"] == 20
    assert clinic.client.get(f"/api/lots/{lot['id']}", headers=injector).json()["units_left"] == 80

    follow_up = clinic.client.post(f"/api/patients/{pid}/follow-ups", headers=injector, json={
        "session_id": session.json()["id"], "seen_at": (TREATED + timedelta(days=14)).isoformat(),
        "observed": {"glabella": {"rest": 1.0, "contraction": 0.5}},
        "adverse_events": [{"kind": "bruising", "severity": "mild", "onset_day": 0}],
        "patient_reported_onset_day": 3})
    assert follow_up.status_code == 201, follow_up.text

    # due list: with a follow-up on file, the personal re-treatment day (>= the 90-day label
    # interval) counted from the session day
    personal = clinic.client.get(f"/api/patients/{pid}/prediction", headers=injector).json()
    retreat = personal["retreat_day"]
    assert retreat is not None and retreat >= 90
    due_on = (TREATED.date() + timedelta(days=round(retreat))).isoformat()
    front_desk = clinic.as_role("front_desk")
    before_due = clinic.client.get("/api/reminders/due", params={"before": due_on}, headers=front_desk).json()
    assert [item["patient_id"] for item in before_due] == []
    after = (TREATED.date() + timedelta(days=round(retreat) + 1)).isoformat()
    due = clinic.client.get("/api/reminders/due", params={"before": after}, headers=front_desk).json()
    assert due == [{"patient_id": pid, "name": "Maria Lopez", "phone": "+1 555 0101", "email": None,
                    "due_on": due_on, "source": "personal", "last_session_id": session.json()["id"],
                    "reminder_id": None}]

    export = clinic.client.get(f"/api/patients/{pid}/fhir", headers=injector)
    assert export.status_code == 200, export.text
    check_fhir_bundle(export.json(), lot, sites)
    assert clinic.client.get(f"/api/patients/{pid}/fhir", headers=front_desk).status_code == 403

    recall = clinic.client.get(f"/api/lots/{lot['id']}/recall", headers=injector).json()
    assert [p["patient_id"] for p in recall["patients"]] == [pid]

    verified = clinic.client.get("/api/audit/verify", headers=clinic.as_role("admin")).json()
    assert verified["ok"], verified
    entries = clinic.client.get("/api/audit", params={"limit": 500}, headers=clinic.as_role("admin")).json()
    created = {e["entity"] for e in entries if e["action"] == "create"}
    assert {"patients", "consents", "consultations", "plans", "lots", "treatment_sessions", "follow_ups"} <= created
    assert [e["entity_id"] for e in entries if e["action"] == "export"] == [pid]


def check_fhir_bundle(document, lot, sites):
    """Valid R4B (parsed back by fhir.resources), every reference resolves inside the bundle,
    doses in product units (not UCUM), batch lot and expiry, FWS observations."""
    from fhir.resources.R4B.bundle import Bundle

    bundle = Bundle.model_validate(document)
    assert bundle.type == "collection"
    resources = [entry["resource"] for entry in document["entry"]]
    by_type = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    assert {"Patient", "Consent", "Procedure", "MedicationAdministration", "Medication", "BodyStructure",
            "Observation"} <= set(by_type)
    urls = {entry["fullUrl"] for entry in document["entry"]}

    def references(node):
        if isinstance(node, dict):
            if "reference" in node:
                yield node["reference"]
            for value in node.values():
                yield from references(value)
        elif isinstance(node, list):
            for value in node:
                yield from references(value)

    assert set(references(resources)) <= urls
    medication = by_type["Medication"][0]
    assert medication["batch"]["lotNumber"] == lot["lot_number"]
    assert medication["batch"]["expirationDate"].startswith(lot["expires_on"])
    doses = [m["dosage"]["dose"] for m in by_type["MedicationAdministration"]]
    assert len(doses) == len(sites) and sum(d["value"] for d in doses) == 20
    assert all(d["system"] == "urn:neuromod:product-units" and d["code"] == "botox-unit" for d in doses)
    assert not any("unitsofmeasure" in d["system"] for d in doses)
    assert len(by_type["BodyStructure"]) == len(sites)
    # baseline (consultation) and follow-up: glabella at rest and at contraction
    values = sorted((o["code"]["coding"][0]["code"], o["valueQuantity"]["value"]) for o in by_type["Observation"])
    assert values == [("fws-glabella-contraction", 0.5), ("fws-glabella-contraction", 3.0),
                      ("fws-glabella-rest", 1.0), ("fws-glabella-rest", 1.5)]


def test_predict_is_simulate_json(clinic):
    plan = {"product": "dysport", "areas": {"glabella": 50}}
    response = clinic.client.post("/api/predict", params={"days": 120}, json=plan, headers=clinic.as_role("injector"))
    assert response.status_code == 200, response.text
    assert response.json() == simulate(parse_plan(plan), days=120).to_json()
    assert "not medical advice" in response.json()["disclaimer"]


def test_history_enters_the_prediction(clinic):
    """A second plan 120 days after a session is predicted with treatment_days [0, 120]."""
    injector = clinic.as_role("injector")
    pid = register_patient(clinic)["id"]
    lot = receive_lot(clinic)
    first = TREATED - timedelta(days=120)
    response = clinic.client.post(f"/api/patients/{pid}/sessions", headers=injector, json={
        "product": "botox", "lot_id": lot["id"], "given_at": first.isoformat(),
        "injections": [{"x_mm": 0, "y_mm": 5, "units": 10}]})
    assert response.status_code == 201, response.text
    saved = clinic.client.post(f"/api/patients/{pid}/plans", headers=injector, json={
        "plan": {"product": "botox", "areas": {"glabella": 20}}, "planned_for": TREATED.isoformat()}).json()
    assert saved["document"]["treatment_days"] == [0.0, 120.0]
    assert saved["treatment_day"] == 120.0
    assert len(saved["prediction"]["days"]) == 120 + 180 + 1
    too_soon = clinic.client.post(f"/api/patients/{pid}/plans", headers=injector, json={
        "plan": {"product": "botox", "areas": {"glabella": 20}},
        "planned_for": (first + timedelta(days=30)).isoformat()})
    assert too_soon.status_code == 422
    assert "treatment_days: day 30 comes 30 days after day 0" in too_soon.json()["detail"]
