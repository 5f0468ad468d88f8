"""The clinic's pages (face chart, patient timeline, clinic pages): templates in ``templates/``,
vendored static files in ``static/``. :func:`register_pages` is called by the app factory
after the API routes; pages are added here (issue 13), each guarded by a policy permission
through :func:`neuromod.clinic.deps.require` like the API routes."""

from __future__ import annotations

from fastapi import FastAPI

from neuromod.clinic.settings import Settings


def register_pages(app: FastAPI, settings: Settings) -> None:
    """Mount the page routes and static files (none yet: the API is served alone). Page routers
    go through :func:`neuromod.clinic.deps.stamp_permissions` like the API routers."""
