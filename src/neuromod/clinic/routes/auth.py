"""Signing in and out: ``POST /api/auth/sign-in`` gives a bearer token and sets the session cookie."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import update
from sqlalchemy.orm import Session

from neuromod.clinic import audit
from neuromod.clinic.db import AuthSession, utcnow
from neuromod.clinic.deps import ClinicError, get_db, require, writing
from neuromod.clinic.policy import POLICY, PUBLIC
from neuromod.clinic.security import COOKIE_NAME, Actor, SignInError, sign_in
from neuromod.schemas.clinic import SignIn

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/sign-in")
def sign_in_route(body: SignIn, request: Request, response: Response, db: Session = Depends(get_db),
                  _: Actor | None = Depends(require(PUBLIC))) -> dict:
    """Open a session: answers the bearer ``token`` and the ``csrf_token`` (also sets an HttpOnly cookie)."""
    settings = request.app.state.settings
    db.commit()
    try:
        signed = sign_in(db, settings, body.username, body.password)
    except SignInError as error:
        raise ClinicError(error.status, error.message) from None
    response.set_cookie(COOKIE_NAME, signed.token, max_age=int(settings.session_hours * 3600), httponly=True,
                        samesite="strict", secure=settings.cookie_secure, path="/")
    return {"token": signed.token, "csrf_token": signed.csrf_token, "expires_at": signed.session.expires_at.isoformat(),
            "account": {"id": signed.account.id, "username": signed.account.username,
                        "full_name": signed.account.full_name, "role": signed.account.role}}


@router.post("/sign-out")
def sign_out_route(response: Response, db: Session = Depends(get_db),
                   actor: Actor = Depends(require("session"))) -> dict:
    with writing(db):
        db.execute(update(AuthSession).where(AuthSession.id == actor.session_id).values(revoked_at=utcnow()))
        audit.append(db, actor.account_id, "sign_out", "auth_session", actor.session_id)
    response.delete_cookie(COOKIE_NAME, path="/")
    return {"signed_out": True}


@router.get("/me")
def me_route(actor: Actor = Depends(require("session"))) -> dict:
    """Who is signed in, with the permissions of their role (for clients to show what they may do)."""
    return {"id": actor.account_id, "username": actor.username, "full_name": actor.full_name, "role": actor.role,
            "permissions": sorted(POLICY[actor.role]), "csrf_token": actor.csrf_token}
