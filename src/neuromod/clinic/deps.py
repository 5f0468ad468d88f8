"""What every route shares: the database session, the caller, the permission guard, errors.

A route declares its permission once, ``actor: Actor = Depends(require("clinical.read"))``;
the app factory reads it back from every route into the OpenAPI document (``x-permission``)
and refuses to start if a route names none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from neuromod.clinic import audit
from neuromod.clinic.db import write_lock
from neuromod.clinic.policy import PERMISSIONS, PUBLIC, allowed
from neuromod.clinic.security import (
    COOKIE_NAME,
    CSRF_HEADER,
    Actor,
    authenticate,
    csrf_ok,
)


class ClinicError(Exception):
    """A refused request: HTTP status and one line naming the field and what is allowed."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def invalid(message: str) -> ClinicError:
    """A 422: the body is well-formed but breaks a rule (the message names the field)."""
    return ClinicError(422, message)


def not_found(field: str, what: str, ident: object) -> ClinicError:
    return ClinicError(404, f"{field}: no {what} {ident}")


def get_db(request: Request) -> Iterator[Session]:
    db = request.app.state.sessions()
    try:
        yield db
    finally:
        db.close()


@contextmanager
def writing(db: Session) -> Iterator[Session]:
    """One write transaction: ends any read, claims the writer's lock first (see
    :func:`neuromod.clinic.audit.claim`), commits at the end, rolls back on any error."""
    db.commit()
    with write_lock(db.get_bind()):
        try:
            audit.claim(db)
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_actor(request: Request, db: Session = Depends(get_db)) -> Actor | None:
    actor = authenticate(db, _bearer(request), request.cookies.get(COOKIE_NAME))
    db.commit()  # end the read: a write that follows starts a fresh transaction
    return actor


@cache
def require(permission: str) -> Callable[..., Any]:
    """The dependency guarding a route with ``permission`` (the same object per permission)."""
    if permission != PUBLIC and permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")

    def guard(request: Request, actor: Actor | None = Depends(current_actor)) -> Actor | None:
        if permission == PUBLIC:
            return actor
        if actor is None:
            raise ClinicError(401, "authorization: sign in first (POST /api/auth/sign-in), then send the "
                                   "session cookie or an Authorization: Bearer token",
                              headers={"WWW-Authenticate": "Bearer"})
        if not allowed(actor.role, permission):
            raise ClinicError(403, f"role: {actor.role} may not {PERMISSIONS[permission]} ({permission})")
        if not csrf_ok(actor, request.method, request.headers.get(CSRF_HEADER)):
            raise ClinicError(403, f"{CSRF_HEADER}: missing or wrong; send the csrf_token given at sign-in")
        return actor

    guard.permission = permission  # type: ignore[attr-defined]
    return guard


def route_permission(route: APIRoute) -> str:
    """The policy permission a route names (through :func:`neuromod.clinic.deps.require`)."""
    found = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        if hasattr(dependency.call, "permission"):
            found.add(dependency.call.permission)
        stack.extend(dependency.dependencies)
    if len(found) != 1:
        raise RuntimeError(f"route {route.methods} {route.path} must name exactly one permission, names {found}")
    return found.pop()


def stamp_permissions(router: APIRouter) -> None:
    """Copy each route's permission into its OpenAPI operation (``x-permission``); a route that
    names none (or several) stops the app from starting."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            route.openapi_extra = {**(route.openapi_extra or {}), "x-permission": route_permission(route)}
