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
    echo(f"neuromod clinic API on http://{shown}:{port}/api/  (interactive docs: http://{shown}:{port}/docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def verify_database(url: str) -> Verification:
    engine = make_engine(url)
    try:
        upgrade(engine)
        with make_sessions(engine)() as db:
            return verify(db)
    finally:
        engine.dispose()
