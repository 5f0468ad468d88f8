"""Clinic fixtures: every storage and API test runs on SQLite and, when
``NEUROMOD_TEST_POSTGRES_URL`` is set (CI sets it, see ``.ci/start-postgres``), on PostgreSQL too.
Locally PostgreSQL is skipped when the variable is absent; under CI it is never skipped."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from neuromod.clinic.db import Account, make_engine, make_sessions, upgrade
from neuromod.clinic.security import hash_password
from neuromod.clinic.settings import Settings, sqlite_url

POSTGRES_ENV = "NEUROMOD_TEST_POSTGRES_URL"
IN_CI = bool(os.environ.get("CI"))

#: staff of the test clinic: role -> (username, password)
STAFF = {"admin": ("admin", "admin-password-1"), "injector": ("injector", "injector-password-1"),
         "front_desk": ("frontdesk", "frontdesk-password-1")}


def _postgres_database(base_url: str):
    """Create a fresh database on the server of ``base_url``; yields its URL, drops it after."""
    url = make_url(base_url)
    name = f"neuromod_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database on each backend."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "clinic.sqlite")
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        if IN_CI:
            pytest.fail(f"{POSTGRES_ENV} is not set: CI must run the PostgreSQL tests (.ci/start-postgres)")
        pytest.skip(f"PostgreSQL: set {POSTGRES_ENV} to run (CI does)")
    yield from _postgres_database(base)


@pytest.fixture
def settings(database_url):
    return Settings(database_url=database_url, warm_up=False, max_failed_sign_ins=3)


@pytest.fixture(scope="session")
def staff_hashes():
    """argon2 hashes of the staff passwords, computed once (hashing is slow on purpose)."""
    return {role: hash_password(password) for role, (_, password) in STAFF.items()}


@pytest.fixture
def staff(settings, staff_hashes):
    """The migrated database with one account per role; role -> account id."""
    engine = make_engine(settings.database_url)
    upgrade(engine)
    ids = {}
    with make_sessions(engine)() as db:
        for role, (username, _) in STAFF.items():
            account = Account(username=username, full_name=f"Test {role}", role=role,
                              password_hash=staff_hashes[role])
            db.add(account)
            db.flush()
            ids[role] = account.id
        db.commit()
    engine.dispose()
    return ids


@dataclass
class Clinic:
    """A running app (TestClient) and bearer headers per role (signed in on first use)."""

    client: object
    headers: dict[str, dict[str, str]]
    staff: dict[str, int]
    settings: Settings

    def as_role(self, role: str) -> dict[str, str]:
        if role not in self.headers:
            self.headers[role] = sign_in(self.client, role)
            self.client.cookies.clear()  # API clients use the bearer token; anonymous calls carry nothing
        return self.headers[role]


def sign_in(client, role: str) -> dict[str, str]:
    username, password = STAFF[role]
    response = client.post("/api/auth/sign-in", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
def clinic(settings, staff):
    from fastapi.testclient import TestClient

    from neuromod.clinic.app import create_app

    with TestClient(create_app(settings)) as client:
        yield Clinic(client, {}, staff, settings)
