"""Session rules: each refusal names its field, writes nothing (lot stock, sessions, audit), and
the plan rules give the CLI's own messages."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from neuromod.schemas.plan import PlanError, parse_plan
from tests.clinic.test_clinic_day import TREATED, receive_lot, register_patient


def session_body(lot_id, **overrides):
    return {"product": "botox", "lot_id": lot_id, "given_at": TREATED.isoformat(),
            "injections": [{"site": "glabella_procerus", "units": 4}], **overrides}


def state(clinic, pid, lot_id):
    admin = clinic.as_role("admin")
    return (clinic.client.get(f"/api/lots/{lot_id}", headers=admin).json()["units_left"],
            len(clinic.client.get(f"/api/patients/{pid}/sessions", headers=admin).json()),
            clinic.client.get("/api/audit/verify", headers=admin).json()["entries"])


def cli_message(document):
    with pytest.raises(PlanError) as error:
        parse_plan(document)
    return str(error.value)


@pytest.fixture
def ready(clinic):
    return clinic, register_patient(clinic)["id"], receive_lot(clinic)["id"]


def refused(clinic, pid, lot_id, body, field):
    before = state(clinic, pid, lot_id)
    response = clinic.client.post(f"/api/patients/{pid}/sessions", json=body, headers=clinic.as_role("injector"))
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(field), response.json()["detail"]
    assert state(clinic, pid, lot_id) == before
    return response.json()["detail"]


def test_expired_lot(ready):
    clinic, pid, _ = ready
    lot = receive_lot(clinic, lot_number="OLD1", expires_on=(TREATED.date() - timedelta(days=1)).isoformat())
    assert "expired on" in refused(clinic, pid, lot["id"], session_body(lot["id"]), "lot_id")


def test_other_product_lot(ready):
    clinic, pid, _ = ready
    lot = receive_lot(clinic, product="dysport", lot_number="D1", vial_units=300, saline_ml=1.5)
    assert "is dysport, not botox" in refused(clinic, pid, lot["id"], session_body(lot["id"]), "lot_id")


def test_too_few_units_left(ready):
    clinic, pid, _ = ready
    lot = receive_lot(clinic, lot_number="SMALL", vial_units=10)
    body = session_body(lot["id"], injections=[{"site": "glabella_procerus", "units": 6}, {"site": "glabella_corrugator_medial_left",
                                                                                    "units": 6}])
    assert "has 10 units left; this session needs 12" in refused(clinic, pid, lot["id"], body, "lot_id")


def test_points_fail_the_cli_plan_rules_with_the_same_message(ready):
    clinic, pid, lot_id = ready
    bad = [{"site": "glabella_procerus", "units": 40}, {"x_mm": 500, "y_mm": 0, "units": 2}, {"site": "nowhere", "units": 2}]
    detail = refused(clinic, pid, lot_id, session_body(lot_id, injections=bad), "injections")
    assert detail == cli_message({"product": "botox", "vial_units": 100, "saline_ml": 2.5, "injections": bad})


def test_label_maximum_per_session(ready):
    clinic, pid, _ = ready
    lot = receive_lot(clinic, lot_number="BIG", vials=10)
    face = [{"x_mm": x, "y_mm": y, "units": 25} for x in (-30, -15, 0, 15, 30) for y in (20, 35, 50, 60)]
    detail = refused(clinic, pid, lot["id"], session_body(lot["id"], injections=face), "units (session total)")
    assert "exceeds the label maximum of 400" in detail


def test_label_interval(ready):
    clinic, pid, lot_id = ready
    injector = clinic.as_role("injector")
    first = clinic.client.post(f"/api/patients/{pid}/sessions", json=session_body(lot_id), headers=injector)
    assert first.status_code == 201
    soon = session_body(lot_id, given_at=(TREATED + timedelta(days=60)).isoformat())
    assert "label: repeat no sooner than 90 days" in refused(clinic, pid, lot_id, soon, "given_at")
    later = session_body(lot_id, given_at=(TREATED + timedelta(days=91)).isoformat())
    assert clinic.client.post(f"/api/patients/{pid}/sessions", json=later, headers=injector).status_code == 201


def test_void_keeps_the_record_and_frees_the_interval(ready):
    clinic, pid, lot_id = ready
    injector = clinic.as_role("injector")
    session = clinic.client.post(f"/api/patients/{pid}/sessions", json=session_body(lot_id), headers=injector).json()
    voided = clinic.client.post(f"/api/sessions/{session['id']}/void", json={"reason": "entered for the wrong patient"},
                                headers=injector)
    assert voided.status_code == 200 and voided.json()["void_reason"] == "entered for the wrong patient"
    assert clinic.client.get(f"/api/sessions/{session['id']}", headers=injector).json()["voided_at"] is not None
    assert clinic.client.get(f"/api/patients/{pid}/sessions", headers=injector).json() == []
    again = clinic.client.post(f"/api/patients/{pid}/sessions", json=session_body(lot_id), headers=injector)
    assert again.status_code == 201
    twice = clinic.client.post(f"/api/sessions/{session['id']}/void", json={"reason": "again"}, headers=injector)
    assert twice.status_code == 404 or twice.status_code == 409


def test_plan_of_another_patient(ready):
    clinic, pid, lot_id = ready
    injector = clinic.as_role("injector")
    other = register_patient(clinic, given_name="Other")["id"]
    plan = clinic.client.post(f"/api/patients/{other}/plans", headers=injector,
                              json={"plan": {"product": "botox", "areas": {"glabella": 20}}}).json()
    assert "belongs to another patient" in refused(clinic, pid, lot_id, session_body(lot_id, plan_id=plan["id"]),
                                                   "plan_id")


def test_front_desk_cannot_be_the_injector(ready):
    clinic, pid, lot_id = ready
    body = session_body(lot_id, injector_id=clinic.staff["front_desk"])
    assert "not an active clinician" in refused(clinic, pid, lot_id, body, "injector_id")


def test_plan_body_may_not_carry_patient_or_schedule(ready):
    clinic, pid, _ = ready
    for extra in ({"patient": {"age": 30}}, {"treatment_days": [0, 100]}):
        response = clinic.client.post(f"/api/patients/{pid}/plans", headers=clinic.as_role("injector"),
                                      json={"plan": {"product": "botox", "areas": {"glabella": 20}, **extra}})
        assert response.status_code == 422 and response.json()["detail"].startswith(f"plan.{next(iter(extra))}")
    assert date.today()  # the record is unchanged: no plans saved
    assert clinic.client.get(f"/api/patients/{pid}/plans", headers=clinic.as_role("injector")).json() == []


def test_reconstitution_sets_the_dilution_the_points_are_checked_at(ready):
    """A lot reconstituted with 1 mL: 0.1 mL is 10 units, so 0.1 mL written as 4 units disagrees."""
    clinic, pid, lot_id = ready
    injector = clinic.as_role("injector")
    changed = clinic.client.patch(f"/api/lots/{lot_id}", headers=injector,
                                  json={"saline_ml": 1.0, "reconstituted_at": TREATED.isoformat()})
    assert changed.status_code == 200 and changed.json()["saline_ml"] == 1.0
    body = session_body(lot_id, injections=[{"site": "glabella_procerus", "units": 4, "volume_ml": 0.1}])
    assert "disagrees with the dilution of 100 units/mL" in refused(clinic, pid, lot_id, body, "injections.0")
