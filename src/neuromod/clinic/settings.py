"""Settings of the clinic app, from environment variables with safe defaults.

``NEUROMOD_DATABASE_URL``   SQLAlchemy URL (default: a SQLite file ``var/clinic.sqlite`` under
                            the working directory; ``postgresql+psycopg://...`` for PostgreSQL)
``NEUROMOD_SESSION_HOURS``  lifetime of a sign-in, hours (default 8: one clinic day), 0.01-720
``NEUROMOD_COOKIE_SECURE``  ``1`` to send the session cookie over HTTPS only (set behind TLS)
``NEUROMOD_MAX_FAILED_SIGN_INS``  failed sign-ins in a row before the account locks (default 5)
``NEUROMOD_LOCKOUT_MINUTES``      how long it stays locked (default 15)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_DATABASE_PATH = Path("var") / "clinic.sqlite"


def sqlite_url(path: str | Path) -> str:
    """The SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{Path(path)}"


@dataclass(frozen=True)
class Settings:
    """Everything the app factory needs; build with :meth:`from_env` or directly in tests."""

    database_url: str = sqlite_url(DEFAULT_DATABASE_PATH)
    session_hours: float = 8.0
    cookie_secure: bool = False
    max_failed_sign_ins: int = 5
    lockout_minutes: float = 15.0
    #: largest request body accepted (bytes): a plan or session is a few kB.
    max_body_bytes: int = 1_000_000
    #: simulate once at start so the first prediction is not slowed by compilation.
    warm_up: bool = True

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        settings = cls(
            database_url=env.get("NEUROMOD_DATABASE_URL", cls.database_url),
            session_hours=_number(env, "NEUROMOD_SESSION_HOURS", cls.session_hours, 0.01, 720),
            cookie_secure=env.get("NEUROMOD_COOKIE_SECURE", "0") == "1",
            max_failed_sign_ins=int(_number(env, "NEUROMOD_MAX_FAILED_SIGN_INS", cls.max_failed_sign_ins, 1, 100)),
            lockout_minutes=_number(env, "NEUROMOD_LOCKOUT_MINUTES", cls.lockout_minutes, 0, 10080),
        )
        return replace(settings, **overrides)


class SettingsError(ValueError):
    """A setting outside its allowed range; the message names the variable."""


def _number(env: dict, name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: must be a number {low:g}-{high:g}, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}: must be {low:g}-{high:g}, got {value:g}")
    return value
