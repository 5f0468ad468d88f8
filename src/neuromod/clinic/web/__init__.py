"""The clinic's pages (face chart, patient timeline, clinic pages): templates in ``templates/``,
vendored static files in ``static/`` (nothing is fetched from the internet at run time).
:func:`register_pages` is called by the app factory after the API routes; pages are guarded
by a policy permission like the API routes (:func:`neuromod.clinic.web.pages.page`)."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from neuromod.clinic.deps import stamp_permissions
from neuromod.clinic.settings import Settings


def register_pages(app: FastAPI, settings: Settings) -> None:
    """Mount the page routes (each naming one permission) and the static files under ``/static``."""
    from neuromod.clinic.web import pages

    stamp_permissions(pages.router)
    app.include_router(pages.router)
    app.add_exception_handler(pages.PageRefused, pages.refused_handler)
    app.mount("/static", StaticFiles(directory=str(resources.files("neuromod.clinic.web").joinpath("static"))),
              name="static")
