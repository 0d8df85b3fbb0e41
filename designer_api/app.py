"""The full HTTP application: the platform plus the designer (authoring) API."""

from __future__ import annotations

from fastapi import FastAPI

from formloom.designer_api import meta_routes
from formloom.platform.app import build_app
from formloom.platform.settings import Settings


def create_app(settings: Settings | None = None, *, run_worker: bool | None = None) -> FastAPI:
    """App factory used by ``formloom serve`` (uvicorn ``--factory``) and the tests."""
    return build_app(
        settings or Settings.from_environment(),
        routers=[meta_routes.router],
        run_worker=run_worker,
    )
