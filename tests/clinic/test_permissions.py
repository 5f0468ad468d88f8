"""The role x route matrix, generated from the OpenAPI document: every route, every role and
anonymous, answered as the policy table says (401 anonymous, 403 a role without the
permission, anything else when allowed). Also: CSRF for cookie sessions, lock-out, expiry."""

from __future__ import annotations

import re

import pytest

from neuromod.clinic.policy import POLICY, PUBLIC, allowed
from tests.clinic.conftest import STAFF


def operations(client):
    for path, methods in client.get("/openapi.json").json()["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def test_every_route_names_a_known_permission(clinic):
    ops = list(operations(clinic.client))
    assert len(ops) >= 40
    for method, path, operation in ops:
        assert path.startswith("/api/"), path
        assert "x-permission" in operation, (method, path)


def test_role_route_matrix(clinic):
    """Each route with placeholder ids and an empty body: the guard answers before validation."""
    for role in POLICY:
        clinic.as_role(role)
    checked = 0
    # signing out revokes the session: check that route last
    ordered = sorted(operations(clinic.client), key=lambda op: op[1] == "/api/auth/sign-out")
    for method, path, operation in ordered:
        permission = operation["x-permission"]
        url = re.sub(r"\{[a-z_]+\}", "999999", path)
        for role in (None, *POLICY):
            headers = clinic.as_role(role) if role else {}
            response = clinic.client.request(method, url, headers=headers, json={})
            if permission == PUBLIC:
                assert response.status_code not in (401, 403), (method, path, role, response.text)
            elif role is None:
                assert response.status_code == 401, (method, path, response.text)
            elif allowed(role, permission):
                assert response.status_code not in (401, 403), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                assert permission in response.json()["detail"]
            checked += 1
    assert checked >= 40 * 4


def test_front_desk_sees_contacts_not_clinical_notes(clinic):
    front_desk = clinic.as_role("front_desk")
    patient = clinic.client.post("/api/patients", headers=front_desk, json={
        "given_name": "A", "family_name": "B", "birth_date": "1980-01-01", "sex": "female"}).json()
    assert clinic.client.get(f"/api/patients/{patient['id']}", headers=front_desk).status_code == 200
    for resource in ("consultations", "plans", "sessions", "follow-ups"):
        assert clinic.client.get(f"/api/patients/{patient['id']}/{resource}", headers=front_desk).status_code == 403
    assert clinic.client.get(f"/api/patients/{patient['id']}/reminders", headers=front_desk).status_code == 200


def test_anonymous_reads_no_patient_data(clinic):
    response = clinic.client.get("/api/patients")
    assert response.status_code == 401
    assert "sign in" in response.json()["detail"]
    assert clinic.client.get("/api/patients", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_cookie_session_needs_csrf_token_for_changes(clinic):
    from fastapi.testclient import TestClient

    with TestClient(clinic.client.app) as browser:
        username, password = STAFF["front_desk"]
        signed = browser.post("/api/auth/sign-in", json={"username": username, "password": password})
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert browser.get("/api/patients").status_code == 200  # reads need no CSRF token
        body = {"given_name": "C", "family_name": "D", "birth_date": "1980-01-01", "sex": "male"}
        refused = browser.post("/api/patients", json=body)
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
        assert browser.post("/api/patients", json=body, headers={"X-CSRF-Token": "wrong"}).status_code == 403
        accepted = browser.post("/api/patients", json=body, headers={"X-CSRF-Token": signed.json()["csrf_token"]})
        assert accepted.status_code == 201
        assert browser.post("/api/auth/sign-out", headers={"X-CSRF-Token": signed.json()["csrf_token"]}).status_code == 200
        browser.cookies.set("neuromod_session", signed.json()["token"])
        assert browser.get("/api/patients").status_code == 401  # revoked


def test_failed_sign_ins_lock_the_account(clinic):
    """settings.max_failed_sign_ins is 3 in these tests; the right password is refused while locked."""
    username, password = STAFF["injector"]
    codes = [clinic.client.post("/api/auth/sign-in", json={"username": username, "password": "wrong-password"}
                                ).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    locked = clinic.client.post("/api/auth/sign-in", json={"username": username, "password": password})
    assert locked.status_code == 429 and "locked" in locked.json()["detail"]
    unknown = clinic.client.post("/api/auth/sign-in", json={"username": "nobody", "password": "x"})
    assert unknown.status_code == 401


def test_sessions_expire(settings, staff):
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from neuromod.clinic.app import create_app

    with TestClient(create_app(replace(settings, session_hours=-1))) as client:
        username, password = STAFF["admin"]
        token = client.post("/api/auth/sign-in", json={"username": username, "password": password}).json()["token"]
        assert client.get("/api/patients", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize("role", sorted(POLICY))
def test_me_lists_the_role_permissions(clinic, role):
    me = clinic.client.get("/api/auth/me", headers=clinic.as_role(role)).json()
    assert me["role"] == role and me["permissions"] == sorted(POLICY[role])
