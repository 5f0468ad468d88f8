"""Passwords, sign-in sessions, CSRF and lock-out.

- Passwords are stored only as argon2id hashes (argon2-cffi, its default cost).
- Signing in creates a server-side session that expires after ``Settings.session_hours``; the
  client gets a random token once (only its SHA-256 is stored). Browsers carry it in an
  HttpOnly, SameSite=Strict cookie and must echo the session's CSRF token in the
  ``X-CSRF-Token`` header of every state-changing request; API clients send it as
  ``Authorization: Bearer <token>`` (no cookie, so no CSRF to defend against).
- ``Settings.max_failed_sign_ins`` failures in a row lock the account for
  ``Settings.lockout_minutes``; an unknown user costs the same hashing time as a known one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from neuromod.clinic import audit
from neuromod.clinic.db import Account, AuthSession, utcnow
from neuromod.clinic.settings import Settings

COOKIE_NAME = "neuromod_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_hasher = PasswordHasher()
#: verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("not a real password, only for equal timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SignInError(Exception):
    """A refused sign-in: HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SignedIn:
    """A new session: the token (shown once), its CSRF token and expiry."""

    token: str
    csrf_token: str
    session: AuthSession
    account: Account


@dataclass(frozen=True)
class Actor:
    """Who is calling: the account and how the session was presented."""

    account_id: int
    username: str
    full_name: str
    role: str
    session_id: int
    csrf_token: str
    via_cookie: bool


def sign_in(db: Session, settings: Settings, username: str, password: str) -> SignedIn:
    """Check the password and open a session, or raise :class:`SignInError` (401 or 429).

    Every attempt is one transaction: the failure counter and the audit entry are committed
    even when the sign-in is refused."""
    audit.claim(db)
    account = db.execute(select(Account).where(Account.username == username)).scalar_one_or_none()
    now = utcnow()
    if account is None or account.disabled:
        password_matches(_DUMMY_HASH, password)
        audit.append(db, None, "sign_in_failed", "account", account.id if account else None,
                     after={"username": username})
        db.commit()
        raise SignInError(401, "username/password: not recognised")
    if account.locked_until is not None and account.locked_until > now:
        audit.append(db, None, "sign_in_locked", "account", account.id, after={"username": username})
        db.commit()
        raise SignInError(429, f"username: account locked after {settings.max_failed_sign_ins} failed sign-ins; "
                               f"try again after {account.locked_until.isoformat(timespec='seconds')}")
    if not password_matches(account.password_hash, password):
        account.failed_sign_ins += 1
        locked = account.failed_sign_ins >= settings.max_failed_sign_ins
        if locked:
            account.locked_until = now + timedelta(minutes=settings.lockout_minutes)
            account.failed_sign_ins = 0
        audit.append(db, None, "sign_in_failed", "account", account.id,
                     after={"username": username, "locked": locked})
        db.commit()
        if locked:
            raise SignInError(429, f"username: account locked for {settings.lockout_minutes:g} minutes after "
                                   f"{settings.max_failed_sign_ins} failed sign-ins")
        raise SignInError(401, "username/password: not recognised")
    account.failed_sign_ins = 0
    account.locked_until = None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session = AuthSession(token_hash=token_digest(token), csrf_token=csrf, account_id=account.id,
                          created_at=now, expires_at=now + timedelta(hours=settings.session_hours))
    db.add(session)
    db.flush()
    audit.append(db, account.id, "sign_in", "auth_session", session.id, after={"expires_at": session.expires_at.isoformat()})
    db.commit()
    return SignedIn(token, csrf, session, account)


def authenticate(db: Session, bearer: str | None, cookie: str | None) -> Actor | None:
    """The actor behind a bearer token or session cookie, or None (unknown, expired, revoked, disabled)."""
    token = bearer or cookie
    if not token:
        return None
    row = db.execute(
        select(AuthSession, Account).join(Account, Account.id == AuthSession.account_id)
        .where(AuthSession.token_hash == token_digest(token))
    ).one_or_none()
    if row is None:
        return None
    session, account = row
    if session.revoked_at is not None or session.expires_at <= utcnow() or account.disabled:
        return None
    return Actor(account.id, account.username, account.full_name, account.role, session.id,
                 session.csrf_token, via_cookie=bearer is None)


def csrf_ok(actor: Actor, method: str, header_value: str | None) -> bool:
    """Cookie sessions must echo the CSRF token on state changes; bearer clients need not."""
    if method in SAFE_METHODS or not actor.via_cookie:
        return True
    return header_value is not None and hmac.compare_digest(header_value, actor.csrf_token)
