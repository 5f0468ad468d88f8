"""The audit chain: `neuromod audit verify` passes on an honest log and names the entry that
was edited or deleted (payload, a column, a middle entry, the tail)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from neuromod.cli import app as cli
from neuromod.clinic.db import make_engine
from tests.clinic.test_clinic_day import register_patient


@pytest.fixture
def logged(clinic):
    """A clinic with a few audited writes (sign-ins, patients, an update, a void)."""
    patient = register_patient(clinic)
    register_patient(clinic, given_name="Ann")
    headers = clinic.as_role("front_desk")
    assert clinic.client.patch(f"/api/patients/{patient['id']}", json={"phone": "+1 555 0199"},
                               headers=headers).status_code == 200
    assert clinic.client.post(f"/api/patients/{patient['id']}/void", json={"reason": "duplicate record"},
                              headers=headers).status_code == 200
    return clinic


def verify(url):
    return CliRunner().invoke(cli, ["audit", "verify", "--db", url])


def tamper(url, statement):
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()


def test_honest_log_verifies_with_before_and_after(logged):
    url = logged.settings.database_url
    result = verify(url)
    assert result.exit_code == 0, result.output
    assert "chain intact" in result.output
    entries = logged.client.get("/api/audit", headers=logged.as_role("admin")).json()
    update = next(e for e in entries if e["action"] == "update" and e["entity"] == "patients")
    assert update["before"]["phone"] == "+1 555 0101" and update["after"]["phone"] == "+1 555 0199"
    assert update["actor_id"] == logged.staff["front_desk"]
    void = next(e for e in entries if e["action"] == "void")
    assert void["after"]["void_reason"] == "duplicate record"


@pytest.mark.parametrize("statement, message", [
    ("UPDATE audit_entries SET payload = replace(payload, '0101', '0000') WHERE seq = {seq}",
     "entry {seq}: payload edited"),
    ("UPDATE audit_entries SET actor_id = 1 WHERE seq = {seq}", "entry {seq}: column(s) actor_id edited"),
    ("DELETE FROM audit_entries WHERE seq = {seq}", "entry {seq}: missing"),
    ("DELETE FROM audit_entries WHERE seq = (SELECT max(seq) FROM audit_entries)", "head:"),
])
def test_tampering_is_detected(logged, statement, message):
    """The target: the entry recording the phone number change (by the front desk, not account 1)."""
    url = logged.settings.database_url
    entries = logged.client.get("/api/audit", headers=logged.as_role("admin")).json()
    seq = next(e["seq"] for e in entries if e["action"] == "update" and e["entity"] == "patients")
    statement, message = statement.format(seq=seq), message.format(seq=seq)
    tamper(url, statement)
    result = verify(url)
    assert result.exit_code == 1
    assert message in result.output, result.output
