"""The clinic pages without a browser: who may open what, lots' expiry flags, recall, due list,
audit check, and the evaluate endpoint's refusals."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from neuromod.clinic.app import create_app
from neuromod.clinic.db import make_engine, make_sessions, upgrade
from neuromod.clinic.demo import DEMO_ACCOUNTS, seed_demo
from neuromod.clinic.settings import Settings, sqlite_url

ACCOUNTS = {demo.role: demo for demo in DEMO_ACCOUNTS}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    url = sqlite_url(tmp_path_factory.mktemp("clinic") / "clinic.sqlite")
    engine = make_engine(url)
    upgrade(engine)
    seed_demo(make_sessions(engine))
    engine.dispose()
    return create_app(Settings(database_url=url, warm_up=False))


def signed_in(app, role: str) -> TestClient:
    client = TestClient(app)
    answer = client.post("/api/auth/sign-in", json={"username": ACCOUNTS[role].username,
                                                    "password": ACCOUNTS[role].password})
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]  # a browser: cookie + CSRF header
    return client


def test_anonymous_is_sent_to_sign_in(app):
    with TestClient(app) as client:
        answer = client.get("/patients/1?tab=x", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/sign-in?next=%2Fpatients%2F1%3Ftab%3Dx"
        page = client.get("/sign-in?next=//evil.example/")
        assert 'data-next="/patients"' in page.text  # no open redirect


def test_pages_follow_the_policy_table(app):
    with TestClient(app):
        expected = {"front_desk": {"/patients": 200, "/due": 200, "/patients/1": 403, "/patients/1/plan": 403,
                                   "/lots": 403, "/lots/recall": 403, "/audit": 403},
                    "injector": {"/patients/1": 200, "/patients/1/plan": 200, "/lots": 200, "/audit": 403},
                    "admin": {"/audit": 200, "/patients/1/plan": 200}}
        for role, pages in expected.items():
            client = signed_in(app, role)
            for path, status in pages.items():
                answer = client.get(path)
                assert answer.status_code == status, (role, path)
                if status == 403:
                    assert f"role {role} may not" in answer.text
        assert signed_in(app, "injector").get("/patients/999").status_code == 404


def test_lots_flag_expiry_and_recall_finds_the_patients(app):
    with TestClient(app):
        injector = signed_in(app, "injector")
        for number, days in (("SOON1", 10), ("OLD1", -3)):
            created = injector.post("/api/lots", json={"product": "botox", "lot_number": number, "vial_units": 100,
                                                       "expires_on": (date.today() + timedelta(days=days)).isoformat()})
            assert created.status_code == 201, created.text
        page = injector.get("/lots").text
        assert "expires in 10 days" in page and f"expired {(date.today() - timedelta(days=3)).isoformat()}" in page
        recall = injector.get("/lots/recall", params={"lot_number": "C1234A5"}).text
        assert "Maria Lopez" in recall and "James Okafor" in recall and "Chen Wei" not in recall  # never treated
        assert "No lot NOPE on record" in injector.get("/lots/recall", params={"lot_number": "NOPE"}).text


def test_due_list_and_audit_page(app):
    with TestClient(app):
        due = signed_in(app, "front_desk").get("/due", params={"before": (date.today() + timedelta(days=60)).isoformat()})
        assert "James Okafor" in due.text  # treated 7 months ago: past the label interval
        assert "Chen Wei" not in due.text
        assert "Hash chain verified" in signed_in(app, "admin").get("/audit").text


def test_evaluate_refuses_a_bad_draft_naming_the_field(app):
    with TestClient(app):
        injector = signed_in(app, "injector")
        off_face = injector.post("/api/patients/1/evaluate", json={"plan": {
            "product": "botox", "injections": [{"x_mm": 150, "y_mm": 0, "units": 4}]}})
        assert off_face.status_code == 422 and "injections.0.x_mm/y_mm" in off_face.json()["detail"]
        too_much = injector.post("/api/patients/1/evaluate", json={"plan": {
            "product": "botox", "injections": [{"site": "glabella_procerus", "units": 40}]}})
        assert too_much.status_code == 422 and "injections.0.units" in too_much.json()["detail"]
        assert signed_in(app, "front_desk").post("/api/patients/1/evaluate", json={"plan": {
            "product": "botox", "areas": {"glabella": 20}}}).status_code == 403
