"""Running the clinic: ``neuromod serve`` and ``neuromod audit verify`` call these (lazily)."""

from __future__ import annotations

from collections.abc import Callable

from neuromod.clinic.audit import Verification, verify
from neuromod.clinic.db import make_engine, make_sessions, upgrade
from neuromod.clinic.demo import DEMO_ACCOUNTS, seed_demo
from neuromod.clinic.settings import Settings


def serve(settings: Settings, host: str, port: int, demo: bool, echo: Callable[[str], None] = print) -> None:
    """Migrate, optionally seed the demo clinic (printing its sign-ins), then serve with uvicorn."""
    import uvicorn

    from neuromod.clinic.app import create_app

    engine = make_engine(settings.database_url)
    upgrade(engine)
    if demo:
        seeded = seed_demo(make_sessions(engine))
        echo("demo clinic seeded; sign in as:" if seeded else
             "demo clinic already seeded; its sign-ins (unless changed since):")
        for account in DEMO_ACCOUNTS:
            echo(f"  {account.role:<10} username {account.username:<10} password {account.password}")
    engine.dispose()
    shown = "localhost" if host in ("0.0.0.0", "127.0.0.1") else host
    echo(f"neuromod clinic on http://{shown}:{port}/  (API under /api/, interactive docs at /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def verify_database(url: str) -> Verification:
    engine = make_engine(url)
    try:
        upgrade(engine)
        with make_sessions(engine)() as db:
            return verify(db)
    finally:
        engine.dispose()


def create_account(url: str, username: str, full_name: str, role: str, password: str) -> int:
    """Create a staff account directly in the database (the first admin of a new clinic);
    checked by the same schema as ``POST /api/accounts`` and audited. Returns the id."""
    from sqlalchemy import select

    from neuromod.clinic import audit
    from neuromod.clinic.db import Account, record_dict
    from neuromod.clinic.deps import ClinicError, writing
    from neuromod.clinic.security import hash_password
    from neuromod.schemas.clinic import AccountCreate

    body = AccountCreate(username=username, full_name=full_name, role=role, password=password)
    engine = make_engine(url)
    try:
        upgrade(engine)
        with make_sessions(engine)() as db, writing(db):
            if db.execute(select(Account.id).where(Account.username == body.username)).first():
                raise ClinicError(409, f"--username: {body.username!r} is taken")
            account = Account(username=body.username, full_name=body.full_name, role=body.role,
                              password_hash=hash_password(body.password))
            db.add(account)
            db.flush()
            audit.append(db, None, "create", "accounts", account.id, after=record_dict(account))
            return account.id
    finally:
        engine.dispose()
