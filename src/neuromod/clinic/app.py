"""The app factory: ``create_app(settings)`` -> the FastAPI clinic app.

At start the database is brought to the latest migration (``alembic upgrade head``) and the
model is compiled once (first prediction fast). Every route under ``/api/`` names one policy
permission; the factory copies it into the OpenAPI operation (``x-permission``) and refuses to
start when a route has none. Errors are one line naming the field: ``{"detail": "..."}`` with
the status (401 not signed in, 403 role or CSRF, 404, 409, 413, 422, 429).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send
from threadpoolctl import threadpool_limits

from neuromod.clinic.db import make_engine, make_sessions, upgrade
from neuromod.clinic.deps import ClinicError, stamp_permissions
from neuromod.clinic.routes import (
    accounts,
    audit,
    auth,
    consents,
    consultations,
    follow_ups,
    lots,
    patients,
    plans,
    predict,
    prediction,
    reminders,
    sessions,
)
from neuromod.clinic.settings import Settings
from neuromod.clinic.web import register_pages
from neuromod.model.simulate import DISCLAIMER
from neuromod.schemas.plan import format_validation_error

ROUTERS = (auth, accounts, patients, consents, consultations, plans, lots, sessions, follow_ups, reminders,
           predict, prediction, audit)


class _RequestErrors:
    """A request's validation errors with the ``body``/``query`` prefix dropped, for
    :func:`neuromod.schemas.plan.format_validation_error` (the CLI's one-line format)."""

    def __init__(self, error: RequestValidationError) -> None:
        self._errors = error.errors()

    def errors(self) -> list[dict]:
        items = []
        for item in self._errors:
            loc = tuple(item.get("loc", ()))
            if loc and loc[0] == "body":
                loc = loc[1:]
            items.append({**item, "loc": loc})
        return items


def _body_model(request: Request) -> type[BaseModel] | None:
    """The route's request-body schema, so a 422 names each field's allowed range as the CLI does."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    annotation = getattr(getattr(body_field, "field_info", None), "annotation", None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _validation_handler(request: Request, error: RequestValidationError) -> JSONResponse:
    errors = _RequestErrors(error).errors()
    detail = format_validation_error(_RequestErrors(error), _body_model(request))  # type: ignore[arg-type]
    fields = [{"loc": list(item["loc"]), "msg": item["msg"].removeprefix("Value error, "), "type": item["type"]}
              for item in errors]
    return JSONResponse({"detail": detail, "errors": fields}, status_code=422)


def _clinic_error_handler(request: Request, error: ClinicError) -> JSONResponse:
    return JSONResponse({"detail": error.message}, status_code=error.status, headers=error.headers)


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` (413) before the app reads them whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await JSONResponse({"detail": f"body: larger than {self.max_bytes} bytes"}, status_code=413)(
                scope, receive, send)
            return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise ClinicError(413, f"body: larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)


def warm_up() -> None:
    """Before the first request (``Settings.warm_up``): load numba and simulate the label plan once.
    A server pays numba's import (~1 s) once and then runs the JIT's code, faster per call than the
    ahead-of-time kernels a short command uses (:func:`neuromod.model._jit.run_kernel`); the one
    simulation loads the data files and the kernels' caches, so the first prediction is not slowed."""
    from neuromod.model._jit import load_numba
    from neuromod.model.simulate import simulate
    from neuromod.schemas.plan import parse_plan

    load_numba()
    simulate(parse_plan({"product": "botox", "areas": {"glabella": 20}}), days=180)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # requests run concurrently on threads: one BLAS thread each, not a pool per request
        threadpool_limits(limits=1, user_api="blas")
        upgrade(engine)
        if settings.warm_up:
            warm_up()
        yield
        engine.dispose()

    app = FastAPI(title="neuromod clinic", version="0.1.0", lifespan=lifespan,
                  description="Clinic records and predictions. " + DISCLAIMER)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_sessions(engine)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ClinicError, _clinic_error_handler)
    for module in ROUTERS:
        stamp_permissions(module.router)
        app.include_router(module.router)
    register_pages(app, settings)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
