"""`neuromod add-account` (a new clinic's first admin) and `neuromod serve`'s option checks."""

from __future__ import annotations

from typer.testing import CliRunner

from neuromod.cli import app as cli


def test_first_admin_can_sign_in(database_url):
    from fastapi.testclient import TestClient

    from neuromod.clinic.app import create_app
    from neuromod.clinic.settings import Settings

    runner = CliRunner()
    created = runner.invoke(cli, ["add-account", "--db", database_url, "--username", "owner", "--role", "admin",
                                  "--full-name", "Clinic Owner"], env={"NEUROMOD_NEW_PASSWORD": "a-long-password-1"})
    assert created.exit_code == 0, created.output
    again = runner.invoke(cli, ["add-account", "--db", database_url, "--username", "owner", "--role", "admin",
                                "--full-name", "X"], env={"NEUROMOD_NEW_PASSWORD": "a-long-password-1"})
    assert again.exit_code == 2 and "--username: 'owner' is taken" in again.output
    with TestClient(create_app(Settings(database_url=database_url, warm_up=False))) as client:
        response = client.post("/api/auth/sign-in", json={"username": "owner", "password": "a-long-password-1"})
        assert response.status_code == 200 and response.json()["account"]["role"] == "admin"
        audit = client.get("/api/audit/verify", headers={"Authorization": f"Bearer {response.json()['token']}"})
        assert audit.json()["ok"]


def test_bad_account_options_name_the_option(database_url):
    runner = CliRunner()
    short = runner.invoke(cli, ["add-account", "--db", database_url, "--username", "owner", "--role", "admin",
                                "--full-name", "O"], env={"NEUROMOD_NEW_PASSWORD": "short"})
    assert short.exit_code == 2 and "--password" in short.output
    role = runner.invoke(cli, ["add-account", "--db", database_url, "--username", "owner", "--role", "boss",
                               "--full-name", "O"], env={"NEUROMOD_NEW_PASSWORD": "a-long-password-1"})
    assert role.exit_code == 2 and "--role" in role.output and "Traceback" not in role.output


def test_serve_refuses_a_bad_setting():
    result = CliRunner().invoke(cli, ["serve", "--db", "sqlite:///unused.sqlite"], env={"NEUROMOD_SESSION_HOURS": "-3"})
    assert result.exit_code == 2 and "NEUROMOD_SESSION_HOURS: must be 0.01-720" in result.output
